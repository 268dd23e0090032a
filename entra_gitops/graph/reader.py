"""Reads the types in scope from Graph as raw JSON: objects, soft-deleted objects and links, concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Protocol

from entra_gitops.graph.client import MAX_BATCH, BatchRequest, GraphClient, PageTokenExpired, batch_error
from entra_gitops.model.errors import EntraGitopsError, GraphError, SchemaError
from entra_gitops.model.ids import graph_path
from entra_gitops.model.progress import Progress, Reads, watched
from entra_gitops.model.reads import TenantRead
from entra_gitops.model.registry import LinkSpec, PropertySpec, Registry, ResourceType
from entra_gitops.model.tenant import Lifecycle


class RowKeeper(Protocol):
    """What a read keeps of each object as its page comes: a smaller form of the row (normalized), or nothing
    when the keeper has taken the object for good (nothing later in the read can need it)."""

    def __call__(self, rtype: ResourceType, lifecycle: Lifecycle, row: dict[str, Any]) -> dict[str, Any] | None: ...

    def forget(self, rtype: ResourceType, lifecycle: Lifecycle) -> None:
        """The listing of `rtype`'s objects in `lifecycle` starts over: drop what was taken of it."""

    def taken(self, rtype: ResourceType, object_id: str) -> bool:
        """Whether the live object was taken for good (so no link of it can be added any more)."""


PAGE_SIZE = 999
# query-parameters.md: an expansion of directory objects holds "a maximum of 20 items" and "has no
# @odata.nextLink"; a list that expands is served 100 objects a page (shared/graph/README.md).
EXPAND_CAP = 20
EXPANDED_PAGE_SIZE = 100
# What Graph's advanced queries need for a count of directory objects (aad-advanced-queries).
COUNT_HEADERS = {"ConsistencyLevel": "eventual", "Accept": "text/plain"}


def _fill(template: str, **values: str) -> str:
    return graph_path(template, **values)


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise SchemaError(f"a readWhen value {value!r} is neither a string nor a boolean: Graph cannot filter by it")


def owner_lists(rtype: ResourceType, link: LinkSpec) -> tuple[tuple[str, str | None], ...]:
    """The lists Graph serves of the owners a link is read for, as (path, $filter): one per readWhen condition
    (a kind as its cast segment, agentuser-list's `users/microsoft.graph.agentUser`; each other property as
    `name eq value`), or the whole collection when the link is read for every owner."""
    assert rtype.collection is not None
    lists = []
    for condition in link.read_when or ({},):
        path, clauses = rtype.collection, []
        for key, value in condition.items():
            if key == "@odata.type":
                kind = str(value).removeprefix("#")
                if kind not in rtype.kinds:
                    raise SchemaError(f"{rtype.name}: readWhen names {value}, which is not one of its kinds")
                path = f"{path}/{kind}"
            else:
                clauses.append(f"{key} eq {_literal(value)}")
        lists.append((path, " and ".join(clauses) or None))
    return tuple(lists)


class _Reader:
    """One concurrent read of several types through one client (and so one limiter)."""

    def __init__(self, client: GraphClient, progress: Progress, keep: RowKeeper | None = None) -> None:
        self.client = client
        self.progress = progress
        self.keep = keep
        self.objects: dict[str, tuple[dict[str, Any], ...]] = {}
        self.deleted: dict[str, tuple[dict[str, Any], ...]] = {}
        self.links: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {}

    def kept(self, rtype: ResourceType, lifecycle: Lifecycle, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """What the read holds on to of objects just listed: a page's raw rows are dropped as soon as it is kept."""
        keep = self.keep
        if keep is None:
            return rows
        return [kept for kept in (keep(rtype, lifecycle, row) for row in rows) if kept is not None]

    async def collection(
        self, rtype: ResourceType, path: str, select: tuple[str, ...], label: str, lifecycle: Lifecycle
    ) -> list[dict[str, Any]]:
        listed = [0]

        def each(page: list[dict[str, Any]]) -> list[dict[str, Any]]:
            listed[0] += len(page)
            return self.kept(rtype, lifecycle, page)

        def over() -> None:
            listed[0] = 0
            if self.keep is not None:
                self.keep.forget(rtype, lifecycle)

        params = {"$select": ",".join(select), "$top": PAGE_SIZE}
        found = await self.listed(rtype, path, params, label, page_rows=each, restarted=over)
        self.progress.total(label, listed[0])
        return found

    async def listed(
        self,
        rtype: ResourceType,
        path: str,
        params: Mapping[str, Any],
        label: str,
        weight: Callable[[dict[str, Any]], int] = lambda _: 1,
        page_rows: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
        restarted: Callable[[], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Every row of a paged list; `weight` is what a row counts for on the progress display (its expanded
        children, say), `page_rows` what is kept of each page's rows. A next-page token that expires midway
        starts the list over once, from its first page (`restarted` is told)."""
        self.progress(label, 0)  # begun: a display shows the type at once, before its first page
        for attempt in (1, 2):
            found: list[dict[str, Any]] = []
            reported = 0
            try:
                async for page in self.client.pages(path, params, scope=rtype.throttle_scope):
                    value = page.get("value", [])
                    counted = sum(map(weight, value))
                    found.extend(page_rows(value) if page_rows is not None else value)
                    reported += counted
                    self.progress(label, counted)
                return found
            except PageTokenExpired:
                self.progress(label, -reported)
                if attempt == 2:
                    raise
                if restarted is not None:
                    restarted()
        raise AssertionError("unreachable")

    async def count(self, rtype: ResourceType) -> None:
        """Graph's count of a type's live objects, for the progress display only (it decides nothing)."""
        assert rtype.collection is not None
        try:
            answer = await self.client.send(
                "GET", f"{rtype.collection}/$count", headers=COUNT_HEADERS, scope=rtype.throttle_scope
            )
            total = int(answer.content.decode("utf-8-sig").strip())
        except (EntraGitopsError, ValueError):
            return  # no total, then: the display shows the running number
        self.progress.total(rtype.name, total)

    async def counted_collection(self, rtype: ResourceType) -> list[dict[str, Any]]:
        """A top-level collection, with its count asked for alongside when someone watches (one request).

        The count runs beside the read, and is awaited after it rather than dropped: a request dropped in flight
        is still answered and charged by Graph, and the run's resource units would no longer be what Graph counted.
        """
        assert rtype.collection is not None
        counting = asyncio.create_task(self.count(rtype)) if rtype.countable and self.progress.wants_totals else None
        try:
            found = await self.collection(rtype, rtype.collection, rtype.select, rtype.name, Lifecycle.ACTIVE)
        except BaseException:
            if counting is not None:
                counting.cancel()
            raise
        if counting is not None:
            await counting
        return found

    async def per_parent(
        self, rtype: ResourceType, paths: dict[str, str], select: tuple[str, ...], label: str
    ) -> dict[str, list[dict[str, Any]]]:
        """The first pages of many small collections through $batch (20 a call), then any further pages."""
        query = f"$select={','.join(select)}&$top={PAGE_SIZE}"
        keys = list(paths)
        self.progress(label, 0)

        async def chunk(part: list[str]) -> dict[str, list[dict[str, Any]]]:
            requests = [BatchRequest(str(n), "GET", f"{paths[k]}?{query}") for n, k in enumerate(part)]
            answers = await self.client.batch(requests)
            found: dict[str, list[dict[str, Any]]] = {}
            for n, key in enumerate(part):
                answer = answers[str(n)]
                if answer.status >= 400:
                    raise batch_error(answer, f"GET {paths[key]}")
                page = answer.json()
                items = list(page.get("value", []))
                if page.get("@odata.nextLink"):
                    items.extend(await self.client.list_all(page["@odata.nextLink"], scope=rtype.throttle_scope))
                found[key] = items
                self.progress(label, len(items))
            return found

        parts = await asyncio.gather(*(chunk(keys[n : n + MAX_BATCH]) for n in range(0, len(keys), MAX_BATCH)))
        merged = {k: v for part in parts for k, v in part.items()}
        self.progress.total(label, sum(map(len, merged.values())))
        return merged

    async def expanded_children(self, rtype: ResourceType, parent: ResourceType) -> None:
        """A child type whose parent's list expands it: every parent listed with its children (100 parents a page),
        then, one by one, the parents whose expansion is full, since Graph cuts an expansion at 20 without a link."""
        assert rtype.parent is not None and rtype.parent.expand is not None and rtype.collection is not None
        assert parent.collection is not None
        nav, param = rtype.parent.expand, rtype.parent.param
        params = {"$select": "id", "$expand": f"{nav}($select={','.join(rtype.select)})", "$top": EXPANDED_PAGE_SIZE}
        rows = await self.listed(rtype, parent.collection, params, rtype.name, lambda row: len(row.get(nav) or ()))
        children = {row["id"]: list(row.get(nav) or ()) for row in rows}
        full = {p: _fill(rtype.collection, **{param: p}) for p, items in children.items() if len(items) >= EXPAND_CAP}
        if full:
            self.progress(rtype.name, -sum(len(children[p]) for p in full))
            children.update(await self.per_parent(rtype, full, rtype.select, rtype.name))
        listed = [o for items in children.values() for o in items]
        self.progress.total(rtype.name, len(listed))
        self.objects[rtype.name] = tuple(self.kept(rtype, Lifecycle.ACTIVE, listed))

    async def live(self, rtype: ResourceType, parents: Mapping[str, tuple[dict[str, Any], ...]]) -> None:
        if rtype.singleton_path:
            obj = await self.client.get_json(rtype.singleton_path, scope=rtype.throttle_scope)
            obj.pop("@odata.context", None)
            self.objects[rtype.name] = tuple(self.kept(rtype, Lifecycle.ACTIVE, [obj]))
            self.progress(rtype.name, 1)
            self.progress.total(rtype.name, 1)
        elif rtype.parent is not None:
            assert rtype.collection is not None
            param = rtype.parent.param
            owners = parents.get(rtype.parent.type_name, ())
            paths = {o["id"]: _fill(rtype.collection, **{param: o["id"]}) for o in owners}
            found = await self.per_parent(rtype, paths, rtype.select, rtype.name)
            self.objects[rtype.name] = tuple(
                self.kept(rtype, Lifecycle.ACTIVE, [o for items in found.values() for o in items])
            )
        else:
            self.objects[rtype.name] = tuple(await self.counted_collection(rtype))

    async def soft_deleted(self, rtype: ResourceType) -> None:
        assert rtype.soft_delete is not None
        select = (*rtype.select, "deletedDateTime")
        label = f"{rtype.name} (deleted)"
        listed = await self.collection(rtype, rtype.soft_delete.list_path, select, label, Lifecycle.SOFT_DELETED)
        self.deleted[rtype.name] = tuple(listed)

    async def links_of(self, rtype: ResourceType, prop: PropertySpec) -> None:
        """Every owner's link ids: one delta pass where Graph tracks the link there, the owners' lists with the
        link expanded where Graph expands it, else per owner in batches."""
        assert prop.link is not None
        label = f"{rtype.name}.{prop.name}"
        owners = [o["id"] for o in self.objects.get(rtype.name, ())]
        if prop.link.delta and rtype.delta:
            found = await self.links_by_delta(rtype, prop.name, label)
            self.links[(rtype.name, prop.name)] = {o: tuple(found.get(o, ())) for o in owners}
            return
        if prop.link.by_expansion:
            listed = await self.expanded_links(rtype, prop)
            self._refuse_links_of_taken(rtype, label, listed, set(owners))
            self.links[(rtype.name, prop.name)] = {o: listed.get(o, ()) for o in owners}
            return
        wanted = [o["id"] for o in self.objects.get(rtype.name, ()) if prop.link.is_read_for(o)]
        paths = {o: _fill(prop.link.list_path, id=o) for o in wanted}
        listed = await self.per_parent(rtype, paths, ("id",), label)
        self.links[(rtype.name, prop.name)] = {o: tuple(m["id"] for m in listed.get(o, ())) for o in owners}

    def _refuse_links_of_taken(
        self, rtype: ResourceType, label: str, listed: Mapping[str, tuple[str, ...]], held: set[str]
    ) -> None:
        """Fail the read when Graph's filtered list gave links to objects the keeper took as needing none: their
        files are written without them, and a snapshot would lose them without a word."""
        if self.keep is None:
            return
        keep = self.keep
        lost = sorted(o for o, ids in listed.items() if ids and o not in held and keep.taken(rtype, o))
        if lost:
            raise GraphError(
                f"Graph listed {label} for {len(lost)} {rtype.name} objects the schema's readWhen does not select "
                f"(first: {lost[0]}), whose files were already written without them: nothing was committed",
                hint=f"the readWhen of {label} in schemas/ must select exactly the objects Graph's filter lists",
            )

    async def expanded_links(self, rtype: ResourceType, prop: PropertySpec) -> dict[str, tuple[str, ...]]:
        """owner id -> link ids for every owner the link is read for, from the owners' lists with the link
        expanded; an owner whose expansion is full (20: Graph may have cut it) is read again one by one."""
        assert prop.link is not None
        label = f"{rtype.name}.{prop.name}"
        params = {"$select": "id", "$expand": f"{prop.name}($select=id)", "$top": EXPANDED_PAGE_SIZE}

        def of(row: dict[str, Any]) -> int:
            return len(row.get(prop.name) or ())

        listings = await asyncio.gather(
            *(
                self.listed(rtype, path, {**params, "$filter": where} if where else params, label, of)
                for path, where in owner_lists(rtype, prop.link)
            )
        )
        links = {row["id"]: tuple(m["id"] for m in row.get(prop.name) or ()) for rows in listings for row in rows}
        full = {o: _fill(prop.link.list_path, id=o) for o, ids in links.items() if len(ids) >= EXPAND_CAP}
        if full:
            self.progress(label, -sum(len(links[o]) for o in full))
            again = await self.per_parent(rtype, full, ("id",), label)
            links.update({o: tuple(m["id"] for m in again.get(o, ())) for o in full})
        self.progress.total(label, sum(map(len, links.values())))
        return links

    async def links_by_delta(self, rtype: ResourceType, name: str, label: str) -> dict[str, list[str]]:
        # An owner may come back on several pages with part of its links each time: merge them.
        members: dict[str, dict[str, None]] = {}
        assert rtype.delta is not None
        url: str | None = self.client.url(rtype.delta, {"$select": f"id,{name}"})
        seen: set[str] = set()
        reported = 0
        self.progress(label, 0)
        while url:
            if url in seen:
                raise GraphError(
                    f"Graph returned a delta page link twice while reading {label}: stopping instead of looping"
                )
            seen.add(url)
            page = (await self.client.send("GET", url, scope=rtype.throttle_scope)).json()
            for row in page.get("value", []):
                if "@removed" in row:
                    continue
                current = members.setdefault(row["id"], {})
                for entry in row.get(f"{name}@delta", ()):
                    if "@removed" in entry:
                        current.pop(entry["id"], None)
                    else:
                        current[entry["id"]] = None
                changes = len(row.get(f"{name}@delta", ()))
                self.progress(label, changes)
                reported += changes
            url = page.get("@odata.nextLink")
        self.progress.total(label, reported)
        return {owner: list(ids) for owner, ids in members.items()}


async def read_tenant_id(client: GraphClient, registry: Registry) -> str:
    """The id of the tenant Graph answers for: the one object of the tenant identity type (organization)."""
    identity = registry.tenant_identity()
    objects = await client.list_all(identity.read_path, {"$select": "id"})
    ids = [o.get("id") for o in objects if isinstance(o.get("id"), str)]
    if len(ids) != 1:
        read = next((n for n in identity.permissions if n.always), None)
        raise GraphError(
            f"cannot tell which tenant Graph at {client.base_url} is: {identity.read_path} returned {len(ids)} objects",
            hint=f"the app needs {' or '.join(read.any_of[:2])}" if read else None,
        )
    return ids[0]


async def read_tenant(
    client: GraphClient,
    registry: Registry,
    types: tuple[ResourceType, ...],
    progress: Progress | Reads | None = None,
    phase: str = "read",
    parents: Mapping[str, tuple[str, ...]] | None = None,
    keep: RowKeeper | None = None,
) -> TenantRead:
    """Read `types` (parents of child types are read too, but only what was asked is returned).

    `parents` gives the ids of parent types known already (a delta read's): their children are read for
    those, and the parents themselves are not read again. A child type whose parent's list expands it is read
    through that list, which names its parents, at the same time as the other types.
    `progress` is told the `phase`, then per type (`user`, `user (deleted)`, `group.members`) how many were read.
    `keep`, when given, turns each object into what the read holds as its page comes (the read is then
    `normalized`); a link is read for the kept form, so the form must keep what its conditions look at.
    """
    watch = watched(progress)
    watch.phase(phase, unit="objects")
    reader = _Reader(client, watch, keep)
    wanted = {t.name for t in types}
    names = {t.name: t for t in types}
    known = {name: tuple({"id": i} for i in ids) for name, ids in (parents or {}).items() if name not in wanted}
    # A child type its parent's list expands lists its parents itself, at once; the others wait for theirs.
    expanded = {t.name: registry.get(t.parent.type_name) for t in types if t.parent is not None and t.parent.expand}
    for rtype in types:
        if rtype.parent is not None and rtype.name not in expanded and rtype.parent.type_name not in known:
            names.setdefault(rtype.parent.type_name, registry.get(rtype.parent.type_name))
    reader.objects.update(known)
    first = [t for t in names.values() if t.parent is None]
    await asyncio.gather(
        *(reader.live(t, {}) for t in first),
        *(reader.soft_deleted(t) for t in first if t.soft_delete is not None and t.name in wanted),
        *(reader.expanded_children(registry.get(child), parent) for child, parent in expanded.items()),
    )
    await asyncio.gather(
        *(reader.live(t, reader.objects) for t in names.values() if t.parent is not None and t.name not in expanded),
        *(reader.links_of(t, p) for t in first if t.name in wanted for p in t.links),
    )
    return TenantRead(
        objects=MappingProxyType({k: v for k, v in reader.objects.items() if k in wanted}),
        deleted=MappingProxyType(reader.deleted),
        links=MappingProxyType({k: MappingProxyType(v) for k, v in reader.links.items()}),
        stats=client.stats,
        normalized=keep is not None,
    )


async def read_around_delta(
    client: GraphClient,
    rtype: ResourceType,
    owners: Mapping[str, tuple[str, ...]],
    progress: Progress | Reads | None = None,
    *,
    deleted: bool = True,
) -> tuple[tuple[dict[str, Any], ...], Mapping[str, Mapping[str, tuple[str, ...]]]]:
    """What a delta round of `rtype` does not say: its soft-deleted objects (unless not `deleted`), and the links
    (by property name) of the `owners` whose links are read one by one (ones new since the base, and links delta
    does not track).
    """
    reader = _Reader(client, watched(progress))

    async def links(name: str, ids: tuple[str, ...]) -> tuple[str, Mapping[str, tuple[str, ...]]]:
        prop = rtype.prop(name)
        assert prop is not None and prop.link is not None
        paths = {o: _fill(prop.link.list_path, id=o) for o in ids}
        listed = await reader.per_parent(rtype, paths, ("id",), f"{rtype.name}.{name}")
        return name, MappingProxyType({o: tuple(m["id"] for m in listed.get(o, ())) for o in ids})

    jobs = [links(name, ids) for name, ids in owners.items() if ids]
    listing = [reader.soft_deleted(rtype)] if deleted and rtype.soft_delete is not None else []
    results = await asyncio.gather(*jobs, *listing)
    found = dict(results[: len(jobs)])
    return reader.deleted.get(rtype.name, ()), MappingProxyType(found)


async def read_expanded_links(
    client: GraphClient, rtype: ResourceType, progress: Progress | Reads | None = None
) -> Mapping[str, Mapping[str, tuple[str, ...]]]:
    """Per link of `rtype` that Graph expands in the owners' lists (and delta does not track), every owner it is
    read for with its link ids, as a full read reads them."""
    reader = _Reader(client, watched(progress))
    props = [p for p in rtype.links if p.link is not None and p.link.by_expansion]
    found = await asyncio.gather(*(reader.expanded_links(rtype, p) for p in props))
    return MappingProxyType({p.name: MappingProxyType(links) for p, links in zip(props, found, strict=True)})
