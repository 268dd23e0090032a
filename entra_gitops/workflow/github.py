"""GitHub Actions conventions: error annotations and the job summary file (pure formatting, env lookup)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def running_in_actions(env: Mapping[str, str] | None = None) -> bool:
    return (env if env is not None else os.environ).get("GITHUB_ACTIONS") == "true"


def summary_path(env: Mapping[str, str] | None = None) -> Path | None:
    """The job summary file Actions gives each step, when there is one."""
    value = (env if env is not None else os.environ).get("GITHUB_STEP_SUMMARY")
    return Path(value) if value else None


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def error_annotation(
    message: str, *, file: str | None = None, line: int | None = None, column: int | None = None
) -> str:
    """A workflow command that shows `message` as an error annotation (on a file line when given)."""
    properties = ["title=entra-gitops"]
    if file:
        properties.append(f"file={_escape_property(file)}")
        if line:
            properties.append(f"line={line}")
        if column:
            properties.append(f"col={column}")
    return f"::error {','.join(properties)}::{_escape_data(message)}"
