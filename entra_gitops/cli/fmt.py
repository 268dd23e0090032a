"""The fmt command: state files rewritten into the canonical form entra-gitops writes, or refused."""

from __future__ import annotations

from pathlib import Path

import click

from entra_gitops.cli.options import format_option
from entra_gitops.cli.validate import show_problems, state_files, state_relative
from entra_gitops.model.errors import ExitCode
from entra_gitops.model.registry import default_registry
from entra_gitops.model.textsafe import json_text, printable
from entra_gitops.state.files import write_atomically
from entra_gitops.state.validate import Problem, fmt_document, rewrite_file


@click.command("fmt")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--check", is_flag=True, help="Write nothing: list the files that would change, exit 1 when any would (CI)."
)
@format_option("text", "json", help="json: the files checked, changed and refused, on stdout.")
def fmt_command(paths: tuple[Path, ...], check: bool, output_format: str) -> None:
    """Rewrite state files into canonical form, as a snapshot writes them.

    PATHS are files or folders (default: tenant-state/ here). Only the form changes: key order,
    quoting, indentation, sorted sets, GUIDs in lower case, empty values left out; the values are
    the ones the file holds, loaded as strictly as validate loads them. A file that does not load,
    fails its type's schema, names another id than its file name, or holds a value that looks like
    a client secret is left untouched and listed as file:line:column. Each file is replaced whole
    (a scratch file and a rename), so Ctrl+C never leaves half a file.

    \b
    Examples:
      entra-gitops fmt                                   every file under tenant-state/
      entra-gitops fmt tenant-state/users/6f1d0c1e-....yaml
      entra-gitops fmt --check                           in CI or pre-commit: what would change
    Exit 0 every file canonical (or rewritten), 1 a file refused, or with --check a file that would change.
    """
    registry = default_registry()
    files = state_files(paths, "fmt")
    changed: list[str] = []
    problems: list[Problem] = []
    for file in files:
        relative = state_relative(file)
        content = file.read_bytes()
        rewrite = rewrite_file(registry, relative, content)
        problems.extend(rewrite.problems)
        if rewrite.content is None or rewrite.content == content:
            continue
        changed.append(relative)
        if not check:
            write_atomically(file, rewrite.content)
        if output_format == "text":
            click.echo(printable(f"{'would rewrite' if check else 'rewrote'} {relative}"))
    show_problems(problems, as_json=output_format == "json")
    if output_format == "json":
        click.echo(json_text(fmt_document(len(files), changed, problems, written=not check)))
    else:
        click.echo(_summary(len(files), len(changed), problems, check), err=bool(problems or check and changed))
    if problems or check and changed:
        raise click.exceptions.Exit(ExitCode.ERROR)


def _summary(checked: int, changed: int, problems: list[Problem], check: bool) -> str:
    refused = len({p.path for p in problems})
    line = f"{checked} state file(s) checked: {changed} {'would be rewritten' if check else 'rewritten'}"
    if refused:
        line += f", {refused} left untouched (fmt cannot fix the problems above: fix them by hand)"
    return line + (". Run entra-gitops fmt to rewrite them." if check and changed else ".")
