"""What one read of Graph returned, before normalizing: raw objects per type, and what the requests cost."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple


class GraphStats(NamedTuple):
    """What a run cost: requests sent, Graph's resource units, retries, 429s, bytes."""

    requests: int
    resource_units: int
    retries: int
    throttled: int
    bytes_read: int


@dataclass(frozen=True)
class TenantRead:
    """What one read returned, still in Graph's shapes: per type, live objects, deleted objects, links.

    A read whose rows were normalized as their pages came (`normalized`) holds each object canonical but for its
    links, which were read later: the rows are then a fraction of the raw pages' size.
    """

    objects: Mapping[str, tuple[dict[str, Any], ...]]
    deleted: Mapping[str, tuple[dict[str, Any], ...]]
    links: Mapping[tuple[str, str], Mapping[str, tuple[str, ...]]]
    stats: GraphStats
    normalized: bool = False

    def count(self, type_name: str) -> int:
        return len(self.objects.get(type_name, ()))
