"""What several commands print or write: warnings, a rendering to a file or stdout, the Actions job summary."""

from __future__ import annotations

from pathlib import Path

import click

from entra_gitops.model.errors import OutputError
from entra_gitops.model.textsafe import printable
from entra_gitops.workflow.github import summary_path


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
