"""The history command: every recovery's record, newest first, as committed under history/."""

from __future__ import annotations

import json
from pathlib import Path

import click

from entra_gitops.cli.options import repo_option
from entra_gitops.cli.output import warn
from entra_gitops.model.textsafe import printable
from entra_gitops.recovery.history import read_history
from entra_gitops.state.gitstore import StateRepo


@click.command("history")
@repo_option
@click.option("--format", "output_format", type=click.Choice(("text", "json")), default="text", show_default=True)
def history_command(repo: Path, output_format: str) -> None:
    """Recovery history, newest first: every apply's status, backup, times and failures (kept in git).

    \b
    Examples:
      entra-gitops history
      entra-gitops history --format json | jq '.[0].failures'
    Exit 0 listed (also when there is none yet), 1 error (no state repository).
    """
    history = read_history(StateRepo.open(repo))
    for warning in history.warnings:
        warn(warning)
    if output_format == "json":
        click.echo(json.dumps(list(history.records), indent=2, ensure_ascii=False))
        return
    if not history.records:
        click.echo("No recoveries recorded yet.")
        return
    for r in history.records:
        # A record edited by hand may lack a field or hold another shape: it is shown as it is, never a crash.
        failures = r.get("failures")
        failed = len(failures) if isinstance(failures, list) else 0
        click.echo(
            printable(
                f"{r.get('started')}  {str(r.get('status')):<22} to {r.get('backup')}  "
                f"{r.get('written')}/{r.get('writes')} writes, {failed} failed  ({r.get('id')})"
            )
        )
