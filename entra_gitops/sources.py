"""Where tenant states come from: a backup or any commit in the state repository, or the live tenant."""

from __future__ import annotations

from entra_gitops.gitstore import BACKUP_PREFIX, Backup, RepositoryError, StateRepo
from entra_gitops.graph.client import GraphClient
from entra_gitops.graph.reader import Progress, read_tenant
from entra_gitops.layout import load_state
from entra_gitops.normalize import normalize_read
from entra_gitops.registry import Registry, ResourceType
from entra_gitops.state import TenantState


def state_at(store: StateRepo, registry: Registry, commit: str, types: frozenset[str] | None = None) -> TenantState:
    """The TenantState a commit's tenant-state/ tree holds (only `types` when given)."""
    return load_state(registry, store.read_files(commit), types)


def backup_state(store: StateRepo, registry: Registry, backup: Backup) -> TenantState:
    """A backup's state, covering the types that backup read."""
    return state_at(store, registry, backup.commit, frozenset(backup.counts) or None)


def resolve_reference(store: StateRepo, reference: str) -> tuple[str, str, frozenset[str] | None]:
    """(label, commit, types) for a backup id or tag, or for any git revision of the repository."""
    try:
        backup = store.resolve_backup(reference)
        return backup.name, backup.commit, frozenset(backup.counts) or None
    except RepositoryError:
        if reference == "latest" or reference.startswith(BACKUP_PREFIX):
            raise
    return reference, store.resolve(reference), None


async def live_state(
    client: GraphClient, registry: Registry, types: tuple[ResourceType, ...], progress: Progress | None = None
) -> TenantState:
    """The live tenant's state for `types`, read and normalized exactly as a snapshot would."""
    read = await read_tenant(client, registry, types, progress)
    return normalize_read(registry, read).state
