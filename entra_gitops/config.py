"""entra-gitops.yaml: a state repository's settings, loaded strictly with file:line errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entra_gitops import canonical
from entra_gitops.errors import ConfigError

CONFIG_FILE = "entra-gitops.yaml"
DEFAULT_RETENTION = 5
# A type that had at least this many objects and now reads as empty is a failed read, not a purge.
DEFAULT_EMPTY_READ_GUARD = 5

DEFAULT_CONFIG_TEXT = f"""\
# entra-gitops settings for this state repository.
# How many complete backup tags to keep; older tags are removed, their commits stay in history.
retention: {DEFAULT_RETENTION}
"""


@dataclass(frozen=True)
class Config:
    """The settings in force for one state repository."""

    retention: int = DEFAULT_RETENTION
    tenant_id: str | None = None
    graph_url: str | None = None
    empty_read_guard: int = DEFAULT_EMPTY_READ_GUARD


_KEYS = {"retention": int, "tenantId": str, "graphUrl": str, "emptyReadGuard": int}


def load_config(root: Path) -> Config:
    """The repository's entra-gitops.yaml, or the defaults when it has none."""
    path = root / CONFIG_FILE
    if not path.is_file():
        return Config()
    data: dict[str, Any] = canonical.load(path.read_bytes(), str(path))
    for key, value in data.items():
        expected = _KEYS.get(key)
        if expected is None:
            raise ConfigError(f"{path}: unknown setting {key!r}", hint=f"known settings: {', '.join(_KEYS)}")
        if not isinstance(value, expected) or isinstance(value, bool):
            raise ConfigError(f"{path}: {key} must be a {expected.__name__}, not {value!r}")
    retention = data.get("retention", DEFAULT_RETENTION)
    if retention < 1:
        raise ConfigError(f"{path}: retention must be at least 1, not {retention}")
    return Config(
        retention=retention,
        tenant_id=data.get("tenantId"),
        graph_url=data.get("graphUrl"),
        empty_read_guard=data.get("emptyReadGuard", DEFAULT_EMPTY_READ_GUARD),
    )
