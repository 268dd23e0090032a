"""One tenant per state repository: which tenant a repository holds, and the check that Graph is that tenant (pure)."""

from __future__ import annotations

from collections.abc import Iterable

from entra_gitops.model.errors import EntraGitopsError
from entra_gitops.model.ids import fold_id
from entra_gitops.model.settings import CONFIG_FILE, Config
from entra_gitops.state.gitstore import Backup


class TenantMismatchError(EntraGitopsError):
    """Graph answers for another tenant than the one this state repository holds."""


def expected_tenant(config: Config, backups: Iterable[Backup]) -> tuple[str | None, str]:
    """The tenant this repository holds and where that is written: its settings, else its newest backup's record."""
    if config.tenant_id:
        return fold_id(config.tenant_id), f"tenantId in {CONFIG_FILE}"
    for backup in backups:
        if backup.tenant:
            return fold_id(backup.tenant), f"backup {backup.id}"
    return None, "nothing yet"


def check_tenant(expected: str | None, where: str, live: str, graph_url: str) -> None:
    """Refuse to read or write when Graph is another tenant than the repository's."""
    if expected is not None and fold_id(live) != expected:
        raise TenantMismatchError(
            f"Graph at {graph_url} is tenant {fold_id(live)}, but this state repository holds tenant {expected} "
            f"({where}): nothing was read or written",
            hint="sign in to the repository's tenant (--tenant-id, --graph-url), or use the state repository of "
            f"tenant {fold_id(live)}",
        )
