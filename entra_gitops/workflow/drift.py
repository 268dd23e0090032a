"""Drift: what changed in the tenant since the reviewed baseline, the baseline's files against a backup (offline).

Who made each change comes from the directory audit log when the command can reach Graph: the events from
the baseline's commit time to the backup's time, attached by `attributed_drift` (pure).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import NamedTuple

from entra_gitops.model.attribution import AuditEvent
from entra_gitops.model.registry import Registry
from entra_gitops.report.diff import DifferenceReport, ReportScope, difference_report
from entra_gitops.report.view import ReportView, attributed, build_view, display_names
from entra_gitops.state.gitstore import StateRepo
from entra_gitops.state.layout import parsed_once
from entra_gitops.state.sources import backup_state, resolve_reference, state_at

# A backup's time has whole seconds and is taken as the read starts: an event of the same second is in it.
_SLACK = dt.timedelta(seconds=1)


class Drift(NamedTuple):
    """The drift report and the view every rendering is made from, and the window its changes were made in."""

    report: DifferenceReport
    view: ReportView
    names: Mapping[str, str] = MappingProxyType({})
    since: dt.datetime | None = None  # the baseline's commit time
    until: dt.datetime | None = None  # the backup's time


def drift_since(
    store: StateRepo, registry: Registry, baseline: str, backup_id: str, type_names: tuple[str, ...]
) -> Drift:
    """The baseline's tenant-state/ as "before" and the backup as "after", so each change reads as done since."""
    backup = store.resolve_backup(backup_id)
    label, commit, types = resolve_reference(store, baseline)
    with parsed_once():  # a file both sides hold is one value: found equal without being parsed
        before = state_at(store, registry, commit, types)
        after = backup_state(store, registry, backup)
    report = difference_report(
        registry, before, after, backup_name=label, against_name=backup.name, scope=ReportScope(type_names, ())
    )
    names = display_names(report, before, after)
    since = store.repo.commit(commit).committed_datetime.astimezone(dt.UTC)
    return Drift(report, build_view(report, names), MappingProxyType(names), since, backup.time)


def attributed_drift(drift: Drift, events: Iterable[AuditEvent] | None) -> Drift:
    """The drift with who changed each change, from events between the baseline and the backup; None events:
    the audit log was not read, so every change says "unknown"."""
    until = drift.until + _SLACK if drift.until is not None else None
    attribution = attributed(drift.report, events, drift.since, until)
    return drift._replace(view=build_view(drift.report, drift.names, attribution))
