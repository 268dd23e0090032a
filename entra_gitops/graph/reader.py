"""Reads the types in scope from Graph as raw JSON: objects, soft-deleted objects and links, concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from entra_gitops.graph.client import GraphClient, GraphStats
from entra_gitops.registry import Registry, ResourceType

PAGE_SIZE = 999

Progress = Callable[[str, int], None]
"""Called with a type name and how many more of its objects (or links) were read."""


@dataclass(frozen=True)
class TenantRead:
    """What one read returned, still in Graph's shapes: per type, live objects, deleted objects, links."""

    objects: Mapping[str, tuple[dict[str, Any], ...]]
    deleted: Mapping[str, tuple[dict[str, Any], ...]]
    links: Mapping[tuple[str, str], Mapping[str, tuple[str, ...]]]
    stats: GraphStats

    def count(self, type_name: str) -> int:
        return len(self.objects.get(type_name, ()))


def _fill(template: str, **values: str) -> str:
    return template.format(**values)


class _Reader:
    """One concurrent read of several types through one client (and so one limiter)."""

    def __init__(self, client: GraphClient, progress: Progress | None) -> None:
        self.client = client
        self.progress = progress or (lambda name, count: None)
        self.objects: dict[str, tuple[dict[str, Any], ...]] = {}
        self.deleted: dict[str, tuple[dict[str, Any], ...]] = {}
        self.links: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {}

    async def collection(self, rtype: ResourceType, path: str, select: tuple[str, ...]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        params = {"$select": ",".join(select), "$top": PAGE_SIZE}
        async for page in self.client.pages(path, params, scope=rtype.throttle_scope):
            value = page.get("value", [])
            found.extend(value)
            self.progress(rtype.name, len(value))
        return found

    async def live(self, rtype: ResourceType, parents: Mapping[str, tuple[dict[str, Any], ...]]) -> None:
        if rtype.singleton_path:
            obj = await self.client.get_json(rtype.singleton_path, scope=rtype.throttle_scope)
            obj.pop("@odata.context", None)
            self.objects[rtype.name] = (obj,)
            self.progress(rtype.name, 1)
        elif rtype.parent is not None:
            assert rtype.collection is not None
            owners = parents.get(rtype.parent.type_name, ())
            reads = [
                self.collection(rtype, _fill(rtype.collection, **{rtype.parent.param: o["id"]}), rtype.select)
                for o in owners
            ]
            self.objects[rtype.name] = tuple(obj for part in await asyncio.gather(*reads) for obj in part)
        else:
            assert rtype.collection is not None
            self.objects[rtype.name] = tuple(await self.collection(rtype, rtype.collection, rtype.select))

    async def soft_deleted(self, rtype: ResourceType) -> None:
        assert rtype.soft_delete is not None
        select = (*rtype.select, "deletedDateTime")
        self.deleted[rtype.name] = tuple(await self.collection(rtype, rtype.soft_delete.list_path, select))

    async def link_members(self, rtype: ResourceType, link_name: str, list_path: str) -> None:
        async def members(owner_id: str) -> tuple[str, tuple[str, ...]]:
            ids = [
                m["id"]
                for m in await self.client.list_all(_fill(list_path, id=owner_id), {"$select": "id", "$top": PAGE_SIZE})
            ]
            self.progress(f"{rtype.name}.{link_name}", len(ids))
            return owner_id, tuple(ids)

        owners = self.objects.get(rtype.name, ())
        self.links[(rtype.name, link_name)] = dict(await asyncio.gather(*(members(o["id"]) for o in owners)))


async def read_tenant(
    client: GraphClient, registry: Registry, types: tuple[ResourceType, ...], progress: Progress | None = None
) -> TenantRead:
    """Read `types` (parents of child types are read too, but only what was asked is returned)."""
    reader = _Reader(client, progress)
    wanted = {t.name for t in types}
    names = {t.name: t for t in types}
    for rtype in types:
        if rtype.parent is not None:
            names.setdefault(rtype.parent.type_name, registry.get(rtype.parent.type_name))
    first = [t for t in names.values() if t.parent is None]
    await asyncio.gather(
        *(reader.live(t, {}) for t in first),
        *(reader.soft_deleted(t) for t in first if t.soft_delete is not None and t.name in wanted),
    )
    await asyncio.gather(
        *(reader.live(t, reader.objects) for t in names.values() if t.parent is not None),
        *(
            reader.link_members(t, p.name, p.link.list_path)
            for t in first
            if t.name in wanted
            for p in t.links
            if p.link is not None
        ),
    )
    return TenantRead(
        objects=MappingProxyType({k: v for k, v in reader.objects.items() if k in wanted}),
        deleted=MappingProxyType(reader.deleted),
        links=MappingProxyType({k: MappingProxyType(v) for k, v in reader.links.items()}),
        stats=client.stats,
    )
