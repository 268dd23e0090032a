"""Where tenant states come from: a backup or any commit in the state repository, or the live tenant."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from entra_gitops.graph.client import GraphClient
from entra_gitops.graph.reader import read_tenant
from entra_gitops.graph.targeted import Target, count_live, read_targets, readable_by_id
from entra_gitops.model.errors import EntraGitopsError, StateFileError
from entra_gitops.model.ids import fold_id
from entra_gitops.model.progress import Progress, Reads, watched
from entra_gitops.model.reads import TenantRead
from entra_gitops.model.registry import Registry, ResourceType
from entra_gitops.model.tenant import Lifecycle, ObjectState, SourceKind, TenantState
from entra_gitops.state.gitstore import BACKUP_PREFIX, Backup, RepositoryError, StateRepo
from entra_gitops.state.layout import STATE_DIR, SUFFIX, load_state, object_path, type_prefixes
from entra_gitops.state.normalize import Normalized, normalize_read
from entra_gitops.state.validate import Problem, check_files


class InvalidStateError(StateFileError):
    """Files of a desired state that `validate` refuses: nothing is planned or applied from them."""

    def __init__(self, problems: list[Problem]) -> None:
        first = problems[0]
        others = "; ".join(str(p) for p in problems[1:4])
        more = f"; also {others}" if others else ""
        more += f" and {len(problems) - 4} more (entra-gitops validate lists them)" if len(problems) > 4 else ""
        super().__init__(
            first.path,
            first.line,
            first.column,
            first.message + more,
            hint="fix the files, commit, and plan again: nothing was planned from them",
        )
        self.problems = problems


@dataclass(frozen=True)
class Source:
    """What a plan or report compares with: a backup, or a commit's files as the desired state."""

    label: str
    commit: str
    kind: SourceKind
    types: frozenset[str] | None  # the types it covers; None for every type
    present: frozenset[str] | None = None  # desired states: the types the commit has any file for
    note: str | None = None  # said first in the report: an incomplete backup limits what is compared


def state_at(store: StateRepo, registry: Registry, commit: str, types: frozenset[str] | None = None) -> TenantState:
    """The TenantState a commit's tenant-state/ tree holds (only `types` when given)."""
    return load_state(registry, store.read_files(commit), types)


def backup_state(store: StateRepo, registry: Registry, backup: Backup) -> TenantState:
    """A backup's state, covering the types that backup read."""
    return state_at(store, registry, backup.commit, frozenset(backup.counts) or None)


def backup_source(backup: Backup) -> Source:
    """A backup as a source; an incomplete one says which types it covers."""
    types = frozenset(backup.counts) or None
    note = None
    if not backup.complete:
        covered = ", ".join(sorted(backup.counts)) or "no types"
        note = f"Backup {backup.id} is incomplete: it covers only {covered}, so only that was compared."
    return Source(backup.name, backup.commit, SourceKind.BACKUP, types, None, note)


def resolve_reference(store: StateRepo, reference: str) -> tuple[str, str, frozenset[str] | None]:
    """(label, commit, types) for a backup id or tag, or for any git revision of the repository."""
    try:
        backup = store.resolve_backup(reference)
        return backup.name, backup.commit, frozenset(backup.counts) or None
    except RepositoryError:
        if reference == "latest" or reference.startswith(BACKUP_PREFIX):
            raise
    return reference, store.resolve(reference), None


def desired_source(store: StateRepo, registry: Registry, reference: str) -> Source:
    """A commit's files as the desired state: every type, and which of them the commit has files for."""
    commit = store.resolve(reference)
    folders = {t.folder: t.name for t in registry}
    return Source(reference, commit, SourceKind.DESIRED, None, store.types_present(commit, folders))


def load_source(
    store: StateRepo,
    registry: Registry,
    source: Source,
    paths: set[str] | None = None,
    only: frozenset[str] | None = None,
) -> TenantState:
    """A source's state; a desired state's files pass `validate` first (all of them, or `paths`).

    `only` limits a backup to those types: the files of the others are neither read nor parsed. A desired
    state is always read whole, since every file of it is validated.
    """
    if only is None or source.kind is SourceKind.DESIRED:
        files = store.read_files(source.commit)
        if source.kind is SourceKind.DESIRED:
            problems = check_files(registry, files, paths)
            if problems:
                raise InvalidStateError(problems)
        return load_state(registry, files, source.types)
    files = store.read_files(source.commit, type_prefixes(registry.select(sorted(only))))
    covered = (source.types if source.types is not None else frozenset(registry.names)) & only
    return load_state(registry, files, covered)


async def live_state(
    client: GraphClient,
    registry: Registry,
    types: tuple[ResourceType, ...],
    progress: Progress | Reads | None = None,
    phase: str = "read",
) -> TenantState:
    """The live tenant's state for `types`, read and normalized exactly as a snapshot would."""
    watch = watched(progress)
    read = await read_tenant(client, registry, types, watch, phase)
    return normalized(registry, read, watch).state


def normalized(registry: Registry, read: TenantRead, progress: Progress) -> Normalized:
    """A read normalized, as the `normalize` phase of `progress`."""
    objects = sum(map(len, read.objects.values())) + sum(map(len, read.deleted.values()))
    progress.phase("normalize", objects, "objects")
    return normalize_read(registry, read, progress.advance)


class UnreadObjectError(EntraGitopsError, LookupError):
    """A check asked a partial state about an object it was not read for: a gap in the read, never "absent"."""


@dataclass(frozen=True)
class PartialState(TenantState):
    """A TenantState in which the `partial` types hold only the `covered` objects, each read for certain.

    For a covered key, `get` answers as a full state does (None: absent from the tenant); for any other key of
    a partial type it raises UnreadObjectError, so no check can take an object it never read for one that is
    gone. Iterating and `of_type` yield only what was read. `rest` is how many active objects of each partial
    type lie outside `covered` (from Graph's `$count`, or a backup's files), so `counts` is exact; without it
    counting raises. A state derived with `dataclasses.replace` keeps all of this.
    """

    partial: frozenset[str] = frozenset()
    covered: frozenset[tuple[str, str]] = frozenset()  # (type, folded id)
    rest: Mapping[str, int] | None = None

    def covers(self, type_name: str, object_id: str) -> bool:
        return type_name not in self.partial or (type_name, fold_id(object_id)) in self.covered

    def get(self, type_name: str, object_id: str) -> ObjectState | None:
        if not self.covers(type_name, object_id):
            raise UnreadObjectError(
                f"{type_name} {object_id} was not read: the targeted read covers only the plan's objects",
                hint="this is a bug in what apply reads; nothing was written on its account",
            )
        return super().get(type_name, object_id)

    def counts(self, lifecycle: Lifecycle = Lifecycle.ACTIVE) -> Mapping[str, int]:
        if self.partial and (self.rest is None or lifecycle is not Lifecycle.ACTIVE):
            raise UnreadObjectError(
                f"cannot count the {', '.join(sorted(self.partial))} objects: only some of them were read",
                hint="this is a bug in what apply reads; nothing was written on its account",
            )
        counted = super().counts(lifecycle)
        rest = self.rest or {}
        return MappingProxyType({name: n + rest.get(name, 0) for name, n in counted.items()})


def _active_of(state: TenantState, type_name: str) -> int:
    return sum(1 for o in state.of_type(type_name) if o.lifecycle is Lifecycle.ACTIVE)


async def targeted_live_state(
    client: GraphClient,
    registry: Registry,
    types: Iterable[str],
    targets: Iterable[Target],
    *,
    counted: bool,
    progress: Progress | Reads | None = None,
    phase: str = "read",
) -> PartialState:
    """The live state of `types`, reading only `targets` of each type that can be read by id, the rest in full.

    `counted`: the partial types are only those Graph counts (`$count`), and their counts are exact; a type
    Graph gives no count for is read in full, as before, so the guards never count from a guess.
    """
    watch = watched(progress)
    names = set(types) | {t.type_name for t in targets}
    eligible = sorted(n for n in names if readable_by_id(registry.get(n)) and registry.get(n).parent is None)
    totals: dict[str, int] = {}
    if counted:
        answers = await asyncio.gather(*(count_live(client, registry.get(n)) for n in eligible))
        totals = {name: total for name, total in zip(eligible, answers, strict=True) if total is not None}
        eligible = sorted(totals)
    partial = frozenset(eligible)
    # select() of no names means every type: none is read in full when every one is read by id.
    whole = registry.select(sorted(names - partial)) if names - partial else ()
    asked = [t for t in targets if t.type_name in partial]
    full_read = await read_tenant(client, registry, whole, watch, phase) if whole else None
    if full_read is None:
        watch.phase(phase, unit="objects")
    targeted = await read_targets(client, registry, asked)
    part = targeted.read
    read = TenantRead(
        objects=MappingProxyType(
            {**(full_read.objects if full_read else {}), **{n: part.objects.get(n, ()) for n in partial}}
        ),
        deleted=MappingProxyType({**(full_read.deleted if full_read else {}), **part.deleted}),
        links=MappingProxyType({**(full_read.links if full_read else {}), **part.links}),
        stats=client.stats,
    )
    state = normalized(registry, read, watch).state
    rest = {n: totals[n] - _active_of(state, n) for n in partial} if counted else None
    return PartialState(state.objects, state.types, partial, targeted.covered, rest)


def partial_source_state(
    store: StateRepo,
    registry: Registry,
    source: Source,
    targets: Iterable[Target],
    partial: frozenset[str],
    paths: set[str] | None = None,
) -> PartialState:
    """A source's state holding, of the `partial` types, only the `targets` (in either lifecycle), read by path.

    Other types are loaded whole. A desired state's files pass `validate` first (those loaded, or `paths`), as
    load_source checks them; each partial type's other active files are counted from the tree, not parsed.
    """
    keys = {(t.type_name, fold_id(t.object_id)) for t in targets if t.type_name in partial}
    wanted = {
        object_path(registry.get(name), object_id, lifecycle) for name, object_id in keys for lifecycle in Lifecycle
    }
    # One listing of the tree gives the blobs to read (one cat-file, by id) and each folder's count below.
    listing = store.tree_blobs(source.commit)
    prefixes = type_prefixes([t for t in registry if t.name not in partial])
    folders_whole = tuple(p for p in prefixes if p.endswith("/"))
    files_whole = {p for p in prefixes if not p.endswith("/")}
    chosen = {
        path: blob
        for path, blob in listing.items()
        if path in wanted or path in files_whole or path.startswith(folders_whole)
    }
    contents = store.read_blobs(chosen.values())
    files = {path: contents[blob] for path, blob in chosen.items()}
    if source.kind is SourceKind.DESIRED:
        problems = check_files(registry, files, paths)
        if problems:
            raise InvalidStateError(problems)
    state = load_state(registry, files, source.types)
    # Every folder's active files counted from the listing: a name per file, no file parsed.
    folders: Counter[str] = Counter()
    for path in listing:
        folder, _, name = path[len(STATE_DIR) + 1 :].partition("/")
        if name.endswith(SUFFIX) and "/" not in name:
            folders[folder] += 1
    rest = {n: folders[registry.get(n).folder] - _active_of(state, n) for n in sorted(partial & state.types)}
    return PartialState(state.objects, state.types, partial, frozenset(keys), rest)
