"""The pull-request rendering: a summary table and a collapsible section per object, within GitHub's limit.

Text from the report goes through `markdown_text`: display names are chosen by whoever can create an object
in the tenant, and must not break a table row, close a code span or `<details>`, or make a link or image.
"""

from __future__ import annotations

import html

from entra_gitops.model.textsafe import printable
from entra_gitops.report.view import KIND_LABELS, KIND_ORDER, ByRow, ObjectRow, ReportView

GITHUB_COMMENT_LIMIT = 65_536
CELL_LIMIT = 120
_SPARE = 600  # room for the note that says what was left out
# Markdown syntax inside text: as character references these show as themselves and mean nothing. `|` ends
# a table cell, a backtick a code span, `*_~` format, `[` `]` make links and images (`(`, `)` and `!` mean
# nothing without them, so names such as "Sales (EMEA)" stay as they were), a backslash escapes the next.
_MARKDOWN = str.maketrans({char: f"&#{ord(char)};" for char in "\\`*_~[]|"})


def markdown_text(text: str) -> str:
    """Text shown as itself in markdown and HTML: printable, one line, no markup or syntax of either."""
    return html.escape(printable(text)).translate(_MARKDOWN)


def _cell(text: str) -> str:
    """Text safe inside a table cell: escaped, one line, pipes neutralised, long values cut."""
    short = text if len(text) <= CELL_LIMIT else text[: CELL_LIMIT - 1] + "…"
    return markdown_text(short)


def _named(pairs: tuple[tuple[str, str | None], ...], by: tuple[ByRow, ...] | None = None) -> str:
    shown = [
        f"{markdown_text(n)} (<code>{markdown_text(i)}</code>)" if n else f"<code>{markdown_text(i)}</code>"
        for i, n in pairs
    ]
    if by is not None:
        shown = [f"{text} _{markdown_text(b.text)}_" if b.found else text for text, b in zip(shown, by, strict=True)]
    return ", ".join(shown)


def _who(by: ByRow | None) -> str:
    return "" if by is None else _cell(by.text)


def _section(row: ObjectRow) -> str:
    title = f"<code>{row.symbol}</code> {markdown_text(row.type_label)} <b>{markdown_text(row.display or row.id)}</b>"
    recovery = html.escape(row.action_label if row.recoverable else f"none: {row.note}" if row.note else "none")
    lines = [
        "<details>",
        f"<summary>{title} · {html.escape(row.kind_label)} · recovery: {recovery}</summary>",
        "",
        f"Object id <code>{markdown_text(row.id)}</code>",
        "",
    ]
    if row.changed_by is not None:
        lines += [f"Changed by: {markdown_text(row.changed_by.text.removeprefix('by '))}", ""]
    attributed = any(p.changed_by is not None for p in row.properties)
    if row.properties:
        if attributed:
            lines += ["| property | in the backup | now | recoverable | changed |", "|---|---|---|---|---|"]
        else:
            lines += ["| property | in the backup | now | recoverable |", "|---|---|---|---|"]
        for p in row.properties:
            yes = "yes" if p.recoverable else f"no: {html.escape(p.note or '')}"
            who = f" {_who(p.changed_by)} |" if attributed else ""
            # Property and link names come from the registry's schemas, not from the tenant.
            lines.append(f"| `{p.name}` | {_cell(p.before)} | {_cell(p.after)} | {yes} |{who}")
        folded = [p for p in row.properties if len(p.before) > CELL_LIMIT or len(p.after) > CELL_LIMIT]
        for p in folded:
            lines += [
                "",
                f"<details><summary>full values of <code>{p.name}</code></summary>",
                "",
                "```json",
                f"backup: {p.before}",
                f"now:    {p.after}",
                "```",
                "</details>",
            ]
        lines.append("")
    for link in row.links:
        note = "" if link.recoverable else f" (not recoverable: {html.escape(link.note or '')})"
        if link.added:
            lines.append(f"- **{link.name} added**{note}: {_named(link.added, link.added_by)}")
        if link.removed:
            lines.append(f"- **{link.name} removed**{note}: {_named(link.removed, link.removed_by)}")
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def render_markdown(view: ReportView, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """Markdown for a PR comment or job summary; never longer than `limit`, saying what it left out."""
    head = [
        *([f"> **Note:** {markdown_text(view.note)}", ""] if view.note else []),
        "## entra-gitops difference report",
        "",
        f"**{markdown_text(view.backup)} → {markdown_text(view.against)}** · scope: {markdown_text(view.scope)} · "
        f"{view.compared} objects compared",
        "",
        markdown_text(view.headline),
        "",
    ]
    if view.audit == "unavailable":
        head += ["Who changed it: unknown (the directory audit log could not be read).", ""]
    if view.summary:
        labels = [KIND_LABELS[k] for k in KIND_ORDER]
        head += ["| type | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        for s in view.summary:
            head.append(f"| {markdown_text(s.type_name)} | " + " | ".join(str(n) for n in s.counts) + " |")
        head.append("| **total** | " + " | ".join(f"**{n}**" for n in view.totals) + " |")
        head.append("")
    text = "\n".join(head)
    for shown, row in enumerate(view.rows):
        section = _section(row)
        if len(text) + len(section) + _SPARE > limit:
            left = len(view.rows) - shown
            text += (
                f"\n**{left} more changed object(s) left out** to stay within GitHub's {limit:,}-character "
                "limit. Run `entra-gitops diff --format html` (or `--format json`) for the full report.\n"
            )
            break
        text += "\n" + section
    return text
