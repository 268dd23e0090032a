"""The one view model every rendering of a difference report is made from (pure).

Every text of a row that comes from the tenant (ids, display names, values) is already `printable` here,
so no renderer can show a control character by forgetting to escape it. The values as the tenant has them
stay on the rows beside (`*_value`, `*_values`) for the JSON rendering, which escapes when it serializes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from entra_gitops.model.attribution import (
    Attribution,
    AuditEvent,
    By,
    ChangedBy,
    ObjectAttribution,
    Wanted,
    attribute,
    utc_seconds,
)
from entra_gitops.model.frozen import thaw
from entra_gitops.model.tenant import TenantState
from entra_gitops.model.textsafe import json_safe, printable
from entra_gitops.report.diff import BLOCKER_TEXT, Action, Blocker, ChangeKind, DifferenceReport, ObjectChange

SYMBOLS = {
    ChangeKind.CREATED: "+",
    ChangeKind.RESTORED: "+",
    ChangeKind.MODIFIED: "~",
    ChangeKind.SYNCHRONIZED: "~",
    ChangeKind.SOFT_DELETED: "<",
    ChangeKind.HARD_DELETED: "-",
}
KIND_LABELS = {
    ChangeKind.CREATED: "created after the backup",
    ChangeKind.RESTORED: "restored after the backup",
    ChangeKind.MODIFIED: "modified",
    ChangeKind.SYNCHRONIZED: "modified on-premises (synchronised)",
    ChangeKind.SOFT_DELETED: "soft-deleted (restorable)",
    ChangeKind.HARD_DELETED: "permanently deleted",
}
ACTION_LABELS = {
    Action.SOFT_DELETE: "soft-delete it",
    Action.DELETE: "delete it (cannot be undone: this type has no soft delete; only with --allow-delete)",
    Action.UPDATE: "write the backup's values back",
    Action.RESTORE: "restore it, then write back what differs",
    Action.RECREATE: "re-create it from the backup (Graph gives it a new id)",
    Action.NONE: "none",
}
KIND_ORDER = (
    ChangeKind.CREATED,
    ChangeKind.MODIFIED,
    ChangeKind.SOFT_DELETED,
    ChangeKind.RESTORED,
    ChangeKind.HARD_DELETED,
    ChangeKind.SYNCHRONIZED,
)


def format_value(value: Any) -> str:
    """A value as one printable line: strings as they are but for escaped controls, the rest as compact JSON."""
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return printable(value)
    # JSON already escapes C0 controls; json_safe escapes the rest the same way, so the text stays valid JSON.
    return json_safe(json.dumps(thaw(value), ensure_ascii=False, separators=(", ", ": ")))


@dataclass(frozen=True)
class ByRow:
    """Who changed something, shown: `by mallory@contoso.com at 2026-11-21 10:41Z`, or why that is not known."""

    status: str  # "changedBy", "notInAuditLog" or "unknown"
    text: str  # printable
    actor: str | None  # printable label of the actor, for filtering by actor
    value: By  # as the audit log has it, for the JSON rendering

    @property
    def found(self) -> bool:
        return self.status == "changedBy"


def by_row(by: By) -> ByRow:
    """A ChangedBy or an Untraced as a row shows it; tenant text arrives printable."""
    if isinstance(by, ChangedBy):
        actor = printable(by.actor.label)
        return ByRow("changedBy", f"by {actor} at {by.short_when}", actor, by)
    return ByRow(by.value, by.text, None, by)


@dataclass(frozen=True)
class PropertyRow:
    name: str
    before: str
    after: str
    recoverable: bool
    note: str | None
    reason: str | None
    before_value: Any
    after_value: Any
    changed_by: ByRow | None = None  # None: the audit log was not asked


@dataclass(frozen=True)
class LinkRow:
    name: str
    added: tuple[tuple[str, str | None], ...]  # (id, display name), printable
    removed: tuple[tuple[str, str | None], ...]
    recoverable: bool
    note: str | None
    reason: str | None
    added_values: tuple[tuple[str, str | None], ...] | None = None  # as in the tenant; None: same as `added`
    removed_values: tuple[tuple[str, str | None], ...] | None = None
    added_by: tuple[ByRow, ...] | None = None  # one per added id; None: the audit log was not asked
    removed_by: tuple[ByRow, ...] | None = None


@dataclass(frozen=True)
class ObjectRow:
    symbol: str
    type_name: str
    id: str
    display: str | None
    kind: str
    kind_label: str
    action: str
    action_label: str
    recoverable: bool
    note: str | None
    reason: str | None
    properties: tuple[PropertyRow, ...]
    links: tuple[LinkRow, ...]
    id_value: str | None = None  # as in the tenant; None: same as `id`
    display_value: str | None = None  # as in the tenant; None: same as `display`
    object_kind: str | None = None  # the kind of its type it is (agentIdentity); None for a plain object
    changed_by: ByRow | None = None  # None: the audit log was not asked
    privileged: bool = False  # gives or gave a role Microsoft labels privileged: flagged, and listed first

    @property
    def actors(self) -> tuple[str, ...]:
        """Every actor named on the row (object, properties, links), printable, once each."""
        found = [self.changed_by] + [p.changed_by for p in self.properties]
        for link in self.links:
            found += [*(link.added_by or ()), *(link.removed_by or ())]
        return tuple(dict.fromkeys(b.actor for b in found if b is not None and b.actor))

    @property
    def type_label(self) -> str:
        """The type as people read it: `servicePrincipal (agentIdentity)` for an object of a kind."""
        label = f"{self.type_name} ({self.object_kind})" if self.object_kind else self.type_name
        return f"{label} [privileged]" if self.privileged else label

    @property
    def title(self) -> str:
        return f"{self.type_label} '{self.display}' ({self.id})" if self.display else f"{self.type_label} {self.id}"


@dataclass(frozen=True)
class SummaryRow:
    type_name: str
    counts: tuple[int, ...]  # in KIND_ORDER
    total: int


@dataclass(frozen=True)
class ReportView:
    backup: str
    against: str
    scope: str
    scope_types: tuple[str, ...]
    scope_ids: tuple[str, ...]
    compared: int
    rows: tuple[ObjectRow, ...]
    summary: tuple[SummaryRow, ...]
    totals: tuple[int, ...]  # in KIND_ORDER
    recoverable: int
    note: str | None = None  # said first: for example that an incomplete backup limits what was compared
    audit: str | None = None  # "read" or "unavailable" when the audit log was asked who changed what; None: not asked
    audit_since: str | None = None  # the time from which its events were considered

    @property
    def actors(self) -> tuple[str, ...]:
        """Every actor named in the report, printable, sorted."""
        return tuple(sorted({a for row in self.rows for a in row.actors}))

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(KIND_LABELS[k] for k in KIND_ORDER)

    @property
    def headline(self) -> str:
        if not self.rows:
            return f"No differences between {self.backup} and {self.against} ({self.compared} objects compared)."
        parts = [f"{n} {KIND_LABELS[k]}" for k, n in zip(KIND_ORDER, self.totals, strict=True) if n]
        privileged = sum(1 for row in self.rows if row.privileged)
        lead = f"{privileged} privileged role change(s), shown first. " if privileged else ""
        return lead + (
            f"{len(self.rows)} object(s) differ between {self.backup} and {self.against}: {', '.join(parts)}; "
            f"{self.recoverable} recoverable."
        )


def linked_ids(report: DifferenceReport) -> set[str]:
    """The ids a report's link changes name: the objects whose display names it shows."""
    return {m for c in report.changes for link in c.links for m in (*link.added, *link.removed)}


def display_names(report: DifferenceReport, *states: TenantState) -> dict[str, str]:
    """id -> display name of the objects the report's links name, from the given states.

    Only those objects' data is read: in a state loaded lazily (`parsed_once`) no other file is parsed for names.
    """
    wanted = linked_ids(report)
    names: dict[str, str] = {}
    # The last state's names win, so a renamed object is called what it is called now.
    for state in reversed(states):
        for obj in state:
            if obj.id not in wanted:
                continue
            for key in ("displayName", "userPrincipalName"):
                value = obj.data.get(key)
                if isinstance(value, str):
                    names.setdefault(obj.id, value)
                    break
    return names


def _note(blocker: Blocker | None) -> tuple[str | None, str | None]:
    return (BLOCKER_TEXT[blocker], blocker.value) if blocker else (None, None)


def _shown(text: str | None) -> str | None:
    return None if text is None else printable(text)


def _pairs(ids: tuple[str, ...], names: Mapping[str, str]) -> tuple[tuple[str, str | None], ...]:
    return tuple((i, names.get(i)) for i in ids)


def _shown_pairs(pairs: tuple[tuple[str, str | None], ...]) -> tuple[tuple[str, str | None], ...]:
    return tuple((printable(i), _shown(n)) for i, n in pairs)


def _row(change: ObjectChange, names: Mapping[str, str], traced: ObjectAttribution | None) -> ObjectRow:
    properties = tuple(
        PropertyRow(
            printable(p.name),
            format_value(p.before),
            format_value(p.after),
            p.recoverable,
            *_note(p.blocker),
            p.before,
            p.after,
            None if traced is None else by_row(traced.property(p.name)),
        )
        for p in change.properties
    )
    links = []
    for link in change.links:
        added, removed = _pairs(link.added, names), _pairs(link.removed, names)
        links.append(
            LinkRow(
                printable(link.name),
                _shown_pairs(added),
                _shown_pairs(removed),
                link.blocker is None,
                *_note(link.blocker),
                added_values=added,
                removed_values=removed,
                added_by=None if traced is None else tuple(by_row(traced.link(link.name, i)) for i in link.added),
                removed_by=None if traced is None else tuple(by_row(traced.link(link.name, i)) for i in link.removed),
            )
        )
    return ObjectRow(
        symbol=SYMBOLS[change.kind],
        type_name=printable(change.type_name),
        id=printable(change.id),
        display=_shown(change.display_name),
        kind=change.kind.value,
        kind_label=KIND_LABELS[change.kind],
        action=change.action.value,
        action_label=ACTION_LABELS[change.action],
        recoverable=change.recoverable,
        note=_shown(change.reason),
        reason=_note(change.blocker)[1],
        properties=properties,
        links=tuple(links),
        id_value=change.id,
        display_value=change.display_name,
        object_kind=change.object_kind,  # a name from the schema's kinds, never tenant text
        changed_by=None if traced is None else by_row(traced.changed_by),
        privileged=change.privileged,
    )


def wanted(report: DifferenceReport) -> tuple[Wanted, ...]:
    """What the audit log is asked about a report: each changed object, its properties, its link members."""
    return tuple(
        Wanted(
            c.type_name,
            c.id,
            tuple(p.name for p in c.properties),
            tuple((link.name, i) for link in c.links for i in (*link.added, *link.removed)),
        )
        for c in report.changes
    )


def report_ids(report: DifferenceReport) -> set[str]:
    """The ids of a report's changed objects: what the audit log is read for."""
    return {c.id for c in report.changes}


def attributed(
    report: DifferenceReport,
    events: Iterable[AuditEvent] | None,
    since: dt.datetime | None,
    until: dt.datetime | None = None,
) -> Attribution:
    """Who changed each change of `report`, from the events between `since` and `until`; None events: the log
    could not be read, so every change says "unknown"."""
    if events is None:
        return Attribution(False, since=since)
    return attribute(events, wanted(report), since=since, until=until)


def build_view(
    report: DifferenceReport, names: Mapping[str, str] | None = None, attribution: Attribution | None = None
) -> ReportView:
    """The report as rows and a summary, with display names beside ids, and who changed what when asked."""
    rows = tuple(
        _row(c, names or {}, None if attribution is None else attribution.of(c.type_name, c.id)) for c in report.changes
    )
    summary = tuple(
        SummaryRow(printable(t), tuple(counts.get(k.value, 0) for k in KIND_ORDER), sum(counts.values()))
        for t, counts in report.counts.items()
    )
    totals = tuple(sum(s.counts[i] for s in summary) for i in range(len(KIND_ORDER)))
    # Backup and revision names come from git refs and the command line: shown escaped like tenant text.
    return ReportView(
        backup=printable(report.backup),
        against=printable(report.against),
        scope=printable(report.scope.describe()),
        scope_types=report.scope.types,
        scope_ids=report.scope.ids,
        compared=report.compared,
        rows=rows,
        summary=summary,
        totals=totals,
        recoverable=sum(1 for c in report.changes if c.recoverable),
        note=_shown(report.note),
        audit=None if attribution is None else "read" if attribution.available else "unavailable",
        audit_since=None if attribution is None or attribution.since is None else utc_seconds(attribution.since),
    )
