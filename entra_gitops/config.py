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
DEFAULT_SHARE = 0.30
DEFAULT_MINIMUM_OBJECTS = 10

DEFAULT_CONFIG_TEXT = f"""\
# entra-gitops settings for this state repository.
# How many complete backup tags to keep; older tags are removed, their commits stay in history.
retention: {DEFAULT_RETENTION}
# A plan that changes more than this share of a type (with at least minimumObjects objects) is
# refused unless forced.
thresholds:
  share: {DEFAULT_SHARE}
  minimumObjects: {DEFAULT_MINIMUM_OBJECTS}
# Objects no plan may touch unless forced: break-glass accounts, named Conditional Access policies.
# protected:
#   - type: user
#     id: 00000000-0000-0000-0000-000000000000
#   - type: conditionalAccessPolicy
#     displayName: Block legacy authentication
"""


@dataclass(frozen=True)
class Protected:
    """An object no plan may touch without --force: by id, or by display name (a named CA policy)."""

    type_name: str | None
    object_id: str | None
    display_name: str | None

    def matches(self, type_name: str, object_id: str, display: str | None) -> bool:
        if self.type_name and self.type_name != type_name:
            return False
        if self.object_id:
            return self.object_id.lower() == object_id.lower()
        return self.display_name is not None and self.display_name == display

    def describe(self) -> str:
        what = f"id {self.object_id}" if self.object_id else f"name {self.display_name!r}"
        return f"listed under protected in {CONFIG_FILE} by {what}"


@dataclass(frozen=True)
class SafetySettings:
    """How much of a type a plan may change, and what it may never touch, without --force."""

    share: float = DEFAULT_SHARE
    minimum_objects: int = DEFAULT_MINIMUM_OBJECTS
    per_type: tuple[tuple[str, float], ...] = ()
    protected: tuple[Protected, ...] = ()

    def share_for(self, type_name: str) -> float:
        return dict(self.per_type).get(type_name, self.share)


@dataclass(frozen=True)
class Config:
    """The settings in force for one state repository."""

    retention: int = DEFAULT_RETENTION
    tenant_id: str | None = None
    graph_url: str | None = None
    empty_read_guard: int = DEFAULT_EMPTY_READ_GUARD
    safety: SafetySettings = SafetySettings()


_KEYS = {
    "retention": int,
    "tenantId": str,
    "graphUrl": str,
    "emptyReadGuard": int,
    "thresholds": dict,
    "protected": list,
}


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
        safety=_safety(path, data.get("thresholds") or {}, data.get("protected") or []),
    )


def _safety(path: Path, thresholds: dict[str, Any], protected: list[Any]) -> SafetySettings:
    def share(value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ConfigError(f"{path}: {where} must be a share between 0 and 1, like 0.3, not {value!r}")
        return float(value)

    unknown = set(thresholds) - {"share", "minimumObjects", "perType"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown thresholds setting {sorted(unknown)[0]!r}", hint="known: share, minimumObjects, perType"
        )
    minimum = thresholds.get("minimumObjects", DEFAULT_MINIMUM_OBJECTS)
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0:
        raise ConfigError(f"{path}: thresholds.minimumObjects must be a whole number, not {minimum!r}")
    per_type = tuple(
        (str(k), share(v, f"thresholds.perType.{k}")) for k, v in (thresholds.get("perType") or {}).items()
    )
    guards = []
    for index, entry in enumerate(protected):
        if (
            not isinstance(entry, dict)
            or not ({"id", "displayName"} & entry.keys())
            or set(entry) - {"type", "id", "displayName"}
        ):
            raise ConfigError(
                f"{path}: protected[{index}] must be a mapping with 'id' or 'displayName' (and optionally 'type')"
            )
        guards.append(Protected(entry.get("type"), entry.get("id"), entry.get("displayName")))
    return SafetySettings(
        share(thresholds.get("share", DEFAULT_SHARE), "thresholds.share"), minimum, per_type, tuple(guards)
    )
