"""The machine rendering: stable JSON described by schemas/reports/difference-report.schema.json."""

from __future__ import annotations

import json
from typing import Any

from entra_gitops.registry import thaw
from entra_gitops.render.view import KIND_ORDER, ReportView

FORMAT = "entra-gitops.difference-report/1"


def _named(pairs: tuple[tuple[str, str | None], ...]) -> list[dict[str, Any]]:
    return [{"id": object_id, "displayName": name} for object_id, name in pairs]


def report_document(view: ReportView) -> dict[str, Any]:
    """The report as plain JSON values; keys and value types are a contract for scripts."""
    return {
        "format": FORMAT,
        "backup": view.backup,
        "against": view.against,
        "scope": {"types": list(view.scope_types), "ids": list(view.scope_ids)},
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
                "id": row.id,
                "displayName": row.display,
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
                        "added": _named(link.added),
                        "removed": _named(link.removed),
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
    return json.dumps(report_document(view), indent=2, ensure_ascii=False) + "\n"
