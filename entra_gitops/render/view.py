"""The one view model every rendering of a difference report is made from (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from entra_gitops.diff import BLOCKER_TEXT, Action, Blocker, ChangeKind, DifferenceReport, ObjectChange
from entra_gitops.registry import thaw
from entra_gitops.state import TenantState

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
    Action.DELETE: "delete it (cannot be undone: this type has no soft delete)",
    Action.UPDATE: "write the backup's values back",
    Action.RESTORE: "restore it, then write back what differs",
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
    """A value as one line a person can read: strings as they are, the rest as compact JSON."""
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(thaw(value), ensure_ascii=False, separators=(", ", ": "))


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


@dataclass(frozen=True)
class LinkRow:
    name: str
    added: tuple[tuple[str, str | None], ...]
    removed: tuple[tuple[str, str | None], ...]
    recoverable: bool
    note: str | None
    reason: str | None


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

    @property
    def title(self) -> str:
        return f"{self.type_name} '{self.display}' ({self.id})" if self.display else f"{self.type_name} {self.id}"


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

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(KIND_LABELS[k] for k in KIND_ORDER)

    @property
    def headline(self) -> str:
        if not self.rows:
            return f"No differences between {self.backup} and {self.against} ({self.compared} objects compared)."
        parts = [f"{n} {KIND_LABELS[k]}" for k, n in zip(KIND_ORDER, self.totals, strict=True) if n]
        return (
            f"{len(self.rows)} object(s) differ between {self.backup} and {self.against}: {', '.join(parts)}; "
            f"{self.recoverable} recoverable."
        )


def display_names(*states: TenantState) -> dict[str, str]:
    """id -> display name over every object of the given states, for naming linked objects."""
    names: dict[str, str] = {}
    # The last state's names win, so a renamed object is called what it is called now.
    for state in reversed(states):
        for obj in state:
            for key in ("displayName", "userPrincipalName"):
                value = obj.data.get(key)
                if isinstance(value, str):
                    names.setdefault(obj.id, value)
                    break
    return names


def _note(blocker: Blocker | None) -> tuple[str | None, str | None]:
    return (BLOCKER_TEXT[blocker], blocker.value) if blocker else (None, None)


def _row(change: ObjectChange, names: Mapping[str, str]) -> ObjectRow:
    properties = tuple(
        PropertyRow(
            p.name, format_value(p.before), format_value(p.after), p.recoverable, *_note(p.blocker), p.before, p.after
        )
        for p in change.properties
    )
    links = tuple(
        LinkRow(
            link.name,
            tuple((i, names.get(i)) for i in link.added),
            tuple((i, names.get(i)) for i in link.removed),
            link.blocker is None,
            *_note(link.blocker),
        )
        for link in change.links
    )
    return ObjectRow(
        symbol=SYMBOLS[change.kind],
        type_name=change.type_name,
        id=change.id,
        display=change.display_name,
        kind=change.kind.value,
        kind_label=KIND_LABELS[change.kind],
        action=change.action.value,
        action_label=ACTION_LABELS[change.action],
        recoverable=change.recoverable,
        note=_note(change.blocker)[0],
        reason=_note(change.blocker)[1],
        properties=properties,
        links=links,
    )


def build_view(report: DifferenceReport, names: Mapping[str, str] | None = None) -> ReportView:
    """The report as rows and a summary, with display names beside ids."""
    rows = tuple(_row(c, names or {}) for c in report.changes)
    summary = tuple(
        SummaryRow(t, tuple(counts.get(k.value, 0) for k in KIND_ORDER), sum(counts.values()))
        for t, counts in report.counts.items()
    )
    totals = tuple(sum(s.counts[i] for s in summary) for i in range(len(KIND_ORDER)))
    return ReportView(
        backup=report.backup,
        against=report.against,
        scope=report.scope.describe(),
        scope_types=report.scope.types,
        scope_ids=report.scope.ids,
        compared=report.compared,
        rows=rows,
        summary=summary,
        totals=totals,
        recoverable=sum(1 for c in report.changes if c.recoverable),
    )
