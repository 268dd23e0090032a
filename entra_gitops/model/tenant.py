"""TenantState: a tenant's configuration as an immutable value, objects keyed by (type, id)."""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


class SourceKind(enum.Enum):
    """What a plan recovers to: a backup tag, or the files of a reviewed commit (desired state)."""

    BACKUP = "backup"
    DESIRED = "desired"


class Lifecycle(enum.Enum):
    """Where an object is in Graph's lifecycle."""

    ACTIVE = "active"
    SOFT_DELETED = "softDeleted"


@dataclass(frozen=True)
class ObjectState:
    """One object in canonical form: only in-scope properties, links as sorted id lists."""

    type_name: str
    id: str
    lifecycle: Lifecycle
    data: Mapping[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        return (self.type_name, self.id)

    def display(self, prop: str | None) -> str | None:
        value = self.data.get(prop) if prop else None
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class TenantState:
    """Every object of a tenant (or of the types read), with the types that were read at all."""

    objects: Mapping[tuple[str, str], ObjectState] = field(default_factory=lambda: MappingProxyType({}))
    types: frozenset[str] = frozenset()

    @classmethod
    def of(cls, objects: list[ObjectState] | tuple[ObjectState, ...], types: frozenset[str]) -> TenantState:
        return cls(MappingProxyType({o.key: o for o in objects}), types)

    def __iter__(self) -> Iterator[ObjectState]:
        return iter(self.objects.values())

    def __len__(self) -> int:
        return len(self.objects)

    def get(self, type_name: str, object_id: str) -> ObjectState | None:
        return self.objects.get((type_name, object_id))

    def of_type(self, type_name: str) -> tuple[ObjectState, ...]:
        return tuple(o for o in self.objects.values() if o.type_name == type_name)

    def counts(self, lifecycle: Lifecycle = Lifecycle.ACTIVE) -> Mapping[str, int]:
        """Objects per type in `lifecycle`; every type read appears, with 0 when it had none."""
        counted = Counter(o.type_name for o in self.objects.values() if o.lifecycle is lifecycle)
        return MappingProxyType({name: counted.get(name, 0) for name in sorted(self.types)})
