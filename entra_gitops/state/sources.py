"""Where tenant states come from: a backup or any commit in the state repository, or the live tenant."""

from __future__ import annotations

from dataclasses import dataclass

from entra_gitops.graph.client import GraphClient
from entra_gitops.graph.reader import read_tenant
from entra_gitops.model.errors import StateFileError
from entra_gitops.model.progress import Progress, Reads, watched
from entra_gitops.model.reads import TenantRead
from entra_gitops.model.registry import Registry, ResourceType
from entra_gitops.model.tenant import SourceKind, TenantState
from entra_gitops.state.gitstore import BACKUP_PREFIX, Backup, RepositoryError, StateRepo
from entra_gitops.state.layout import load_state
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


def load_source(store: StateRepo, registry: Registry, source: Source, paths: set[str] | None = None) -> TenantState:
    """A source's state; a desired state's files pass `validate` first (all of them, or `paths`)."""
    files = store.read_files(source.commit)
    if source.kind is SourceKind.DESIRED:
        problems = check_files(registry, files, paths)
        if problems:
            raise InvalidStateError(problems)
    return load_state(registry, files, source.types)


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
