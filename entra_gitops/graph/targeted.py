"""Reads given objects by id, twenty to a `$batch`, with their lifecycle and links: what apply's checks need.

A read by id gives the raw shapes a full read gives (the same `$select`, soft-deleted objects from their
deleted-items path, links listed per owner), so normalizing it gives the same ObjectStates byte for byte.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

from entra_gitops.graph.client import MAX_BATCH, BatchRequest, GraphClient, GraphResponse, batch_error
from entra_gitops.graph.reader import COUNT_HEADERS, PAGE_SIZE
from entra_gitops.model.errors import EntraGitopsError, GraphError
from entra_gitops.model.ids import fold_id, graph_path
from entra_gitops.model.reads import TenantRead
from entra_gitops.model.registry import Registry, ResourceType


class Target(NamedTuple):
    """One object to read by id; a child type's object names its parent (an appRoleAssignment's resourceId)."""

    type_name: str
    object_id: str
    parent: str | None = None


@dataclass(frozen=True)
class TargetedRead:
    """A read of given objects: Graph's raw shapes as a TenantRead, and which (type, folded id) it answers for.

    A covered key missing from both `read.objects` and `read.deleted` is known to be absent from the tenant;
    a key outside `covered` was never asked about.
    """

    read: TenantRead
    covered: frozenset[tuple[str, str]]


def readable_by_id(rtype: ResourceType) -> bool:
    """Whether objects of `rtype` can be read one by one: an item path, or a parent collection to list."""
    return not rtype.singleton and rtype.item is not None and rtype.collection is not None


def _checked_id(rtype: ResourceType, object_id: str) -> str:
    # graph_path percent-encodes every id, so none can add a segment; an empty or control-laden one is no id.
    if not object_id or not object_id.isprintable():
        raise GraphError(f"cannot read {rtype.name} {object_id!r} by id: not an object id")
    return object_id


class _Batches:
    """GET requests sent twenty to a `$batch` call, answered by path; further pages followed one by one."""

    def __init__(self, client: GraphClient) -> None:
        self.client = client

    async def get(self, urls: list[str], accept: frozenset[int] = frozenset()) -> dict[str, GraphResponse]:
        unique = list(dict.fromkeys(urls))
        chunks = [unique[n : n + MAX_BATCH] for n in range(0, len(unique), MAX_BATCH)]
        answers = await asyncio.gather(*(self._chunk(part, accept) for part in chunks))
        return {url: answer for part in answers for url, answer in part.items()}

    async def _chunk(self, urls: list[str], accept: frozenset[int]) -> dict[str, GraphResponse]:
        requests = [BatchRequest(str(n), "GET", url) for n, url in enumerate(urls)]
        answers = await self.client.batch(requests)
        found: dict[str, GraphResponse] = {}
        for n, url in enumerate(urls):
            answer = answers[str(n)]
            if answer.status >= 400 and answer.status not in accept:
                raise batch_error(answer, "GET " + url.partition("?")[0])
            found[url] = answer
        return found

    async def listing(self, urls: list[str], rtype: ResourceType) -> dict[str, list[dict[str, Any]]]:
        """Every row of each collection: its first page from the batch, the rest through its next links."""
        first = await self.get(urls)

        async def rest(url: str) -> tuple[str, list[dict[str, Any]]]:
            page = first[url].json() or {}
            rows = list(page.get("value", []))
            if page.get("@odata.nextLink"):
                rows.extend(await self.client.list_all(page["@odata.nextLink"], scope=rtype.throttle_scope))
            return url, rows

        return dict(await asyncio.gather(*(rest(url) for url in first)))


def _query(select: Iterable[str], top: bool = False) -> str:
    return f"$select={','.join(select)}" + (f"&$top={PAGE_SIZE}" if top else "")


def _same_type(rtype: ResourceType, raw: Mapping[str, Any]) -> bool:
    """Whether a deleted item is of `rtype`: `directory/deletedItems/{id}` answers for any directory object."""
    stated = raw.get("@odata.type")
    if not isinstance(stated, str):
        return True
    return stated.lstrip("#") in {rtype.odata_type.lstrip("#"), *(k.lstrip("#") for k in rtype.kinds)}


async def read_targets(client: GraphClient, registry: Registry, targets: Iterable[Target]) -> TargetedRead:
    """Read `targets` by id: live objects, else soft-deleted ones, else known absent; with their links."""
    batches = _Batches(client)
    by_type: dict[str, dict[str, Target]] = defaultdict(dict)
    for target in targets:
        rtype = registry.get(target.type_name)
        if not readable_by_id(rtype):
            raise GraphError(f"{rtype.name} objects are not read by id")
        by_type[rtype.name].setdefault(fold_id(_checked_id(rtype, target.object_id)), target)
    objects: dict[str, list[dict[str, Any]]] = defaultdict(list)
    deleted: dict[str, list[dict[str, Any]]] = defaultdict(list)
    items: dict[str, tuple[ResourceType, str]] = {}
    children: dict[str, tuple[ResourceType, set[str]]] = {}
    for type_name, wanted in by_type.items():
        rtype = registry.get(type_name)
        if rtype.parent is not None:
            assert rtype.collection is not None
            for key, target in wanted.items():
                if not target.parent:
                    raise GraphError(f"cannot read {type_name} {target.object_id} by id: it names no parent")
                path = graph_path(rtype.collection, **{rtype.parent.param: target.parent})
                children.setdefault(f"{path}?{_query(rtype.select, top=True)}", (rtype, set()))[1].add(key)
            continue
        assert rtype.item is not None
        for target in wanted.values():
            items[f"{graph_path(rtype.item, id=target.object_id)}?{_query(rtype.select)}"] = (rtype, target.object_id)
    # Graph answers 404 for an object that is not live; its deleted-items path then tells soft-deleted from gone.
    answers, listed = await asyncio.gather(
        batches.get(list(items), accept=frozenset({404})),
        asyncio.gather(*(_children(batches, url, rtype, keys) for url, (rtype, keys) in children.items())),
    )
    missing: dict[str, tuple[ResourceType, str]] = {}
    for url, (rtype, object_id) in items.items():
        answer = answers[url]
        if answer.status == 404:
            if rtype.soft_delete is not None:
                select = (*rtype.select, "deletedDateTime")
                path = graph_path(rtype.soft_delete.item_path, id=object_id)
                missing[f"{path}?{_query(select)}"] = (rtype, object_id)
            continue
        objects[rtype.name].append(_plain(answer.json()))
    for rtype_name, rows in listed:
        objects[rtype_name].extend(rows)
    gone = await batches.get(list(missing), accept=frozenset({404}))
    for url, (rtype, _) in missing.items():
        answer = gone[url]
        if answer.status != 404 and _same_type(rtype, raw := _plain(answer.json())):
            deleted[rtype.name].append(raw)
    links = await _links(batches, registry, objects)
    covered = frozenset((name, key) for name, wanted in by_type.items() for key in wanted)
    read = TenantRead(
        objects=MappingProxyType({k: tuple(v) for k, v in objects.items()}),
        deleted=MappingProxyType({k: tuple(v) for k, v in deleted.items()}),
        links=MappingProxyType({k: MappingProxyType(v) for k, v in links.items()}),
        stats=client.stats,
    )
    return TargetedRead(read, covered)


def _plain(raw: Any) -> dict[str, Any]:
    obj = dict(raw or {})
    obj.pop("@odata.context", None)
    return obj


async def _children(
    batches: _Batches, url: str, rtype: ResourceType, keys: set[str]
) -> tuple[str, list[dict[str, Any]]]:
    """The asked objects of one parent's collection (the parent is listed, as a full read lists it)."""
    rows = (await batches.listing([url], rtype))[url]
    return rtype.name, [row for row in rows if fold_id(str(row.get("id", ""))) in keys]


async def _links(
    batches: _Batches, registry: Registry, objects: Mapping[str, list[dict[str, Any]]]
) -> dict[tuple[str, str], dict[str, tuple[str, ...]]]:
    """Each live object's link ids, for the owners a snapshot reads them for."""
    wanted: dict[str, tuple[str, str, str]] = {}
    links: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {}
    for type_name, raws in objects.items():
        rtype = registry.get(type_name)
        for prop in rtype.links:
            assert prop.link is not None
            links[(type_name, prop.name)] = {}
            for raw in raws:
                owner = str(raw.get("id", ""))
                if prop.link.is_read_for(raw):
                    url = f"{graph_path(prop.link.list_path, id=owner)}?{_query(('id',), top=True)}"
                    wanted[url] = (type_name, prop.name, owner)
    if not wanted:
        return links
    listed = await batches.listing(list(wanted), registry.get(next(iter(wanted.values()))[0]))
    for url, (type_name, name, owner) in wanted.items():
        links[(type_name, name)][owner] = tuple(str(row["id"]) for row in listed[url])
    return links


async def count_live(client: GraphClient, rtype: ResourceType) -> int | None:
    """Graph's count of a type's live objects (`$count`), or None when Graph gives none."""
    if not rtype.countable or rtype.collection is None:
        return None
    try:
        answer = await client.send(
            "GET", f"{rtype.collection}/$count", headers=COUNT_HEADERS, scope=rtype.throttle_scope
        )
        return int(answer.content.decode("utf-8-sig").strip())
    except (EntraGitopsError, ValueError):
        return None
