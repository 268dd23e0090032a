"""Options several CLI modules share, declared once, and the clock the commands stamp their work with."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from entra_gitops.model.errors import ConfigError
from entra_gitops.state.discovery import work_tree_root

REPO_ENV = "ENTRA_GITOPS_REPO"


def _found_repository(needed: bool) -> Callable[[click.Context, click.Parameter, Path | None], Path]:
    """--repo's callback: an explicit --repo or ENTRA_GITOPS_REPO as given, else the work tree holding here."""

    def callback(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path:
        if value is not None:
            return value
        here = Path.cwd()
        root = work_tree_root(here)
        if root is not None:
            return root
        if needed and not ctx.resilient_parsing:
            raise ConfigError(
                f"{here} is in no git repository",
                hint=f"run it inside a state repository or one of its folders, give --repo DIR, or set {REPO_ENV}; "
                "snapshot --repo DIR creates one",
            )
        return here

    return callback


def _repo_option(needed: bool, what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--repo",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        envvar=REPO_ENV,
        show_envvar=True,
        callback=_found_repository(needed),
        help=f"{what} Default: the git repository holding the current folder, found as git finds it.",
    )


repo_option = _repo_option(True, "The state repository (a git repository holding tenant-state/).")
"""`--repo DIR`: the state repository a command works in (else ENTRA_GITOPS_REPO, else the one holding here)."""

settings_repo_option = _repo_option(False, "The state repository whose entra-gitops.yaml sets the scope.")
"""`--repo DIR` for a command that also runs outside any repository (its settings are then the defaults)."""


def format_option(*formats: str, help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--format`: how a command prints what it reports (the first of `formats` by default; json on stdout alone)."""
    return click.option(
        "--format", "output_format", type=click.Choice(formats), default=formats[0], show_default=True, help=help
    )


def utc_now() -> dt.datetime:
    """Now in UTC, to the second: what backups, plans and history records are stamped with."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


no_verify_option = click.option(
    "--no-verify",
    is_flag=True,
    help="Use the backup although it fails `entra-gitops verify` (when signing is set); apply records it in history.",
)
