"""The people rendering: one self-contained HTML page for a difference report (pure).

The page is built only from a ReportView. It loads nothing from anywhere: the style and the small filter
script are inline, and a Content-Security-Policy allows exactly those two blocks (by hash) and nothing
else, so even a name that slipped past escaping could not run code or fetch from the network. Every text
from the report goes through `html.escape`: display names are chosen by whoever can create an object in
the tenant.

Without JavaScript the page still shows everything; the filters only appear when the script runs.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import html
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from entra_gitops.model.textsafe import json_safe, printable
from entra_gitops.report.diff import Action
from entra_gitops.report.view import KIND_ORDER, ByRow, LinkRow, ObjectRow, PropertyRow, ReportView

NONE_TEXT = "(none)"  # what format_value shows for an absent value

# Short names for the kind cards and filters; the view's longer labels stay on each object.
KIND_SHORT = {
    "created": "Created",
    "modified": "Modified",
    "softDeleted": "Soft-deleted",
    "restored": "Restored",
    "hardDeleted": "Permanently deleted",
    "synchronized": "Synchronised",
}

STYLE = """
:root {
  color-scheme: light dark;
  --bg: #f6f7f9; --panel: #ffffff; --text: #1b1f24; --muted: #5b6571; --line: #dde1e6; --soft: #eef1f4;
  --accent: #0b5cad; --ok: #1a7f37; --ok-bg: #e6f4ea; --bad: #b42318; --bad-bg: #fdecea;
  --ins-bg: #dcf5e3; --del-bg: #fde2e0; --warn: #9a5b00; --warn-bg: #fff4d6;
  --created: #1a7f37; --modified: #0b5cad; --softDeleted: #b35900; --restored: #0e7c86;
  --hardDeleted: #b42318; --synchronized: #6e40c9;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f1216; --panel: #171b21; --text: #e6e9ed; --muted: #9aa4b0; --line: #2c333c; --soft: #1f252d;
    --accent: #6cb1ff; --ok: #56d37a; --ok-bg: #14301e; --bad: #ff7b72; --bad-bg: #3a1a1a;
    --ins-bg: #17361f; --del-bg: #3d1c1c; --warn: #f0b849; --warn-bg: #3a2e12;
    --created: #56d37a; --modified: #6cb1ff; --softDeleted: #f0a04b; --restored: #4cc9d4;
    --hardDeleted: #ff7b72; --synchronized: #b392f0;
  }
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
body {
  margin: 0; background: var(--bg); color: var(--text);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
main { max-width: 1180px; margin: 0 auto; padding: 28px 24px 64px; }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.2rem; margin: 36px 0 12px; }
h3 { font-size: 1.05rem; margin: 0; overflow-wrap: anywhere; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 0.86em; }
.muted { color: var(--muted); }
.report-head { border-bottom: 1px solid var(--line); padding-bottom: 18px; }
.compare { display: flex; flex-wrap: wrap; align-items: stretch; gap: 10px; margin: 14px 0; }
.compare .side { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; min-width: 0; }
.compare .k { display: block; font-size: 0.75rem; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); }
.compare .v { display: block; font: 600 1.05rem ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; overflow-wrap: anywhere; }
.compare .arrow { align-self: center; font-size: 1.4rem; color: var(--muted); }
.meta { display: flex; flex-wrap: wrap; gap: 8px 28px; margin: 0 0 14px; }
.meta div { min-width: 0; }
.meta dt { font-size: 0.75rem; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); }
.meta dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
.headline { font-size: 1.05rem; margin: 0; padding: 12px 16px; background: var(--panel); border: 1px solid var(--line);
  border-left: 4px solid var(--accent); border-radius: 6px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; margin: 0 0 18px;
  padding: 0; list-style: none; }
.card { background: var(--panel); border: 1px solid var(--line); border-top: 4px solid var(--kind, var(--accent));
  border-radius: 8px; padding: 12px 14px; }
.card .count { display: block; font-size: 1.9rem; font-weight: 700; line-height: 1.1; color: var(--kind, var(--text)); }
.card .label { display: block; font-size: 0.85rem; color: var(--muted); }
.card.zero { opacity: .55; }
.card.zero .count { color: var(--muted); }
table { border-collapse: collapse; width: 100%; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; overflow-x: auto; }
.types th, .types td { padding: 7px 12px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
.types th:first-child, .types td:first-child { text-align: left; }
.types thead th { font-size: 0.8rem; color: var(--muted); font-weight: 600; background: var(--soft); }
.types tbody tr:last-child td { border-bottom: 0; }
.types tfoot :is(td, th) { font-weight: 700; border-top: 2px solid var(--line); border-bottom: 0; }
.types td.zero { color: var(--muted); }
.toolbar { background: var(--panel); padding: 12px 16px; border: 1px solid var(--line); border-radius: 8px;
  display: flex; flex-wrap: wrap; gap: 10px 24px; align-items: flex-end; }
.toolbar fieldset { border: 0; margin: 0; padding: 0; min-width: 0; flex: 1 1 100%; }
.toolbar legend, .toolbar .field-label { font-size: 0.75rem; text-transform: uppercase; letter-spacing: .05em;
  color: var(--muted); padding: 0; margin-bottom: 4px; display: block; }
.chips { display: flex; flex-wrap: wrap; gap: 6px; }
.chip { display: inline-flex; align-items: center; gap: 6px; padding: 3px 10px; border: 1px solid var(--line);
  border-radius: 999px; background: var(--panel); cursor: pointer; font-size: 0.88rem; user-select: none; }
.chip:has(input:checked) { border-color: var(--accent); box-shadow: inset 0 0 0 1px var(--accent); }
.chip input { margin: 0; accent-color: var(--accent); }
.chip .n { color: var(--muted); font-size: 0.8rem; }
.toolbar input[type=search], .toolbar select { font: inherit; padding: 5px 10px; border: 1px solid var(--line);
  border-radius: 6px; background: var(--panel); color: var(--text); }
.toolbar input[type=search] { width: 260px; max-width: 100%; }
.toolbar button { font: inherit; padding: 5px 12px; border: 1px solid var(--line); border-radius: 6px;
  background: var(--soft); color: var(--text); cursor: pointer; }
:is(input, select, button):focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
#shown-count { margin: 12px 0; font-weight: 600; }
.objects { display: flex; flex-direction: column; gap: 14px; }
.obj { background: var(--panel); border: 1px solid var(--line); border-left: 5px solid var(--kind); border-radius: 8px;
  padding: 14px 18px; }
.obj-head { display: flex; gap: 12px; align-items: flex-start; }
.symbol { flex: none; width: 30px; height: 30px; border-radius: 6px; display: grid; place-items: center;
  font: 700 1.05rem/1 ui-monospace, monospace; color: var(--panel); background: var(--kind); }
.obj-title { flex: 1; min-width: 0; }
.obj-title .type { font-size: 0.78rem; color: var(--muted); text-transform: none; letter-spacing: .02em; }
.obj-title .id { color: var(--muted); overflow-wrap: anywhere; }
.badges { display: flex; flex-wrap: wrap; gap: 6px; justify-content: flex-end; flex: none; max-width: 45%; }
.badge { display: inline-block; padding: 2px 9px; border-radius: 999px; font-size: 0.8rem; font-weight: 600;
  border: 1px solid currentColor; white-space: nowrap; }
.badge.kind { color: var(--kind); }
.recovery { margin: 10px 0 0; padding: 8px 12px; border-radius: 6px; font-size: 0.92rem; }
.recovery.yes { background: var(--ok-bg); color: var(--text); }
.recovery.no { background: var(--bad-bg); color: var(--text); }
.recovery .mark { font-weight: 700; margin-right: 6px; }
.recovery.yes .mark { color: var(--ok); }
.recovery.irreversible { background: var(--warn-bg); }
.recovery.irreversible .mark { color: var(--warn); }
.recovery.no .mark { color: var(--bad); }
.whole { margin: 10px 0 0; font-size: 0.9rem; }
.changes { margin-top: 12px; table-layout: fixed; }
.changes th, .changes td { text-align: left; vertical-align: top; padding: 7px 10px; border-bottom: 1px solid var(--line);
  overflow-wrap: anywhere; }
.changes thead th { font-size: 0.75rem; text-transform: uppercase; letter-spacing: .05em; color: var(--muted);
  font-weight: 600; border-bottom: 2px solid var(--line); }
.changes tbody tr:last-child td { border-bottom: 0; }
.changes col.prop { width: 16%; } .changes col.val { width: 34%; } .changes col.rec { width: 16%; }
.changes td.before { background: color-mix(in srgb, var(--del-bg) 45%, transparent); }
.changes td.after { background: color-mix(in srgb, var(--ins-bg) 45%, transparent); }
.changes pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.changes .ln { display: block; }
.changes .ln.del { background: var(--del-bg); }
.changes .ln.ins { background: var(--ins-bg); }
.changes col.who { width: 18%; }
.who, .by { color: var(--muted); font-size: 0.88rem; }
.who { margin: 8px 0 0; }
.rec-yes { color: var(--ok); font-weight: 600; }
.rec-no { color: var(--bad); }
.links { margin: 12px 0 0; display: grid; gap: 8px; }
.link-group h4 { margin: 0 0 4px; font-size: 0.9rem; }
.link-group h4 .note { font-weight: 400; color: var(--bad); }
.link-group ul { margin: 0; padding: 0; list-style: none; display: grid; gap: 3px; }
.link-group li { display: flex; gap: 8px; align-items: baseline; overflow-wrap: anywhere; }
.link-group .sign { flex: none; width: 1.3em; text-align: center; font-weight: 700; font-family: ui-monospace, monospace;
  border-radius: 4px; }
.link-group li.added .sign { color: var(--ok); background: var(--ins-bg); }
.link-group li.removed .sign { color: var(--bad); background: var(--del-bg); }
.link-group .name { font-weight: 600; }
.empty { text-align: center; padding: 48px 24px; background: var(--panel); border: 1px solid var(--line); border-radius: 10px;
  margin-top: 24px; }
.empty .big { font-size: 3rem; line-height: 1; color: var(--ok); }
.empty h2 { margin: 12px 0 6px; }
#no-match { padding: 24px; text-align: center; }
[data-kind="created"] { --kind: var(--created); } [data-kind="modified"] { --kind: var(--modified); }
[data-kind="softDeleted"] { --kind: var(--softDeleted); } [data-kind="restored"] { --kind: var(--restored); }
[data-kind="hardDeleted"] { --kind: var(--hardDeleted); } [data-kind="synchronized"] { --kind: var(--synchronized); }
@media (max-width: 720px) {
  .obj-head { flex-wrap: wrap; } .badges { max-width: none; justify-content: flex-start; }
  .changes col.prop { width: 22%; } .changes col.rec { width: 0; } .changes .rec-cell { display: none; }
}
@media print { .toolbar { display: none !important; } .obj { break-inside: avoid; } body { background: #fff; } }
"""

# Filters: checked types/kinds narrow the list (none checked means all), the search matches id or name.
SCRIPT = """
(function () {
  "use strict";
  var toolbar = document.getElementById("filters");
  if (!toolbar) { return; }
  var objects = Array.prototype.slice.call(document.querySelectorAll("section.obj"));
  var haystacks = objects.map(function (el) {
    return ((el.getAttribute("data-name") || "") + " " + (el.getAttribute("data-id") || "")).toLowerCase();
  });
  var search = document.getElementById("search");
  var recovery = document.getElementById("recovery-filter");
  var actor = document.getElementById("actor-filter");
  var counter = document.getElementById("shown-count");
  var noMatch = document.getElementById("no-match");
  function checked(name) {
    var values = {};
    var any = false;
    toolbar.querySelectorAll("input[name=" + name + "]:checked").forEach(function (box) {
      values[box.value] = true;
      any = true;
    });
    return any ? values : null;
  }
  function apply() {
    var types = checked("type");
    var kinds = checked("kind");
    var words = search.value.trim().toLowerCase().split(/\\s+/).filter(Boolean);
    var wanted = recovery.value;
    var who = actor ? actor.value : "";
    var shown = 0;
    objects.forEach(function (el, i) {
      var actors = (el.getAttribute("data-actors") || "").split("\\n");
      var visible = (!types || types[el.getAttribute("data-type")] === true) &&
        (!kinds || kinds[el.getAttribute("data-kind")] === true) &&
        (wanted === "all" || el.getAttribute("data-recoverable") === wanted) &&
        (who === "" || actors.indexOf(who) !== -1) &&
        words.every(function (w) { return haystacks[i].indexOf(w) !== -1; });
      el.hidden = !visible;
      if (visible) { shown += 1; }
    });
    counter.setAttribute("data-shown", String(shown));
    counter.textContent = shown + " of " + objects.length + " objects shown";
    noMatch.hidden = shown !== 0;
  }
  toolbar.addEventListener("input", apply);
  toolbar.addEventListener("change", apply);
  document.getElementById("reset").addEventListener("click", function () {
    toolbar.querySelectorAll("input[type=checkbox]").forEach(function (box) { box.checked = false; });
    search.value = "";
    recovery.value = "all";
    if (actor) { actor.value = ""; }
    apply();
  });
  toolbar.hidden = false;
  apply();
})();
"""


def _csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


# Only the page's own style and script blocks may run; no network, no frames, no forms, no plugins.
CSP = (
    f"default-src 'none'; style-src {_csp_hash(STYLE)}; script-src {_csp_hash(SCRIPT)}; "
    "base-uri 'none'; form-action 'none'"
)


def _e(text: object) -> str:
    """Text from the report, safe in element content and in quoted attribute values."""
    return html.escape(str(text), quote=True)


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _kind_values() -> tuple[str, ...]:
    return tuple(k.value for k in KIND_ORDER)


def render_html(view: ReportView) -> str:
    """The whole report as one self-contained HTML document."""
    title = f"Entra difference report: {view.backup} → {view.against}"
    parts = [_header(view)]
    if view.rows:
        parts += [_summary(view), _objects(view)]
    else:
        parts.append(_empty(view))
    return _page(title, "\n".join(parts))


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f'<meta name="generator" content="entra-gitops">\n<title>{_e(title)}</title>\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n"
        f"<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


# -- header and summary ------------------------------------------------------------------------


def _header(view: ReportView) -> str:
    meta = [("Scope", view.scope), ("Compared", _plural(view.compared, "object"))]
    if view.rows:
        meta.append(("Recoverable", f"{view.recoverable} of {_plural(len(view.rows), 'changed object')}"))
    items = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in meta)
    note = f'<p class="note" id="note">{_e(view.note)}</p>\n' if view.note else ""
    return (
        f'<header class="report-head">\n{note}<h1>Entra difference report</h1>\n'
        '<div class="compare">'
        f'<div class="side" id="before"><span class="k">Before</span><span class="v">{_e(view.backup)}</span></div>'
        '<span class="arrow" aria-hidden="true">→</span>'
        f'<div class="side" id="after"><span class="k">After</span><span class="v">{_e(view.against)}</span></div>'
        "</div>\n"
        f'<dl class="meta">{items}</dl>\n'
        f'<p class="headline" id="headline">{_e(view.headline)}</p>\n</header>'
    )


def _summary(view: ReportView) -> str:
    cards = []
    for kind, label, total in zip(_kind_values(), view.kinds, view.totals, strict=True):
        zero = " zero" if not total else ""
        cards.append(
            f'<li class="card{zero}" data-kind="{_e(kind)}" title="{_e(label)}">'
            f'<span class="count" data-count-kind="{_e(kind)}">{total}</span>'
            f'<span class="label">{_e(KIND_SHORT.get(kind, label))}</span></li>'
        )
    return (
        '<section aria-labelledby="summary-title">\n<h2 id="summary-title">Summary</h2>\n'
        f'<ul class="cards">{"".join(cards)}</ul>\n{_type_table(view)}\n</section>'
    )


def _type_table(view: ReportView) -> str:
    head = "".join(
        f'<th scope="col" title="{_e(label)}">{_e(KIND_SHORT.get(kind, label))}</th>'
        for kind, label in zip(_kind_values(), view.kinds, strict=True)
    )
    body = "".join(
        f'<tr data-summary-type="{_e(s.type_name)}"><th scope="row"><code>{_e(s.type_name)}</code></th>'
        + _count_cells(s.counts)
        + f"<td>{s.total}</td></tr>"
        for s in view.summary
    )
    foot = (
        f'<tr><th scope="row">Total</th>{_count_cells(view.totals)}<td data-count-total="">{len(view.rows)}</td></tr>'
    )
    return (
        '<div class="panel"><table class="types">\n<caption hidden>Changed objects per type and kind</caption>\n'
        f'<thead><tr><th scope="col">Type</th>{head}<th scope="col">Total</th></tr></thead>\n'
        f"<tbody>{body}</tbody>\n<tfoot>{foot}</tfoot>\n</table></div>"
    )


def _count_cells(counts: Iterable[int]) -> str:
    return "".join('<td class="zero">0</td>' if not n else f"<td>{n}</td>" for n in counts)


def _empty(view: ReportView) -> str:
    return (
        '<section class="empty" id="no-differences" aria-labelledby="empty-title">\n'
        '<div class="big" aria-hidden="true">✓</div>\n<h2 id="empty-title">No differences</h2>\n'
        f"<p>{_e(view.against)} matches {_e(view.backup)} for all {_plural(view.compared, 'object')} compared.</p>\n"
        f'<p class="muted">Scope: {_e(view.scope)}. Nothing to recover.</p>\n</section>'
    )


# -- filters and objects -----------------------------------------------------------------------


def _objects(view: ReportView) -> str:
    sections = "\n".join(_object(i, row) for i, row in enumerate(view.rows))
    total = len(view.rows)
    return (
        '<section aria-labelledby="objects-title">\n<h2 id="objects-title">Changed objects</h2>\n'
        f"{_filters(view)}\n"
        f'<p id="shown-count" role="status" aria-live="polite" data-shown="{total}" data-total="{total}">'
        f"{total} of {total} objects shown</p>\n"
        f'<div class="objects">\n{sections}\n'
        '<p id="no-match" class="panel muted" hidden>No object matches these filters.</p>\n</div>\n</section>'
    )


def _filters(view: ReportView) -> str:
    type_counts = Counter(r.type_name for r in view.rows)
    kind_counts = Counter(r.kind for r in view.rows)
    kind_labels = dict(zip(_kind_values(), view.kinds, strict=True))
    kinds = [k for k in _kind_values() if k in kind_counts] + [k for k in kind_counts if k not in kind_labels]
    type_chips = _chips("type", [(t, t, type_counts[t]) for t in sorted(type_counts)], mono=True)
    kind_chips = _chips("kind", [(k, KIND_SHORT.get(k, kind_labels.get(k, k)), kind_counts[k]) for k in kinds])
    return (
        '<form id="filters" class="toolbar" role="search" aria-label="Filter objects" hidden>\n'
        f"<fieldset><legend>Type</legend>{type_chips}</fieldset>\n"
        f"<fieldset><legend>Change</legend>{kind_chips}</fieldset>\n"
        '<div><label class="field-label" for="recovery-filter">Recovery</label>'
        '<select id="recovery-filter"><option value="all">all</option><option value="true">recoverable</option>'
        '<option value="false">not recoverable</option></select></div>\n'
        f"{_actor_filter(view)}"
        '<div><label class="field-label" for="search">Search id or name</label>'
        '<input type="search" id="search" placeholder="e.g. Finance or 8f3c…" autocomplete="off" spellcheck="false"></div>\n'
        '<div><button type="button" id="reset">Show all</button></div>\n</form>'
    )


def _actor_filter(view: ReportView) -> str:
    """A choice of the actors the audit log named, when it was asked; nothing when it was not."""
    if view.audit is None:
        return ""
    options = "".join(f'<option value="{_e(a)}">{_e(a)}</option>' for a in view.actors)
    return (
        '<div><label class="field-label" for="actor-filter">Changed by</label>'
        f'<select id="actor-filter"><option value="">anyone</option>{options}</select></div>\n'
    )


def _chips(name: str, options: Sequence[tuple[str, str, int]], mono: bool = False) -> str:
    chips = []
    for i, (value, label, count) in enumerate(options):
        field_id = f"{name}-{i}"
        text = f"<code>{_e(label)}</code>" if mono else _e(label)
        chips.append(
            f'<label class="chip" for="{field_id}"><input type="checkbox" id="{field_id}" name="{name}" '
            f'value="{_e(value)}">{text} <span class="n">{count}</span></label>'
        )
    return f'<div class="chips">{"".join(chips)}</div>'


def _object(index: int, row: ObjectRow) -> str:
    recoverable = "true" if row.recoverable else "false"
    name = row.display or ""
    heading = _e(row.display) if row.display else '<span class="muted">(no display name)</span>'
    attrs = (
        f'id="obj-{index}" class="obj" data-type="{_e(row.type_name)}" data-kind="{_e(row.kind)}" '
        f'data-action="{_e(row.action)}" data-recoverable="{recoverable}" data-id="{_e(row.id)}" data-name="{_e(name)}" '
        f'aria-labelledby="obj-{index}-title"'
    )
    if row.changed_by is not None:
        # A line break cannot be in a printable actor's label, so it separates them.
        attrs += f' data-actors="{_e(chr(10).join(row.actors))}"'

    head = (
        '<div class="obj-head">'
        f'<span class="symbol" aria-hidden="true">{_e(row.symbol)}</span>'
        f'<div class="obj-title"><span class="type mono">{_e(row.type_label)}</span>'
        f'<h3 id="obj-{index}-title">{heading}</h3><code class="id">{_e(row.id)}</code></div>'
        f'<div class="badges"><span class="badge kind">{_e(row.kind_label)}</span></div>'
        "</div>"
    )
    details = [_recovery(row)]
    if row.changed_by is not None:
        details.append(
            f'<p class="who" data-changed-by="{_e(row.changed_by.status)}">Changed {_e(_who(row.changed_by))}</p>'
        )
    if row.properties:
        details.append(_property_table(row.properties))
    if row.links:
        details.append(_links(row.links))
    if not row.properties and not row.links:
        details.append(
            f'<p class="whole muted">The whole object was {_e(row.kind_label)}; no property differences to show.</p>'
        )
    return f"<section {attrs}>\n{head}\n" + "\n".join(details) + "\n</section>"


def _recovery(row: ObjectRow) -> str:
    if row.action == Action.DELETE.value:  # recoverable, but the recovery itself cannot be undone
        return (
            '<p class="recovery yes irreversible"><span class="mark" aria-hidden="true">!</span>'
            f"<strong>Recoverable, one way only.</strong> Recovery would {_e(row.action_label)}.</p>"
        )
    if row.recoverable:
        return (
            '<p class="recovery yes"><span class="mark" aria-hidden="true">✓</span>'
            f"<strong>Recoverable.</strong> Recovery would {_e(row.action_label)}.</p>"
        )
    why = f" — {_e(row.note)}" if row.note else ""
    return f'<p class="recovery no"><span class="mark" aria-hidden="true">✕</span><strong>Not recoverable</strong>{why}.</p>'


# -- before and after --------------------------------------------------------------------------


def _who(by: ByRow) -> str:
    """`by mallory@contoso.com at 2026-11-21 10:41Z`, or `by: not in the audit log`."""
    return by.text if by.found else f"by: {by.text}"


def _property_table(props: Sequence[PropertyRow]) -> str:
    attributed = any(p.changed_by is not None for p in props)
    rows = "".join(_property_row(p, attributed) for p in props)
    who_col = '<col class="who">' if attributed else ""
    who_head = '<th scope="col" class="who-cell">Changed by</th>' if attributed else ""
    return (
        '<table class="changes">\n<colgroup><col class="prop"><col class="val"><col class="val"><col class="rec">'
        f"{who_col}</colgroup>\n"
        '<thead><tr><th scope="col">Property</th><th scope="col">Before</th><th scope="col">After</th>'
        f'<th scope="col" class="rec-cell">Recovery</th>{who_head}</tr></thead>\n'
        f"<tbody>{rows}</tbody>\n</table>"
    )


def _by_cell(by: ByRow | None) -> str:
    if by is None:
        return '<td class="who-cell"></td>'
    return f'<td class="who-cell by" data-changed-by="{_e(by.status)}">{_e(by.text.removeprefix("by "))}</td>'


def _property_row(p: PropertyRow, attributed: bool = False) -> str:
    before, after = _side_by_side(p)
    if p.recoverable:
        rec = '<span class="rec-yes">✓ written back</span>'
    else:
        rec = f'<span class="rec-no">✕ not recovered</span><br><span class="muted">{_e(p.note or "")}</span>'
    return (
        f'<tr data-property="{_e(p.name)}" data-recoverable="{"true" if p.recoverable else "false"}">'
        f'<th scope="row"><code>{_e(p.name)}</code></th><td class="before">{before}</td><td class="after">{after}</td>'
        f'<td class="rec-cell">{rec}</td>{_by_cell(p.changed_by) if attributed else ""}</tr>'
    )


def _structured(value: Any) -> bool:
    return isinstance(value, Mapping | list | tuple)


def _side_by_side(p: PropertyRow) -> tuple[str, str]:
    """Both values as cells: plain text for scalars, indented JSON with the differing lines marked."""
    if not (_structured(p.before_value) or _structured(p.after_value)):
        return _scalar(p.before, p.before_value), _scalar(p.after, p.after_value)
    old, new = _json_lines(p.before), _json_lines(p.after)
    old_marks, new_marks = [""] * len(old), [""] * len(new)
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag != "equal":
            old_marks[i1:i2] = ["del"] * (i2 - i1)
            new_marks[j1:j2] = ["ins"] * (j2 - j1)
    return _pre(old, old_marks), _pre(new, new_marks)


def _json_lines(text: str) -> list[str]:
    """format_value's compact JSON, indented one item a line; plain text stays as it is."""
    try:
        value = json.loads(text)
    except ValueError:
        return text.splitlines() or [text]
    if not isinstance(value, dict | list):
        return [text]
    # json.loads gave raw controls back; escaped again, no value on the page can carry one.
    return json_safe(json.dumps(value, indent=2, ensure_ascii=False)).splitlines()


def _pre(lines: Sequence[str], marks: Sequence[str]) -> str:
    if lines == [NONE_TEXT]:
        return _scalar(NONE_TEXT)
    # One block per line, so a changed line can carry its own background across the cell.
    body = "".join(
        f'<span class="{f"ln {m}" if m else "ln"}">{_e(line) or " "}</span>'
        for line, m in zip(lines, marks, strict=True)
    )
    return f"<pre>{body}</pre>"


def _scalar(text: str, raw: Any = None) -> str:
    if text == NONE_TEXT:
        return f'<span class="muted">{_e(text)}</span>'
    if isinstance(raw, str) and "\n" in raw:
        # A multi-line value keeps its line breaks on the page; each line is escaped on its own.
        return f"<pre>{_e(chr(10).join(printable(line) for line in raw.split(chr(10))))}</pre>"
    return f"<code>{_e(text)}</code>"


def _links(links: Sequence[LinkRow]) -> str:
    groups = []
    for link in links:
        note = "" if link.recoverable else f' <span class="note">✕ not recoverable — {_e(link.note or "")}</span>'
        added_by = link.added_by or (None,) * len(link.added)
        removed_by = link.removed_by or (None,) * len(link.removed)
        items = [_link_item("added", "+", i, n, b) for (i, n), b in zip(link.added, added_by, strict=True)]
        items += [_link_item("removed", "−", i, n, b) for (i, n), b in zip(link.removed, removed_by, strict=True)]
        counts = [f"{len(ids)} {word}" for ids, word in ((link.added, "added"), (link.removed, "removed")) if ids]
        summary = ", ".join(counts)
        groups.append(
            f'<div class="link-group" data-link="{_e(link.name)}" data-recoverable="{"true" if link.recoverable else "false"}">'
            f'<h4><code>{_e(link.name)}</code> <span class="muted">({summary})</span>{note}</h4>'
            f"<ul>{''.join(items)}</ul></div>"
        )
    return f'<div class="links">{"".join(groups)}</div>'


def _link_item(css: str, sign: str, object_id: str, name: str | None, by: ByRow | None = None) -> str:
    label = f'<span class="name">{_e(name)}</span> ' if name else ""
    who = "" if by is None else f' <span class="by" data-changed-by="{_e(by.status)}">{_e(_who(by))}</span>'
    return (
        f'<li class="{css}"><span class="sign" aria-hidden="true">{sign}</span><span class="sr">{css}: </span>'
        f'<span>{label}<code class="muted">{_e(object_id)}</code>{who}</span></li>'
    )
