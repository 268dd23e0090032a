"""A read that continues from a backup: a delta type's files are that backup's, changed where Graph's delta
round says so, so only what changed is parsed, normalized and rendered.

The rule it keeps: the tree it gives is byte for byte the tree a full read of the same tenant gives. So a
changed object is normalized from its delta row exactly as a listed one is, its tracked links are the
backup's plus the round's link changes (an object new since the backup has its links read one by one),
links delta does not track are read again for every object a full read reads them for, and soft-deleted
objects come from deleted items in full, as always.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from entra_gitops import __version__
from entra_gitops.graph.client import GraphClient
from entra_gitops.graph.delta import DeltaChanges, DeltaTokenRejected, latest_link, links_only, read_changes
from entra_gitops.graph.reader import RowKeeper, read_around_delta, read_expanded_links, read_tenant
from entra_gitops.model import canonical
from entra_gitops.model.ids import fold_id
from entra_gitops.model.progress import Progress, Reads, watched
from entra_gitops.model.reads import GraphStats, TenantRead
from entra_gitops.model.registry import PropertySpec, Registry, ResourceType
from entra_gitops.model.tenant import Lifecycle, TenantState
from entra_gitops.state.gitstore import Backup, StateRepo, blob_id
from entra_gitops.state.layout import DELETED_DIR, STATE_DIR, SUFFIX, load_state, locate, render_files, type_prefixes
from entra_gitops.state.normalize import Redaction, normalize_read, normalized_link
from entra_gitops.state.paths import object_id_from_file_name

T = TypeVar("T")


def type_basis(rtype: ResourceType) -> str:
    """What a type's files were made by: its schema and the tool. Files of another basis may differ byte for
    byte from what this run would write, so a delta round never continues from them."""
    digest = hashlib.sha256(rtype.schema_path.read_bytes() + f"\0{__version__}".encode())
    return digest.hexdigest()[:20]


@dataclass(frozen=True)
class DeltaBase:
    """Where a type's delta round continues from: the backup whose files it changes, and that backup's link."""

    rtype: ResourceType
    backup: Backup
    link: str


def choose_bases(
    types: Iterable[ResourceType], backups: Iterable[Backup], *, full: bool
) -> tuple[Mapping[str, DeltaBase], Mapping[str, str]]:
    """Per delta type, the newest backup to continue from, or why it is read in full (for the output)."""
    newest_first = list(backups)
    bases: dict[str, DeltaBase] = {}
    reasons: dict[str, str] = {}
    for rtype in types:
        if rtype.delta is None:
            continue
        if full:
            reasons[rtype.name] = "--full"
            continue
        recorded = next((b for b in newest_first if rtype.name in b.delta), None)
        if recorded is None:
            reasons[rtype.name] = "no backup holds its delta link yet"
        elif recorded.delta[rtype.name].basis != type_basis(rtype):
            reasons[rtype.name] = f"its schema or entra-gitops changed since {recorded.id}"
        elif (problem := _read_when_problem(rtype)) is not None:
            reasons[rtype.name] = problem
        else:
            bases[rtype.name] = DeltaBase(rtype, recorded, recorded.delta[rtype.name].link)
    return MappingProxyType(bases), MappingProxyType(reasons)


@dataclass(frozen=True)
class TypeTree:
    """One delta type's part of the new tree: every path to blob id, and the files rendered now."""

    type_name: str
    blobs: Mapping[str, str]
    files: Mapping[str, bytes]
    live_ids: tuple[str, ...]
    deleted: int
    redactions: tuple[Redaction, ...]
    next_link: str


def _read_when_lines(prop: PropertySpec) -> tuple[tuple[str, ...], ...]:
    """Each of a link's read conditions as the canonical lines an object's file holds when it meets it."""
    assert prop.link is not None
    return tuple(
        tuple(canonical.dump({k: v}).decode().rstrip("\n") for k, v in condition.items())
        for condition in prop.link.read_when
    )


def _read_when_problem(rtype: ResourceType) -> str | None:
    """Why the backup's files cannot tell whom a full read reads a link for (then the type is read in full)."""
    for prop in rtype.links:
        assert prop.link is not None
        for condition in prop.link.read_when:
            for key, value in condition.items():
                if rtype.prop(key) is None or isinstance(value, (Mapping, list, tuple)):
                    return f"its {prop.name} are read only where {key} matches, which its files cannot show"
    return None


def base_read_for(store: StateRepo, base: DeltaBase) -> Mapping[str, frozenset[str]]:
    """Per link delta does not track, the ids of the backup's objects a full read reads it for (git grep)."""
    rtype = base.rtype
    prefix = f"{STATE_DIR}/{rtype.folder}/"
    found: dict[str, frozenset[str]] = {}
    for prop in rtype.links:
        assert prop.link is not None
        if prop.link.delta or prop.link.by_expansion:
            continue
        if not prop.link.read_when:
            found[prop.name] = frozenset(_ids(store.tree_blobs(base.backup.commit, prefix)))
            continue
        conditions = _read_when_lines(prop)
        # Conditions of one property each are one grep for all; one of several holds where all its lines are.
        single = [lines[0] for lines in conditions if len(lines) == 1]
        owners = store.files_with_line(base.backup.commit, prefix, single) if single else set()
        for lines in conditions:
            if len(lines) > 1:
                owners |= set.intersection(*(store.files_with_line(base.backup.commit, prefix, [x]) for x in lines))
        found[prop.name] = frozenset(_ids(owners))
    return MappingProxyType(found)


# A lower-case GUID's file: the name is its own id, already folded. Nearly every file is one, and a daily run
# maps every path of the backup, so these skip the general decoding (which gives the same answer, slower).
_LOWER_GUID_FILE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}" + re.escape(SUFFIX))


def _ids(paths: Iterable[str]) -> dict[str, str]:
    """object id (as compared) -> path, for object files among `paths`."""
    found: dict[str, str] = {}
    for path in paths:
        name = path[path.rfind("/") + 1 :]
        if _LOWER_GUID_FILE.fullmatch(name):
            found[name[: -len(SUFFIX)]] = path
        else:
            found[fold_id(object_id_from_file_name(name.removesuffix(SUFFIX)))] = path
    return found


def link_reads(
    rtype: ResourceType, base_live: frozenset[str], changes: DeltaChanges, read_for: Mapping[str, frozenset[str]]
) -> Mapping[str, tuple[str, ...]]:
    """Per link, whose links are read one by one: objects new since the backup for links delta tracks; for
    the others, every live object a full read reads them for (links the owners' lists expand are read so)."""
    live_now = (base_live - changes.removed.keys()) | changes.changed.keys()
    found: dict[str, tuple[str, ...]] = {}
    for prop in rtype.links:
        assert prop.link is not None
        if prop.link.by_expansion:
            continue
        if prop.link.delta:
            found[prop.name] = tuple(sorted(i for i in changes.changed if i not in base_live))
            continue
        found[prop.name] = tuple(
            sorted(
                i
                for i in live_now
                if (prop.link.is_read_for(changes.changed[i]) if i in changes.changed else i in read_for[prop.name])
            )
        )
    return MappingProxyType(found)


def merged_tree(
    registry: Registry,
    rtype: ResourceType,
    base_blobs: Mapping[str, str],
    base_data: Mapping[str, Mapping[str, Any]],
    changes: DeltaChanges,
    reread: Mapping[str, Mapping[str, tuple[str, ...]]],
    deleted: tuple[dict[str, Any], ...],
) -> TypeTree:
    """The type's new tree (pure): the backup's live files less what was removed, the changed objects and
    those whose links were read again rendered anew, and deleted items in full.

    `base_blobs` are the backup's live files of the type; `base_data` the parsed ones the round touches.
    """
    live_paths = _ids(base_blobs)
    owners = {o for by_owner in reread.values() for o in by_owner}
    raws: dict[str, Mapping[str, Any]] = {}
    for object_id in sorted(changes.changed.keys() | (owners & live_paths.keys())):
        row = changes.changed.get(object_id)
        earlier = base_data.get(object_id)
        if row is None or (links_only(row) and earlier is not None):
            row = {k: v for k, v in (earlier or {}).items() if rtype.prop(k) is None or rtype.prop(k).link is None}
        raws[object_id] = row
    links: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {}
    for prop in rtype.links:
        assert prop.link is not None
        by_owner: dict[str, tuple[str, ...]] = {}
        for object_id in raws:
            if object_id in reread.get(prop.name, {}):
                by_owner[object_id] = reread[prop.name][object_id]
            elif prop.link.delta:
                members = dict.fromkeys(base_data.get(object_id, {}).get(prop.name, ()))
                for member, present in changes.links.get((object_id, prop.name), {}).items():
                    if present:
                        members[member] = None
                    else:
                        members.pop(member, None)
                by_owner[object_id] = tuple(members)
            elif object_id in base_data and object_id not in changes.changed:
                by_owner[object_id] = tuple(base_data[object_id].get(prop.name, ()))
        links[(rtype.name, prop.name)] = by_owner
    read = TenantRead(
        objects=MappingProxyType({rtype.name: tuple(dict(r) for r in raws.values())}),
        deleted=MappingProxyType({rtype.name: deleted} if rtype.soft_delete is not None else {}),
        links=MappingProxyType({k: MappingProxyType(v) for k, v in links.items()}),
        stats=GraphStats(0, 0, 0, 0, 0),
    )
    normal = normalize_read(registry, read)
    files = render_files(registry, normal.state)
    blobs = {p: base_blobs[p] for i, p in live_paths.items() if i not in changes.removed and i not in raws}
    blobs.update({p: blob_id(c) for p, c in files.items()})
    gone = deleted_prefix(rtype)
    live = tuple(sorted(_ids(p for p in blobs if not p.startswith(gone))))
    return TypeTree(
        type_name=rtype.name,
        blobs=MappingProxyType(blobs),
        files=MappingProxyType(files),
        live_ids=live,
        deleted=len(blobs) - len(live),
        redactions=normal.redactions,
        next_link=changes.next_link,
    )


async def read_from_base(
    client: GraphClient, store: StateRepo, registry: Registry, base: DeltaBase, progress: Progress
) -> TypeTree:
    """Continue a type from its base backup: Graph's delta round, the reads around it, the backup's files it
    touches; DeltaTokenRejected when Graph will not continue from the stored link."""
    rtype = base.rtype

    def backup_files() -> tuple[dict[str, str], Mapping[str, frozenset[str]]]:
        listed = store.tree_blobs(base.backup.commit, f"{STATE_DIR}/{rtype.folder}/")
        return {p: b for p, b in listed.items() if _is_live_file(registry, p)}, base_read_for(store, base)

    # Graph's delta round, deleted items and the backup's listing do not wait for one another; git runs in a
    # thread, so the other types' requests go on meanwhile.
    listing = in_git_thread(backup_files)
    try:
        # Every read ends before this one does, so none outlives a refused token; a refusal wins (a full read of
        # the type follows, which meets any other failure again).
        results = await asyncio.gather(
            read_changes(client, rtype, base.link, progress),
            read_around_delta(client, rtype, {}, progress),
            read_expanded_links(client, rtype, progress),
            return_exceptions=True,
        )
    finally:
        # Even when Graph refuses the token, git's work ends before anything else may use the repository.
        base_blobs, read_for = await listing
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise next((f for f in failures if isinstance(f, DeltaTokenRejected)), failures[0])
    changes, (deleted, _), expanded = results
    by_id = _ids(base_blobs)
    owners = link_reads(rtype, frozenset(by_id), changes, read_for)
    _, one_by_one = await read_around_delta(client, rtype, owners, progress, deleted=False)
    # An owner listed again only for an expanded link, whose file holds those links already, stays as it is.
    touched = changes.changed.keys() | {o for ids in one_by_one.values() for o in ids}
    listed_only = {o for links in expanded.values() for o in links if o in by_id and o not in touched}
    contents = await in_git_thread(lambda: store.read_blobs(base_blobs[by_id[o]] for o in listed_only))
    same = {o for o in listed_only if _links_held(rtype, contents[base_blobs[by_id[o]]], expanded, o)}
    reread = {
        **one_by_one,
        **{name: {o: ids for o, ids in links.items() if o not in same} for name, links in expanded.items()},
    }
    wanted = {i for i in changes.changed if i in by_id}
    wanted |= {o for ids in reread.values() for o in ids if o in by_id}

    def parsed() -> dict[str, Any]:
        contents = store.read_blobs(base_blobs[by_id[i]] for i in wanted)
        return {i: canonical.load(contents[base_blobs[by_id[i]]], by_id[i]) for i in wanted}

    base_data = await in_git_thread(parsed)
    return merged_tree(registry, rtype, base_blobs, base_data, changes, reread, deleted)


def _links_held(
    rtype: ResourceType, content: bytes, listed: Mapping[str, Mapping[str, tuple[str, ...]]], owner: str
) -> bool:
    """Whether an owner's file holds, for each listed link, the ids listed now (read from that key's own lines:
    the rest of the file is neither parsed nor rendered)."""
    return all(
        _file_value(content, name) == normalized_link(rtype, name, links.get(owner, ()))
        for name, links in listed.items()
    )


def _file_value(content: bytes, key: str) -> Any:
    """A top-level key's value in a canonical file, from its lines alone (None when the file has no such key).

    Top-level keys are the only lines at column 0 (values nest indented), so the key's line and the indented
    lines after it are the whole of its value."""
    head = canonical.dump({key: 0}).split(b":")[0] + b":"
    lines = content.split(b"\n")
    for n, line in enumerate(lines):
        if line == head or line.startswith(head + b" "):
            block = [line, *itertools.takewhile(lambda more: more.startswith(b" "), lines[n + 1 :])]
            return canonical.load(b"\n".join(block) + b"\n", f"{key} of a backup file")[key]
    return None


# GitPython's repository keeps one long-lived `git cat-file` process: one thread at a time may use it.
_GIT_THREAD = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="entra-gitops-git")


def in_git_thread(work: Callable[[], T]) -> asyncio.Future[T]:
    """`work` (git I/O) off the event loop, so Graph requests go on meanwhile; one such thread for the process."""
    return asyncio.get_running_loop().run_in_executor(_GIT_THREAD, work)


def _is_live_file(registry: Registry, path: str) -> bool:
    where = locate(registry, path)
    return where is not None and where.lifecycle is Lifecycle.ACTIVE and where.object_id is not None


def deleted_prefix(rtype: ResourceType) -> str:
    """The folder of a type's soft-deleted objects."""
    return f"{STATE_DIR}/{DELETED_DIR}/{rtype.folder}/"


class CurrentRead(NamedTuple):
    """A read of the live tenant: delta types as trees over their bases, the rest read in full (`read`), the
    links that continue from the types read in full, and why any delta type fell back to a full read."""

    trees: Mapping[str, TypeTree]
    read: TenantRead
    links: Mapping[str, str]
    refused: Mapping[str, str]


async def read_current(
    client: GraphClient,
    store: StateRepo,
    registry: Registry,
    types: tuple[ResourceType, ...],
    bases: Mapping[str, DeltaBase],
    progress: Progress | Reads | None = None,
    phase: str = "read",
    keep: RowKeeper | None = None,
) -> CurrentRead:
    """Continue the delta types from their bases while the other types are read in full, at the same time; then
    read in full the types whose token Graph refused and the children of delta types (their parents known).
    `keep` is what the full reads hold of each object as its page comes (see `read_tenant`)."""
    watch = watched(progress)
    # Children of a delta type wait for its live ids, unless the parent's own list expands them.
    children = {t.name for t in types if t.parent is not None and t.parent.type_name in bases and not t.parent.expand}
    now = tuple(t for t in types if t.name not in bases and t.name not in children)

    async def continued() -> tuple[dict[str, TypeTree], dict[str, str]]:
        # Every type's round ends, its git work with it, before any error leaves: nothing outlives the read.
        results = await asyncio.gather(
            *(read_from_base(client, store, registry, b, watch) for b in bases.values()), return_exceptions=True
        )
        failed = [r for r in results if isinstance(r, BaseException) and not isinstance(r, DeltaTokenRejected)]
        if failed:
            raise failed[0]
        trees = {r.type_name: r for r in results if isinstance(r, TypeTree)}
        refused = {
            r.type_name: f"{r.reason} (the link backup {bases[r.type_name].backup.id} recorded)"
            for r in results
            if isinstance(r, DeltaTokenRejected)
        }
        return trees, refused

    async def in_full(
        group: tuple[ResourceType, ...], parents: Mapping[str, tuple[str, ...]]
    ) -> tuple[dict[str, str], TenantRead]:
        # A link taken before the full read: what changes while it runs is read again next time, never lost.
        delta_types = [t for t in group if t.delta]
        links = await asyncio.gather(*(latest_link(client, t) for t in delta_types))
        read = await read_tenant(client, registry, group, watch, phase, parents=parents, keep=keep)
        return dict(zip([t.name for t in delta_types], links, strict=True)), read

    async def then_the_rest() -> tuple[dict[str, TypeTree], dict[str, str], dict[str, str], TenantRead | None]:
        trees, refused = await continued()
        later = tuple(t for t in types if t.name in refused or t.name in children)
        if not later:
            return trees, refused, {}, None
        more, read = await in_full(later, {name: tree.live_ids for name, tree in trees.items()})
        return trees, refused, more, read

    (trees, refused, more, second), (links, first) = await asyncio.gather(then_the_rest(), in_full(now, {}))
    links.update(more)
    if second is not None:
        first = TenantRead(
            objects=MappingProxyType({**first.objects, **second.objects}),
            deleted=MappingProxyType({**first.deleted, **second.deleted}),
            links=MappingProxyType({**first.links, **second.links}),
            stats=client.stats,
            normalized=first.normalized,
        )
    return CurrentRead(MappingProxyType(trees), first, MappingProxyType(links), MappingProxyType(refused))


async def current_state(
    client: GraphClient,
    store: StateRepo,
    registry: Registry,
    types: tuple[ResourceType, ...],
    progress: Progress | Reads | None = None,
    phase: str = "read",
) -> TenantState:
    """The live tenant's state for `types`, as a snapshot would read it, at the cost of what changed: each
    delta type is the newest backup holding its delta link plus Graph's delta round since, the other types
    are read in full (as is a delta type whose token Graph refuses)."""
    bases, _ = choose_bases(types, store.backups(), full=False)
    current = await read_current(client, store, registry, types, bases, progress, phase)
    objects = list(normalize_read(registry, current.read, None).state)
    for tree in current.trees.values():
        kept = {p: b for p, b in tree.blobs.items() if p not in tree.files}
        contents = store.read_blobs(kept.values())
        files = {**{p: contents[b] for p, b in kept.items()}, **tree.files}
        objects.extend(load_state(registry, files, frozenset({tree.type_name})))
    return TenantState.of(objects, frozenset(t.name for t in types))


class Narrowed(NamedTuple):
    """A source and the live tenant cut down to what can differ: objects whose files are the same blob on both
    sides are left out of both states (they cannot differ), counted in `identical`, and kept findable."""

    before: TenantState
    after: TenantState
    lifecycles: Mapping[str, Lifecycle]  # every live object's id and where it is: links are classified by it
    identical: Mapping[str, int]  # per type, objects left out because both sides hold the same file
    unparsed: Mapping[str, tuple[str, str]]  # id -> (path, blob) of the objects left out, for naming them


def _by_object(registry: Registry, blobs: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """folded object id -> {path: blob} of its files (one, or a live and a deleted one)."""
    found: dict[str, dict[str, str]] = {}
    for path, blob in blobs.items():
        where = locate(registry, path)
        if where is not None and where.object_id is not None:
            found.setdefault(fold_id(where.object_id), {})[path] = blob
    return found


async def narrowed_live(
    client: GraphClient,
    store: StateRepo,
    registry: Registry,
    types: tuple[ResourceType, ...],
    commit: str,
    source_types: frozenset[str] | None,
    keep: Iterable[str] = (),
    progress: Progress | Reads | None = None,
) -> Narrowed:
    """The source at `commit` and the live tenant (as `current_state` reads it), parsed only where they can
    differ: for a delta type, an object whose file has the same blob in the source and in the live tree is
    neither parsed nor compared. `keep` ids are parsed whatever their blobs (the scope's --id)."""
    bases, _ = choose_bases(types, store.backups(), full=False)
    current = await read_current(client, store, registry, types, bases, progress)
    full = normalize_read(registry, current.read, None).state
    kept = {fold_id(i) for i in keep}
    listing = store.tree_blobs(commit)
    lifecycles = {o.id: o.lifecycle for o in full}
    source_blobs: dict[str, str] = {}
    live_blobs: dict[str, str] = {}
    identical: dict[str, int] = {}
    unparsed: dict[str, tuple[str, str]] = {}
    for rtype in types:
        prefixes = type_prefixes([rtype])
        source = {p: b for p, b in listing.items() if p.startswith(prefixes)}
        tree = current.trees.get(rtype.name)
        if tree is None:
            source_blobs.update(source)
            continue
        was, now = _by_object(registry, source), _by_object(registry, tree.blobs)
        gone = deleted_prefix(rtype)
        for object_id, files in now.items():
            deleted = any(p.startswith(gone) for p in files)
            lifecycles[object_id] = Lifecycle.SOFT_DELETED if deleted else Lifecycle.ACTIVE
        same = {i for i, files in was.items() if now.get(i) == files and i not in kept}
        identical[rtype.name] = len(same)
        for object_id in same:
            unparsed[object_id] = next(iter(now[object_id].items()))
        source_blobs.update({p: b for i, files in was.items() if i not in same for p, b in files.items()})
        live_blobs.update({p: b for i, files in now.items() if i not in same for p, b in files.items()})
    rendered = {p: c for tree in current.trees.values() for p, c in tree.files.items() if p in live_blobs}
    contents = store.read_blobs([*source_blobs.values(), *(b for p, b in live_blobs.items() if p not in rendered)])
    before = load_state(registry, {p: contents[b] for p, b in source_blobs.items()}, source_types)
    live_files = {p: rendered[p] if p in rendered else contents[b] for p, b in live_blobs.items()}
    after = load_state(registry, live_files, frozenset(current.trees))
    names = frozenset(t.name for t in types)
    return Narrowed(
        before,
        TenantState.of([*full, *after], names),
        MappingProxyType(lifecycles),
        MappingProxyType(identical),
        MappingProxyType(unparsed),
    )


def objects_named(store: StateRepo, registry: Registry, narrowed: Narrowed, ids: Iterable[str]) -> TenantState:
    """The objects among `ids` that narrowing left unparsed, parsed now: a report names the links it shows."""
    wanted = {i: narrowed.unparsed[i] for i in {fold_id(x) for x in ids} if i in narrowed.unparsed}
    contents = store.read_blobs(blob for _, blob in wanted.values())
    return load_state(registry, {path: contents[blob] for path, blob in wanted.values()})
