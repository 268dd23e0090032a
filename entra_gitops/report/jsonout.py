"""The machine rendering: stable JSON described by schemas/reports/difference-report.schema.json.

Ids, names and values are as the tenant has them; only the serialization escapes, so `jq` or `cat` of a
report cannot be made to act on a terminal by an object's name and parsing gives the values back.
"""

from __future__ import annotations

import json
from typing import Any

from entra_gitops.model.attribution import by_document
from entra_gitops.model.frozen import thaw
from entra_gitops.model.textsafe import json_safe
from entra_gitops.report.view import KIND_ORDER, ByRow, ReportView

FORMAT = "entra-gitops.difference-report/1"


def changed_by(by: ByRow) -> dict[str, Any] | str:
    """`changedBy`: the actor, time, correlation id and activity as the audit log has them, or why none is known."""
    return by_document(by.value)


def _with_by(entry: dict[str, Any], by: ByRow | None) -> dict[str, Any]:
    # Only when the audit log was asked: a report between two backups says nothing of who.
    if by is not None:
        entry["changedBy"] = changed_by(by)
    return entry


def _named(pairs: tuple[tuple[str, str | None], ...], by: tuple[ByRow, ...] | None = None) -> list[dict[str, Any]]:
    whos = by if by is not None else (None,) * len(pairs)
    return [
        _with_by({"id": object_id, "displayName": name}, who)
        for (object_id, name), who in zip(pairs, whos, strict=True)
    ]


def _as_in_tenant(value: Any, shown: Any) -> Any:
    """A row's value as the tenant has it; a row built by hand may carry only the shown one."""
    return shown if value is None else value


def report_document(view: ReportView) -> dict[str, Any]:
    """The report as plain JSON values; keys and value types are a contract for scripts."""
    document: dict[str, Any] = {
        "format": FORMAT,
        "backup": view.backup,
        "against": view.against,
        "scope": {"types": list(view.scope_types), "ids": list(view.scope_ids)},
        "note": view.note,
        "compared": view.compared,
        "summary": {
            "totals": {k.value: n for k, n in zip(KIND_ORDER, view.totals, strict=True)},
            "byType": {
                s.type_name: {k.value: n for k, n in zip(KIND_ORDER, s.counts, strict=True)} for s in view.summary
            },
            "changedObjects": len(view.rows),
            "recoverable": view.recoverable,
        },
        "changes": [
            _with_by(
                {
                    "type": row.type_name,
                    "objectKind": row.object_kind,
                    "privileged": row.privileged,
                    "id": _as_in_tenant(row.id_value, row.id),
                    "displayName": _as_in_tenant(row.display_value, row.display),
                    "kind": row.kind,
                    "action": row.action,
                    "recoverable": row.recoverable,
                    "reason": row.reason,
                    "properties": [
                        _with_by(
                            {
                                "name": p.name,
                                "before": thaw(p.before_value),
                                "after": thaw(p.after_value),
                                "recoverable": p.recoverable,
                                "reason": p.reason,
                            },
                            p.changed_by,
                        )
                        for p in row.properties
                    ],
                    "links": [
                        {
                            "name": link.name,
                            "added": _named(_as_in_tenant(link.added_values, link.added), link.added_by),
                            "removed": _named(_as_in_tenant(link.removed_values, link.removed), link.removed_by),
                            "recoverable": link.recoverable,
                            "reason": link.reason,
                        }
                        for link in row.links
                    ],
                },
                row.changed_by,
            )
            for row in view.rows
        ],
    }
    if view.audit is not None:
        document["auditLog"] = {"available": view.audit == "read", "since": view.audit_since}
    return document


def render_json(view: ReportView) -> str:
    """The report document as indented JSON; C1, bidi and other invisible controls as `\\u` escapes."""
    return json_safe(json.dumps(report_document(view), indent=2, ensure_ascii=False)) + "\n"
