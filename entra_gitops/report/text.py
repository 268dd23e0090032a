"""The terminal rendering: Terraform-like symbols, `before -> after` per property, colour only when asked.

Every text from the tenant arrives `printable` from the view model, so the only escape sequences written
are the colours below, and every line break is the renderer's own.
"""

from __future__ import annotations

from entra_gitops.report.view import ByRow, ObjectRow, ReportView

_COLOURS = {"+": "32", "~": "33", "-": "31", "<": "36"}
_DIM = "2"


def _paint(text: str, code: str, colour: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if colour else text


def _named(pairs: tuple[tuple[str, str | None], ...], by: tuple[ByRow, ...] | None = None) -> str:
    shown = [f"{name} ({object_id})" if name else object_id for object_id, name in pairs]
    if by is not None:
        shown = [f"{text} {b.text}" if b.found else text for text, b in zip(shown, by, strict=True)]
    return ", ".join(shown)


def _by(by: ByRow | None) -> str:
    """A property's attribution after its line; only a found one, the object's line says when none is known."""
    return f"   {by.text}" if by is not None and by.found else ""


def _object_lines(row: ObjectRow, colour: bool) -> list[str]:
    code = _COLOURS[row.symbol]
    lines = [_paint(f"{row.symbol} {row.title}: {row.kind_label}", code, colour)]
    if row.changed_by is not None:
        who = row.changed_by.text if row.changed_by.found else f"changed by: {row.changed_by.text}"
        lines.append(_paint(f"    {who}", _DIM, colour))
    for prop in row.properties:
        note = "" if prop.recoverable else _paint(f"   [not written back: {prop.note}]", _DIM, colour)
        lines.append(f"    ~ {prop.name}: {prop.before} -> {prop.after}{_by(prop.changed_by)}{note}")
    for link in row.links:
        note = "" if link.recoverable else _paint(f"   [not written back: {link.note}]", _DIM, colour)
        if link.added:
            lines.append(_paint(f"    + {link.name}: {_named(link.added, link.added_by)}", "32", colour) + note)
        if link.removed:
            lines.append(_paint(f"    - {link.name}: {_named(link.removed, link.removed_by)}", "31", colour) + note)
    recovery = row.action_label if row.recoverable else f"none ({row.note})" if row.note else "none"
    lines.append(_paint(f"    recovery: {recovery}", _DIM, colour))
    return lines


def _audit_line(view: ReportView) -> str:
    if view.audit == "read":
        return f"the directory audit log since {view.audit_since}" if view.audit_since else "the directory audit log"
    return "unknown (the directory audit log could not be read)"


def render_text(view: ReportView, colour: bool = False) -> str:
    """The whole report for a terminal; `colour` adds ANSI colours (the CLI asks only on a terminal)."""
    lines = [view.note] if view.note else []
    lines += [f"Difference report: {view.backup} -> {view.against}", f"Scope: {view.scope}"]
    if view.audit is not None:
        lines.append(f"Who changed it: {_audit_line(view)}")
    lines.append("")
    for row in view.rows:
        lines.extend(_object_lines(row, colour))
        lines.append("")
    if view.summary:
        headers = ("created", "modified", "soft-deleted", "restored", "deleted", "on-prem")
        width = max(len("type"), *(len(s.type_name) for s in view.summary))
        lines.append("  " + "type".ljust(width) + "".join(f"  {h:>12}" for h in headers))
        for summary in view.summary:
            lines.append("  " + summary.type_name.ljust(width) + "".join(f"  {n:>12}" for n in summary.counts))
        lines.append("")
    lines.append(view.headline)
    return "\n".join(lines) + "\n"
