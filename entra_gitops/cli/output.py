"""What several commands print or write: warnings, a rendering to a file or stdout, the Actions job summary."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from entra_gitops.model.errors import OutputError
from entra_gitops.model.textsafe import printable
from entra_gitops.workflow.github import summary_path

NO_COLOR_ENV = "NO_COLOR"  # https://no-color.org: any non-empty value turns colour off


def colour_refused(no_color_flag: bool = False) -> bool:
    """Whether the person asked for no colour: the global --no-color, or NO_COLOR set to anything non-empty."""
    return no_color_flag or bool(os.environ.get(NO_COLOR_ENV))


def use_colour(err: bool = False) -> bool:
    """Colour for standard output (or error): only on a terminal, and never after --no-color or NO_COLOR.

    The group sets the context's `color` to False for those, which also makes click.echo strip every style."""
    context = click.get_current_context(silent=True)
    if colour_refused() or (context is not None and context.color is False):
        return False
    return (sys.stderr if err else sys.stdout).isatty()


def command_lines(*rows: tuple[str, str]) -> str:
    """Commands to type, one a line and indented, each with what it does as a shell comment: a line pasted whole
    into a shell still runs as printed."""
    width = max(len(command) for command, _ in rows)
    return "\n".join(f"  {command:<{width}}  # {what}" if what else f"  {command}" for command, what in rows)


def warn(text: str) -> None:
    """A warning line on stderr (tenant text escaped)."""
    click.echo(f"warning: {printable(text)}", err=True)


def printable_lines(text: str) -> str:
    """Text of many lines with each line's tenant data escaped (git's own output keeps its line breaks)."""
    return "\n".join(printable(line) for line in text.split("\n"))


def add_to_job_summary(markdown: str) -> None:
    """Append a rendering to the GitHub Actions job summary, when running there."""
    path = summary_path()
    if path is not None:
        with path.open("a", encoding="utf-8") as summary:
            summary.write(markdown + "\n")


def emit(text: str, output: Path | None) -> None:
    """Write a rendering to --output, or to standard output."""
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as err:
        raise OutputError.of(output, err) from None
    click.echo(f"Wrote {output}.", err=True)
