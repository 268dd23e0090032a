"""A snapshot: read every type in scope, and only then commit tenant-state/ and tag it as a backup."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from entra_gitops import __version__
from entra_gitops.graph.audit import read_audit
from entra_gitops.graph.client import GraphClient
from entra_gitops.graph.reader import read_tenant_id
from entra_gitops.model import canonical
from entra_gitops.model.attribution import ObjectActors, actors_of_changes
from entra_gitops.model.errors import EntraGitopsError
from entra_gitops.model.ids import fold_id
from entra_gitops.model.progress import Progress, Reads, watched
from entra_gitops.model.reads import GraphStats
from entra_gitops.model.registry import Registry, ResourceType
from entra_gitops.model.settings import CONFIG_FILE, DEFAULT_CONFIG_TEXT, Config, set_tenant_id
from entra_gitops.model.tenant import Lifecycle
from entra_gitops.state.gitstore import (
    Backup,
    BlobWriter,
    RepositoryError,
    StateRepo,
    TreeChange,
    backup_message,
    backup_name,
    blob_id,
    parse_backup,
)
from entra_gitops.state.history import Recreation, read_history, recreated_in
from entra_gitops.state.incremental import choose_bases, in_git_thread, read_current, type_basis
from entra_gitops.state.layout import locate, type_prefixes
from entra_gitops.state.normalize import Redaction
from entra_gitops.state.rendering import PageRenderer, render_read
from entra_gitops.state.signals import deferred
from entra_gitops.state.tenancy import check_tenant, expected_tenant
from entra_gitops.state.trees import Entry, state_blobs


class IncompleteReadError(EntraGitopsError):
    """A read that looks like a failure (a type suddenly empty, or shrunk past the guard), so no backup is made."""


@dataclass(frozen=True)
class SnapshotOutcome:
    """What a snapshot did: the backup, the commit, what changed per type, what it cost."""

    backup: Backup
    created_commit: bool
    change: TreeChange
    changes_by_type: Mapping[str, tuple[int, int, int]]
    pruned: tuple[str, ...]
    stats: GraphStats
    redactions: tuple[Redaction, ...]
    seconds: Mapping[str, float]
    notes: tuple[str, ...] = ()  # what the run did besides: finishing an interrupted run's work tree
    read_by: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # type -> "delta" | "full"
    full_reasons: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # why a delta type was not
    audit_warning: str | None = None  # the audit log could not be read: the commit message says "unknown"
    recreated: tuple[Recreation, ...] = ()  # objects an apply re-created since the last backup, first seen now


def suspect_shrinks(
    previous: Backup | None,
    counts: Mapping[str, int],
    deleted: Mapping[str, int],
    config: Config,
    accepted: frozenset[str] = frozenset(),
) -> tuple[str, ...]:
    """Types whose live objects fell suspiciously against the last complete backup, each in words.

    A type that had at least `emptyReadGuard` objects and now reads as empty, or shrinks by more than
    `shrinkGuard`, is more likely a lost page or a filter bug than a deletion; committing it as a backup
    would make the next plan delete everything that read missed.
    """
    if previous is None:
        return ()
    found = []
    for type_name, count in sorted(counts.items()):
        had = previous.counts.get(type_name, 0)
        if type_name in accepted or had < max(config.empty_read_guard, 1):
            continue
        if count == 0 or count < had * (1 - config.shrink_guard):
            more_deleted = deleted.get(type_name, 0) - previous.deleted.get(type_name, 0)
            note = f"; {more_deleted} more are in deleted items than then" if more_deleted > 0 else ""
            found.append(f"{type_name}: {count} read, backup {previous.id} had {had} (-{1 - count / had:.0%}){note}")
    return tuple(found)


def check_counts(
    previous: Backup | None,
    counts: Mapping[str, int],
    deleted: Mapping[str, int],
    config: Config,
    accepted: frozenset[str],
) -> None:
    """Refuse a read that looks truncated: no commit, no tag, the counts in the message."""
    found = suspect_shrinks(previous, counts, deleted, config, accepted)
    if found:
        raise IncompleteReadError(
            f"suspect read, so no commit and no backup were made: {'; '.join(found)}. A lost page or a wrong "
            "filter looks like this; so does a mass deletion, whose backup would make the next plan keep it",
            hint="check the app's Graph permissions and run again; if the objects really are gone, take the "
            f"snapshot with --accept-shrink {found[0].split(':')[0]} (shrinkGuard and emptyReadGuard in {CONFIG_FILE})",
        )


def changes_by_type(registry: Registry, change: TreeChange) -> Mapping[str, tuple[int, int, int]]:
    """(added, modified, removed) files per type name."""
    tally: dict[str, list[int]] = {}
    for column, paths in enumerate((change.added, change.modified, change.removed)):
        for path in paths:
            where = locate(registry, path)
            name = where.rtype.name if where else "other"
            tally.setdefault(name, [0, 0, 0])[column] += 1
    return MappingProxyType({k: (v[0], v[1], v[2]) for k, v in sorted(tally.items())})


def commit_message(by_type: Mapping[str, tuple[int, int, int]], counts: Mapping[str, int]) -> str:
    """A commit message that says per type what changed, for `git log` readers."""
    total = sum(sum(v) for v in by_type.values())
    lines = [f"Snapshot: {total} object file{'s' if total != 1 else ''} changed", ""]
    for name, (added, modified, removed) in by_type.items():
        lines.append(f"{name}: +{added} ~{modified} -{removed} (now {counts.get(name, 0)})")
    return "\n".join(lines) + "\n"


MAX_ACTOR_LINES = 200  # a commit message stays readable; the report of `diff` has every object


def changed_objects(
    registry: Registry, change: TreeChange, files: Mapping[str, bytes]
) -> list[tuple[str, str, str | None]]:
    """(type, id, display name) of each object a snapshot adds, changes or removes, once (a soft delete moves
    the object's file: one object, two paths)."""
    found: dict[tuple[str, str], str | None] = {}
    for path in (*change.added, *change.modified, *change.removed):
        where = locate(registry, path)
        if where is None or where.object_id is None:
            continue
        display = None
        if where.rtype.display and path in files:
            value = canonical.load(files[path], path).get(where.rtype.display)
            display = value if isinstance(value, str) else None
        key = (where.rtype.name, where.object_id)
        found[key] = found.get(key) or display
    return [(type_name, object_id, display) for (type_name, object_id), display in found.items()]


def _contents(
    store: StateRepo, change: TreeChange, files: Mapping[str, bytes], blobs: Mapping[str, str]
) -> Mapping[str, bytes]:
    """The bytes of the files a change adds or modifies: held, or read back from the blobs the run wrote."""
    stored = [p for p in (*change.added, *change.modified) if p not in files and p in blobs]
    found = store.read_blobs(blobs[p] for p in stored)
    return {**{p: found[blobs[p]] for p in stored}, **files}


def actor_section(actors: tuple[ObjectActors, ...], available: bool) -> str:
    """The commit message's "Changed by" lines: per changed object, who did it according to the audit log."""
    if not actors:
        return ""
    lines = ["", "Changed by (directory audit log):" if available else "Changed by: unknown (audit log not readable)"]
    if available:
        lines += [f"- {a.line}" for a in actors[:MAX_ACTOR_LINES]]
        if len(actors) > MAX_ACTOR_LINES:
            lines.append(f"- and {len(actors) - MAX_ACTOR_LINES} more objects (entra-gitops diff shows each)")
    return "\n".join(lines) + "\n"


def recreations_added(
    store: StateRepo, registry: Registry, types: tuple[ResourceType, ...], backups: list[Backup], change: TreeChange
) -> tuple[Recreation, ...]:
    """The objects this snapshot adds that an apply re-created since the last backup of their type (history says)."""
    added: dict[str, set[str]] = {}
    for path in change.added:
        where = locate(registry, path)
        if where is not None and where.object_id is not None and where.lifecycle is Lifecycle.ACTIVE:
            added.setdefault(where.rtype.name, set()).add(fold_id(where.object_id))
    if not added:
        return ()
    since = {t.name: max((b.time for b in backups if t.name in b.counts), default=None) for t in types}
    recreations = read_history(store).recreations(since)
    return recreated_in(recreations, {name: frozenset(ids) for name, ids in added.items()})


def recreation_section(recreated: tuple[Recreation, ...]) -> str:
    """The commit message's lines naming each object an apply re-created, so `git log` tells it from a new one."""
    if not recreated:
        return ""
    return "\n".join(["", "Re-created by entra-gitops apply:", *(f"- {r.line()}" for r in recreated)]) + "\n"


def pruned_backups(backups: list[Backup], keep: int) -> list[str]:
    """Backup tags retention removes: everything older than the `keep`-th newest complete backup."""
    newest_first = sorted(backups, key=lambda b: b.time, reverse=True)
    complete = [b for b in newest_first if b.complete]
    if len(complete) <= keep:
        return []
    cutoff = complete[keep - 1].time
    return [b.name for b in newest_first if b.time < cutoff]


def _record_tenant(store: StateRepo, files: dict[str, bytes], change: TreeChange, tenant: str) -> TreeChange:
    """Add tenantId to entra-gitops.yaml in the snapshot's own commit."""
    path = store.root / CONFIG_FILE
    current = path.read_bytes() if path.is_file() else DEFAULT_CONFIG_TEXT.encode()
    updated = set_tenant_id(current, tenant, str(path))
    if path.is_file() and updated == current:
        return change
    files[CONFIG_FILE] = updated
    if path.is_file():
        return change._replace(modified=(*change.modified, CONFIG_FILE))
    return change._replace(added=(*change.added, CONFIG_FILE))


def _free_name(store: StateRepo, moment: dt.datetime) -> str:
    # Names have one-second resolution; two snapshots in one second take the next free second.
    taken = {b.name for b in store.backups()}
    name = backup_name(moment)
    while name in taken:
        moment += dt.timedelta(seconds=1)
        name = backup_name(moment)
    return name


async def take_snapshot(
    client: GraphClient,
    store: StateRepo,
    registry: Registry,
    types: tuple[ResourceType, ...],
    config: Config,
    now: dt.datetime,
    progress: Progress | Reads | None = None,
    accept_shrink: frozenset[str] = frozenset(),
    *,
    full: bool = False,
) -> SnapshotOutcome:
    """Check the tenant, read, normalize, commit and tag; nothing is written unless every read succeeded.

    A type Graph tracks by delta continues from the newest backup holding its delta link (unless `full`):
    only what changed since is read, parsed and rendered, and the tree is the one a full read would give.
    `progress` is told each phase as it goes: read (per type; objects are normalized and rendered as their pages
    come), render (the objects that waited for their links), compare, commit, check out.
    """
    watch = watched(progress)
    recovered = store.finish_interrupted()
    # Uncommitted edits are looked for beside the reads (git status costs in proportion to the tree); any found
    # stop the run before anything is written, the reads cut short if they are still going.
    dirty = asyncio.ensure_future(asyncio.to_thread(store.dirty_state_files))
    # The files go into git's object store as they are rendered, and the run holds only their blob ids: until a
    # commit refers to them they are nothing, and a run that stops before the stream is finished removes it.
    writer = BlobWriter(store)
    try:
        return await _snapshot(
            client, store, registry, types, config, now, watch, accept_shrink, full, dirty, recovered, writer
        )
    except BaseException:
        writer.abort()
        raise
    finally:
        refuse_dirty(await dirty)


def refuse_dirty(dirty: list[str]) -> None:
    """Refuse a snapshot over uncommitted edits under tenant-state/, which it would overwrite."""
    if dirty:
        shown = ", ".join(dirty[:3]) + (f" and {len(dirty) - 3} more" if len(dirty) > 3 else "")
        raise RepositoryError(
            f"tenant-state/ has uncommitted changes ({shown}); a snapshot would overwrite them",
            hint="commit them, or discard them with "
            "'git restore --source=HEAD --staged --worktree -- tenant-state && git clean -fdq -- tenant-state'",
        )


async def _snapshot(
    client: GraphClient,
    store: StateRepo,
    registry: Registry,
    types: tuple[ResourceType, ...],
    config: Config,
    now: dt.datetime,
    watch: Progress,
    accept_shrink: frozenset[str],
    full: bool,
    dirty: asyncio.Future[list[str]],
    recovered: str | None,
    writer: BlobWriter,
) -> SnapshotOutcome:
    clock = [time.perf_counter()]

    def lap() -> float:
        clock.append(time.perf_counter())
        return clock[-1] - clock[-2]

    backups = store.backups()
    previous_any = backups[0] if backups else None
    tenant = await read_tenant_id(client, registry)
    check_tenant(*expected_tenant(config, backups), tenant, client.base_url)
    bases, reasons = choose_bases(types, backups, full=full)
    # HEAD's listing, which the comparison needs, is read while Graph is: git's thread is mostly idle then.
    listing = in_git_thread(store.tree_listing)

    def known(done: asyncio.Future[dict[str, Entry]]) -> None:
        # Once it is in, files HEAD holds already (a --full read's unchanged objects) are not written again.
        if not done.cancelled() and done.exception() is None:
            writer.know(state_blobs(done.result()).values())

    listing.add_done_callback(known)
    try:
        # Each object is normalized as its page comes, and rendered and written then unless a link or child of it
        # is still to be read: the raw pages never pile up, and most objects are held only as blob ids.
        rows = PageRenderer(registry, writer)
        reading = asyncio.ensure_future(read_current(client, store, registry, types, bases, watch, keep=rows))
        await asyncio.wait((reading, dirty), return_when=asyncio.FIRST_COMPLETED)
        if dirty.done() and dirty.result():
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
            refuse_dirty(dirty.result())
        current = await reading
        refuse_dirty(await dirty)  # before anything is written
    finally:
        head_tree = await listing  # no git work outlives the read, whatever became of it
    head_blobs = state_blobs(head_tree)
    trees, read, refused = current.trees, current.read, current.refused
    reasons = {**reasons, **refused}
    links = dict(current.links)
    read_seconds = lap()
    watch.phase("render", sum(map(len, read.objects.values())) + sum(map(len, read.deleted.values())), "files")
    rendered = render_read(registry, read, watch.advance, rows)
    del read, current  # the rows: the blobs are all that is needed of them now
    counts = {**rendered.counts, **{name: len(tree.live_ids) for name, tree in trees.items()}}
    deleted = {**rendered.deleted, **{name: tree.deleted for name, tree in trees.items() if tree.deleted}}
    counts = dict(sorted(counts.items()))
    deleted = dict(sorted(deleted.items()))
    previous = next((b for b in backups if b.complete), None)
    check_counts(previous, counts, deleted, config, accept_shrink)
    writer.finish()  # a suspect read has been refused, its blobs with it: these are the backup's

    files, blobs = rendered.files, rendered.blobs
    for tree in trees.values():
        files.update(tree.files)
        blobs.update(tree.blobs)
    render_seconds = lap()
    watch.phase("compare")
    change = store.blob_change(blobs, type_prefixes(types), head_blobs)
    by_type = changes_by_type(registry, change)
    recreated = recreations_added(store, registry, types, backups, change)
    message = commit_message(by_type, counts) + recreation_section(recreated)
    audit_warning = None
    if previous_any is not None and not change.empty:
        # Who made each change since the last backup, so `git log` and `git blame` answer "who" too.
        changed = changed_objects(registry, change, _contents(store, change, files, blobs))
        audit = await read_audit(client, previous_any.time, {i for _, i, _ in changed}, watch)
        audit_warning = audit.warning
        message += actor_section(actors_of_changes(audit.events, changed, since=previous_any.time), audit.available)
    if config.tenant_id is None and not store.dirty_files(CONFIG_FILE):
        # The first snapshot records the tenant it read, so later runs refuse any other one.
        recorded = _record_tenant(store, files, change, tenant)
        if recorded != change:
            change, message = recorded, message + f"\n{CONFIG_FILE}: tenantId {tenant} recorded\n"
    commit = store.head
    if not change.empty:
        # Most files went into the object store as they were rendered; the commit writes the rest and the trees.
        watch.phase("commit", sum(1 for p in (*change.added, *change.modified) if p in files), "files")
        commit = store.write_commit(files, change, message, now, watch.advance, stored=blobs, listing=head_tree)
    assert commit is not None
    name = _free_name(store, now)
    links.update({name: tree.next_link for name, tree in trees.items()})
    read_by = {t.name: "delta" if t.name in trees else "full" for t in types}
    record = {
        "tenant": tenant,
        "tool": f"entra-gitops {__version__}",
        "complete": {t.name for t in types} == set(registry.names),
        "types": sorted(t.name for t in types),
        "counts": counts,
        "deleted": deleted,
        "read": dict(sorted(read_by.items())),
        "delta": {n: {"link": link, "basis": type_basis(registry.get(n))} for n, link in sorted(links.items())},
        # What the tag names, so that `verify` can prove a signed tag's commit and tree are the ones it recorded.
        "manifest": {"commit": commit, "tree": store.state_tree(commit)},
    }
    message = backup_message(name, record)
    backup = parse_backup(name, commit, message, signed=config.signing is not None)
    pruned = pruned_backups([backup, *store.backups()], config.retention)
    if config.signing is not None:
        tag = store.signed_tag_object(name, commit, message, now, config.signing)
    else:
        tag = store.tag_object(name, commit, message, now)
    # One ref transaction moves the branch, creates the tag and prunes; a signal waits until the files follow.
    watch.phase("check out")
    with deferred():
        written = {p: blobs[p] if p in blobs else blob_id(files[p]) for p in change.added + change.modified}
        store.publish(commit, tag=(name, tag), delete_tags=tuple(pruned), change=change, written=written)
    write_seconds = lap()
    notes = [recovered] if recovered else []
    notes += [f"{n} read in full: {why}" for n, why in sorted(refused.items())]
    return SnapshotOutcome(
        backup=backup,
        created_commit=not change.empty,
        change=change,
        changes_by_type=by_type,
        pruned=tuple(pruned),
        stats=client.stats,  # the whole run's, tenant check included: concurrent reads each saw only a part
        redactions=(*rendered.redactions, *(r for tree in trees.values() for r in tree.redactions)),
        seconds=MappingProxyType({"read": read_seconds, "normalize": render_seconds, "write": write_seconds}),
        notes=tuple(notes),
        read_by=MappingProxyType(read_by),
        full_reasons=MappingProxyType(dict(sorted(reasons.items()))),
        audit_warning=audit_warning,
        recreated=recreated,
    )
