"""Options several CLI modules share, declared once."""

from __future__ import annotations

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
