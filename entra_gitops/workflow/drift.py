"""Drift: what changed in the tenant since the reviewed baseline, the baseline's files against a backup (offline)."""

from __future__ import annotations

from typing import NamedTuple

from entra_gitops.model.registry import Registry
from entra_gitops.report.diff import DifferenceReport, ReportScope, difference_report
from entra_gitops.report.view import ReportView, build_view, display_names
from entra_gitops.state.gitstore import StateRepo
from entra_gitops.state.sources import backup_state, resolve_reference, state_at


class Drift(NamedTuple):
    """The drift report and the view every rendering is made from."""

    report: DifferenceReport
    view: ReportView


def drift_since(
    store: StateRepo, registry: Registry, baseline: str, backup_id: str, type_names: tuple[str, ...]
) -> Drift:
    """The baseline's tenant-state/ as "before" and the backup as "after", so each change reads as done since."""
    backup = store.resolve_backup(backup_id)
    label, commit, types = resolve_reference(store, baseline)
    before = state_at(store, registry, commit, types)
    after = backup_state(store, registry, backup)
    report = difference_report(
        registry, before, after, backup_name=label, against_name=backup.name, scope=ReportScope(type_names, ())
    )
    return Drift(report, build_view(report, display_names(before, after)))
