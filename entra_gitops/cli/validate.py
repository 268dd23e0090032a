"""The validate command: state files checked as a pre-commit hook or CI gate would, each problem where it is."""

from __future__ import annotations

import os
from pathlib import Path

import click

from entra_gitops.cli.options import format_option
from entra_gitops.model.errors import ConfigError, ExitCode
from entra_gitops.model.textsafe import json_text
from entra_gitops.state.checking import check_on_disk
from entra_gitops.state.layout import STATE_DIR
from entra_gitops.state.validate import Problem, validation_document
from entra_gitops.workflow.github import error_annotation, running_in_actions


@click.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@format_option(
    "text", "json", help="json: the files checked and every problem (file, line, column, message), on stdout."
)
def validate_command(paths: tuple[Path, ...], output_format: str) -> None:
    """Check state files: strict YAML, their type's schema, the id in the file name, canonical form.

    PATHS are files or folders (default: tenant-state/ here). Every problem is printed as
    file:line:column: message, and the exit code is 1 when there is any. This is the hook a state
    repository's pre-commit runs; `entra-gitops fmt` rewrites files that are only not canonical.

    \b
    Examples:
      entra-gitops validate                              every file under tenant-state/
      entra-gitops validate tenant-state/users/6f1d0c1e-....yaml
    Exit 0 every file valid, 1 any problem (or no state files found).
    """
    files = state_files(paths, "validate")
    problems = check_on_disk([(state_relative(file), str(file)) for file in files])
    as_json = output_format == "json"
    show_problems(problems, as_json=as_json)
    if as_json:
        click.echo(json_text(validation_document(len(files), problems)))
    elif problems:
        click.echo(
            f"{len(problems)} problem(s) in {len({p.path for p in problems})} of {len(files)} file(s).", err=True
        )
    else:
        click.echo(f"{len(files)} state file(s) valid.")
    if problems:
        raise click.exceptions.Exit(ExitCode.ERROR)


def show_problems(problems: list[Problem], *, as_json: bool = False) -> None:
    """Each problem as file:line:column on stderr (not beside JSON), and as an annotation under GitHub Actions."""
    for problem in problems:
        if not as_json:
            click.echo(str(problem), err=True)
        if running_in_actions():
            annotation = error_annotation(problem.message, file=problem.path, line=problem.line, column=problem.column)
            click.echo(annotation, err=as_json)  # the runner reads both streams; stdout holds only JSON


def state_files(paths: tuple[Path, ...], command: str) -> list[Path]:
    """The state files PATHS name (default: tenant-state/ here), refused when there are none: what validate
    and fmt work on."""
    if not paths and not Path(STATE_DIR).is_dir():
        raise ConfigError(
            f"no state files found: there is no {STATE_DIR}/ in {Path.cwd()}",
            hint=f"run {command} in a state repository, or give the files or folders to check",
        )
    places = paths or (Path(STATE_DIR),)
    found: list[Path] = []
    for path in places:
        found.extend(_yaml_files(path) if path.is_dir() else [path])
    if not found:
        # Nothing checked is not "all valid": a wrong folder must not pass a pre-commit or CI gate.
        raise ConfigError(
            f"no state files (*.yaml) found in {', '.join(str(p) for p in places)}",
            hint="give a state repository's tenant-state/ folder or its files",
        )
    return sorted(found)


def _yaml_files(folder: Path) -> list[Path]:
    """The *.yaml files under `folder`, as Path.rglob finds them (symlinked folders not followed), faster."""
    return [Path(where, name) for where, _, names in os.walk(folder) for name in names if name.endswith(".yaml")]


def state_relative(file: Path) -> str:
    """The path from tenant-state/ on, as the layout names it, wherever the repository is."""
    parts = Path(os.path.abspath(file)).parts  # lexical: no syscall per file, and a linked folder keeps its name
    if STATE_DIR in parts:
        return "/".join(parts[len(parts) - 1 - parts[::-1].index(STATE_DIR) :])
    return file.as_posix()
