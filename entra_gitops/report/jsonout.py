"""The machine rendering: stable JSON described by schemas/reports/difference-report.schema.json.

Ids, names and values are as the tenant has them; only the serialization escapes, so `jq` or `cat` of a
report cannot be made to act on a terminal by an object's name and parsing gives the values back.
"""

from __future__ import annotations

import json
from typing import Any

from entra_gitops.model.frozen import thaw
from entra_gitops.model.textsafe import json_safe
from entra_gitops.report.view import KIND_ORDER, ReportView

FORMAT = "entra-gitops.difference-report/1"


def _named(pairs: tuple[tuple[str, str | None], ...]) -> list[dict[str, Any]]:
    return [{"id": object_id, "displayName": name} for object_id, name in pairs]


def _as_in_tenant(value: Any, shown: Any) -> Any:
    """A row's value as the tenant has it; a row built by hand may carry only the shown one."""
    return shown if value is None else value


def report_document(view: ReportView) -> dict[str, Any]:
    """The report as plain JSON values; keys and value types are a contract for scripts."""
    return {
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
            {
                "type": row.type_name,
                "objectKind": row.object_kind,
                "id": _as_in_tenant(row.id_value, row.id),
                "displayName": _as_in_tenant(row.display_value, row.display),
                "kind": row.kind,
                "action": row.action,
                "recoverable": row.recoverable,
                "reason": row.reason,
                "properties": [
                    {
                        "name": p.name,
                        "before": thaw(p.before_value),
                        "after": thaw(p.after_value),
                        "recoverable": p.recoverable,
                        "reason": p.reason,
                    }
                    for p in row.properties
                ],
                "links": [
                    {
                        "name": link.name,
                        "added": _named(_as_in_tenant(link.added_values, link.added)),
                        "removed": _named(_as_in_tenant(link.removed_values, link.removed)),
                        "recoverable": link.recoverable,
                        "reason": link.reason,
                    }
                    for link in row.links
                ],
            }
            for row in view.rows
        ],
    }


def render_json(view: ReportView) -> str:
    """The report document as indented JSON; C1, bidi and other invisible controls as `\\u` escapes."""
    return json_safe(json.dumps(report_document(view), indent=2, ensure_ascii=False)) + "\n"
