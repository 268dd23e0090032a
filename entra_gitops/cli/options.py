"""Options several CLI modules share, declared once, and the clock the commands stamp their work with."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


def repo_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--repo DIR`: the state repository a command works in (default: here)."""
    return click.option(
        "--repo",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("."),
        show_default=True,
        help="The state repository (a git repository holding tenant-state/).",
    )(command)


def utc_now() -> dt.datetime:
    """Now in UTC, to the second: what backups, plans and history records are stamped with."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)
