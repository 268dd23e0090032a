"""Renderings of a recovery plan: a Terraform-like text for terminals, markdown for pull requests."""

from __future__ import annotations

import html
from collections import Counter

from entra_gitops.plan import Plan, Step, Write
from entra_gitops.render.view import format_value
from entra_gitops.safety import Refusal

STEP_WORDS = {
    Step.RESTORE: ("<", "restore"),
    Step.CREATE: ("+", "re-create"),
    Step.UPDATE: ("~", "update"),
    Step.ACTION: ("~", "update"),
    Step.ADD_LINK: ("+", "add link"),
    Step.REMOVE_LINK: ("-", "remove link"),
    Step.SOFT_DELETE: ("-", "soft-delete"),
    Step.DELETE: ("-", "delete"),
}


def _label(write: Write) -> str:
    name = f" '{write.display}'" if write.display else ""
    return f"{write.type_name}{name} ({write.object_id})"


def plan_summary(plan: Plan) -> str:
    """One line: how many writes of which kind."""
    if plan.empty:
        return f"No changes: the tenant already matches {plan.backup} within the scope."
    counted = Counter(STEP_WORDS[w.step][1] for w in plan.writes)
    parts = ", ".join(f"{n} {word}" for word, n in counted.items())
    return f"Plan: {len(plan.writes)} write(s) to bring the tenant back to {plan.backup}: {parts}."


def render_plan_text(plan: Plan, refusals: tuple[Refusal, ...] = ()) -> str:
    lines = [f"Recovery plan to {plan.backup} (commit {plan.backup_commit[:10]}), scope: {plan.scope.describe()}", ""]
    for number, write in enumerate(plan.writes, start=1):
        symbol, word = STEP_WORDS[write.step]
        lines.append(f"{number:>4}. {symbol} {word:<11} {_label(write)}")
        lines.append(f"        {write.method} {write.path}")
        for name, now, after in write.changes:
            if write.step in (Step.ADD_LINK, Step.REMOVE_LINK):
                continue
            lines.append(f"        ~ {name}: {format_value(now)} -> {format_value(after)}")
    if plan.skipped:
        lines += ["", "Not written by this plan:"]
        lines += [f"   ! {s.type_name} {s.display or ''} ({s.object_id}): {s.reason}" for s in plan.skipped]
    if refusals:
        lines += ["", "Unsafe (apply refuses this plan unless --force):"]
        lines += [f"   x {r.message}" for r in refusals]
    lines += ["", plan_summary(plan)]
    if plan.checksum:
        lines.append(f"Checksum {plan.checksum}")
    return "\n".join(lines) + "\n"


def render_plan_markdown(plan: Plan, refusals: tuple[Refusal, ...] = ()) -> str:
    lines = [
        "## entra-gitops recovery plan",
        "",
        f"To **{html.escape(plan.backup)}** (commit `{plan.backup_commit[:10]}`) · scope: {html.escape(plan.scope.describe())}",
        "",
        html.escape(plan_summary(plan)),
        "",
    ]
    if plan.writes:
        lines += ["| # | write | object | request | changes |", "|---|---|---|---|---|"]
        for number, write in enumerate(plan.writes, start=1):
            symbol, word = STEP_WORDS[write.step]
            changes = "<br>".join(
                html.escape(f"{n}: {format_value(a)} → {format_value(b)}")[:300] for n, a, b in write.changes
            )
            lines.append(
                f"| {number} | `{symbol}` {word} | {html.escape(_label(write))} | `{write.method} {write.path}` | {changes} |"
            )
        lines.append("")
    if plan.skipped:
        lines += ["**Not written by this plan**", ""]
        lines += [
            f"- {html.escape(s.type_name)} {html.escape(s.display or s.object_id)}: {html.escape(s.reason)}"
            for s in plan.skipped
        ]
        lines.append("")
    if refusals:
        lines += ["**Unsafe: apply refuses this plan unless `--force`**", ""]
        lines += [f"- {html.escape(r.message)}" for r in refusals]
        lines.append("")
    if plan.checksum:
        lines.append(f"Checksum `{plan.checksum}`")
    return "\n".join(lines) + "\n"
