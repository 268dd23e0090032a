"""A snapshot: read every type in scope, and only then commit tenant-state/ and tag it as a backup."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from entra_gitops import __version__
from entra_gitops.config import Config
from entra_gitops.errors import EntraGitopsError
from entra_gitops.gitstore import (
    Backup,
    RepositoryError,
    StateRepo,
    TreeChange,
    backup_message,
    backup_name,
    parse_backup,
)
from entra_gitops.graph.client import GraphClient, GraphStats
from entra_gitops.graph.reader import Progress, read_tenant
from entra_gitops.layout import locate, render_files, type_prefixes
from entra_gitops.normalize import Redaction, normalize_read
from entra_gitops.registry import Registry, ResourceType
from entra_gitops.state import Lifecycle, TenantState


class IncompleteReadError(EntraGitopsError):
    """A read that looks like a failure (a type suddenly empty), so no backup is made from it."""


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


def check_not_suddenly_empty(previous: Backup | None, counts: Mapping[str, int], guard: int) -> None:
    """Refuse a read in which a type that had at least `guard` objects came back with none."""
    if previous is None:
        return
    for type_name, count in counts.items():
        had = previous.counts.get(type_name, 0)
        if count == 0 and had >= guard:
            raise IncompleteReadError(
                f"Graph returned no {type_name} objects, but backup {previous.id} had {had}; "
                "treating this as a failed read, not a mass deletion: no commit and no backup were made",
                hint="check the app's Graph permissions; if the objects really are gone, lower emptyReadGuard in entra-gitops.yaml",
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


def pruned_backups(backups: list[Backup], keep: int) -> list[str]:
    """Backup tags retention removes: everything older than the `keep`-th newest complete backup."""
    newest_first = sorted(backups, key=lambda b: b.time, reverse=True)
    complete = [b for b in newest_first if b.complete]
    if len(complete) <= keep:
        return []
    cutoff = complete[keep - 1].time
    return [b.name for b in newest_first if b.time < cutoff]


def _tenant_id(state: TenantState, config: Config) -> str | None:
    organization = state.of_type("organization")
    return organization[0].id if organization else config.tenant_id


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
    progress: Progress | None = None,
) -> SnapshotOutcome:
    """Read, normalize, commit and tag; nothing is written unless every read succeeded."""
    dirty = store.dirty_state_files()
    if dirty:
        shown = ", ".join(dirty[:3]) + (f" and {len(dirty) - 3} more" if len(dirty) > 3 else "")
        raise RepositoryError(
            f"tenant-state/ has uncommitted changes ({shown}); a snapshot would overwrite them",
            hint="commit them, or discard them with 'git checkout -- tenant-state && git clean -fd tenant-state'",
        )
    clock = [time.perf_counter()]

    def lap() -> float:
        clock.append(time.perf_counter())
        return clock[-1] - clock[-2]

    read = await read_tenant(client, registry, types, progress)
    read_seconds = lap()
    normalized = normalize_read(registry, read)
    state = normalized.state
    counts = state.counts()
    previous = next((b for b in store.backups() if b.complete), None)
    check_not_suddenly_empty(previous, counts, config.empty_read_guard)

    files = render_files(registry, state)
    render_seconds = lap()
    change = store.tree_change(files, type_prefixes(types))
    by_type = changes_by_type(registry, change)
    commit = store.head
    if not change.empty:
        commit = store.commit_change(files, change, commit_message(by_type, counts), now)
    assert commit is not None
    name = _free_name(store, now)
    record = {
        "tenant": _tenant_id(state, config),
        "tool": f"entra-gitops {__version__}",
        "complete": {t.name for t in types} == set(registry.names),
        "types": sorted(t.name for t in types),
        "counts": dict(counts),
        "deleted": dict(deleted_counts(state)),
    }
    store.tag(name, commit, backup_message(name, record))
    pruned = pruned_backups(store.backups(), config.retention)
    store.delete_tags(pruned)
    write_seconds = lap()
    return SnapshotOutcome(
        backup=parse_backup(name, commit, backup_message(name, record)),
        created_commit=not change.empty,
        change=change,
        changes_by_type=by_type,
        pruned=tuple(pruned),
        stats=read.stats,
        redactions=normalized.redactions,
        seconds=MappingProxyType({"read": read_seconds, "normalize": render_seconds, "write": write_seconds}),
    )


def deleted_counts(state: TenantState) -> Mapping[str, int]:
    """Soft-deleted objects per type."""
    counted = Counter(o.type_name for o in state if o.lifecycle is Lifecycle.SOFT_DELETED)
    return MappingProxyType(dict(sorted(counted.items())))
