"""Renderings of a recovery plan: a Terraform-like text for terminals, markdown for pull requests; and the
JSON report of an apply.

Every string that comes from the tenant or the plan file passes `printable` (text) or `markdown_text`
(markdown), so no object name can act on a reviewer's terminal or break out of a table.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from entra_gitops.model.attribution import by_text
from entra_gitops.model.frozen import strings_in
from entra_gitops.model.ids import fold_id
from entra_gitops.model.registry import default_registry
from entra_gitops.model.tenant import SourceKind
from entra_gitops.model.textsafe import json_safe, printable
from entra_gitops.recovery.outcome import ApplyOutcome
from entra_gitops.recovery.plan import Plan, plan_json
from entra_gitops.recovery.recreate import recreated_ids
from entra_gitops.recovery.safety import NOTHING_FOUND, Assessment
from entra_gitops.recovery.steps import LINK_STEPS, Step, Write
from entra_gitops.report.markdown import markdown_text
from entra_gitops.report.view import format_value

PLAN_FORMATS = ("text", "markdown", "json")
APPLY_FORMAT = "entra-gitops.apply-report/1"
# An apply's status besides the outcomes history records: nothing was run, for one of these reasons.
ALREADY_APPLIED, NOTHING_TO_APPLY = "alreadyApplied", "nothingToApply"
STEP_WORDS = {
    Step.RESTORE: ("<", "restore"),
    Step.CREATE: ("+", "re-create"),
    Step.UPDATE: ("~", "update"),
    Step.ACTION: ("~", "update"),
    Step.ADD_LINK: ("+", "add link"),
    Step.REMOVE_LINK: ("-", "remove link"),
    Step.SOFT_DELETE: ("-", "soft-delete"),
    Step.DELETE: ("!", "DELETE"),
}


def step_words(write: Write) -> tuple[str, str]:
    """The symbol and words a plan shows for a write: a permanent delete of a role assignment is its removal."""
    symbol, word = STEP_WORDS[write.step]
    removal = default_registry().get(write.type_name).removal if write.step is Step.DELETE else None
    return symbol, removal or word


def _label(write: Write) -> str:
    name = f" '{write.display}'" if write.display else ""
    return printable(f"{write.type_name}{name} ({write.object_id})")


def write_label(write: Write) -> str:
    """One write in a few words, as a progress display names the step at hand: `update user 'Kari' (8d3b…)`."""
    return f"{step_words(write)[1]} {_label(write)}"


def _target(plan: Plan) -> str:
    return printable(f"the files of {plan.backup}" if plan.kind is SourceKind.DESIRED else plan.backup)


def plan_summary(plan: Plan) -> str:
    """One line: how many writes of which kind."""
    if plan.empty:
        return f"No changes: the tenant already matches {_target(plan)} within the scope."
    counted = Counter(step_words(w)[1] for w in plan.writes)
    parts = ", ".join(f"{n} {word}" for word, n in counted.items())
    return f"Plan: {len(plan.writes)} write(s) to bring the tenant to {_target(plan)}: {parts}."


def _change_lines(write: Write, recreated: frozenset[str] = frozenset()) -> list[str]:
    """What a write changes, a line each; an id of an object the plan re-creates is marked, as it is sent with
    the new id Graph gives that object."""
    if write.step is Step.CREATE and fold_id(write.object_id) in recreated:
        lines = [f"~ re-created from the backup, where its id was {write.object_id}: Graph gives it a new id"]
        if isinstance(write.body, dict) and "passwordProfile" in write.body:
            lines.append("~ a password is made as apply sends this, written nowhere: the user must reset it")
        renamed = [n for n, kind in default_registry().get(write.type_name).server_generated.items() if kind == "uuid"]
        for name in (n for n in renamed if n != "id"):
            lines.append(
                f"~ Graph gives it a new {name} too: whatever signs in with the old one needs the new one, and new "
                "credentials (secrets are never backed up); the writes below that name it are sent with it"
            )
        return [printable(line) for line in lines]
    if write.step in LINK_STEPS:
        verb = "add" if write.step is Step.ADD_LINK else "remove"
        owner = f" (of {write.object_id} → new id, re-created)" if fold_id(write.object_id) in recreated else ""
        moved = " → new id (re-created)" if write.target and fold_id(write.target) in recreated else ""
        return [printable(f"~ {write.link}: {verb} {write.target}{moved}{owner}")]
    lines = [
        printable(f"~ {name}{f'[{write.item}]' if write.item else ''}: {format_value(now)} -> {format_value(after)}")
        for name, now, after in write.changes
    ]
    sent = [after for _, _, after in write.changes]
    if write.step is Step.CREATE and isinstance(write.body, dict):
        sent.append(write.body)  # a relationship made again (a role assignment) for an object re-created
    named = sorted({i for after in sent for i in strings_in(after) if fold_id(i) in recreated})
    lines += [printable(f"~ {old} → new id (re-created): sent with the id Graph gives it") for old in named]
    return lines


def _recreated(plan: Plan) -> frozenset[str]:
    return recreated_ids(default_registry(), plan.writes) if plan.options.recreate else frozenset()


def _who(plan: Plan, type_name: str, object_id: str) -> str | None:
    """Who changed the object since the source, printable; None when the plan recorded nothing."""
    by = plan.by(type_name, object_id)
    return None if by is None else printable(by_text(by))


def _options(plan: Plan) -> list[str]:
    lines = []
    if plan.options.allow_delete:
        lines.append("made with --allow-delete: objects without soft delete are deleted permanently")
    if plan.options.recreate:
        lines.append("made with --recreate: objects gone from Graph are created again from the backup, with new ids")
    if plan.options.allow_empty:
        lines.append(f"made with --allow-empty {' '.join(plan.options.allow_empty)}: those types are to be emptied")
    if plan.protected:
        lines.append(f"protected: {len(plan.protected)} object(s), as ids: " + ", ".join(
            printable(f"{p.type_name} '{p.label}' ({p.object_id})") for p in plan.protected
        ))  # fmt: skip
    if plan.break_glass:
        lines.append(f"break-glass accounts checked by the lockout guard: {', '.join(plan.break_glass)}")
    return lines


def render_plan_text(plan: Plan, assessment: Assessment = NOTHING_FOUND) -> str:
    """The plan for a terminal: each write with its request and changes, then what is not written and why."""
    lines = [
        f"Recovery plan to {_target(plan)} (commit {plan.backup_commit[:10]}), scope: {printable(plan.scope.describe())}",
        *(f"  {line}" for line in _options(plan)),
        "",
    ]
    recreated = _recreated(plan)
    for number, write in enumerate(plan.writes, start=1):
        symbol, word = step_words(write)
        warning = "   (permanent: cannot be undone)" if write.irreversible else ""
        lines.append(f"{number:>4}. {symbol} {word:<11} {_label(write)}{warning}")
        lines.append(f"        {write.method} {printable(write.path)}")
        lines.extend(f"        {line}" for line in _change_lines(write, recreated))
        who = _who(plan, write.type_name, write.object_id)
        if who is not None:
            lines.append(f"        {who}")
    if plan.skipped:
        lines += ["", "Not written by this plan:"]
        for s in plan.skipped:
            who = _who(plan, s.type_name, s.object_id)
            lines.append(printable(f"   ! {s.type_name} {s.display or ''} ({s.object_id}): {s.reason}"))
            if who is not None:
                lines.append(f"     {who}")
    if assessment.warnings:
        lines += ["", "Warnings:"]
        lines += [f"   ! {printable(w)}" for w in assessment.warnings]
    if assessment.refusals:
        lines += ["", "Unsafe (refused, exit 3; the flag in brackets takes it anyway):"]
        lines += [f"   x {printable(r.message)}  [{r.override}]" for r in assessment.refusals]
    lines += ["", plan_summary(plan)]
    if plan.checksum:
        lines.append(f"Checksum {plan.checksum}")
    return "\n".join(lines) + "\n"


def render_plan_markdown(plan: Plan, assessment: Assessment = NOTHING_FOUND) -> str:
    """The plan for a pull request or job summary: a table of writes, then skipped, warnings and refusals."""
    lines = [
        "## entra-gitops recovery plan",
        "",
        f"To **{markdown_text(plan.backup)}** (commit `{plan.backup_commit[:10]}`) · scope: {markdown_text(plan.scope.describe())}",
        "",
        markdown_text(plan_summary(plan)),
        "",
    ]
    lines += [f"- {markdown_text(line)}" for line in _options(plan)]
    recreated = _recreated(plan)
    if plan.writes:
        lines += ["", "| # | write | object | request | changes |", "|---|---|---|---|---|"]
        for number, write in enumerate(plan.writes, start=1):
            symbol, word = step_words(write)
            word = f"**{word}** (permanent)" if write.irreversible else word
            changes = "<br>".join(
                markdown_text(line.removeprefix("~ "))[:300] for line in _change_lines(write, recreated)
            )
            who = _who(plan, write.type_name, write.object_id)
            label = markdown_text(_label(write)) + (f"<br>_{markdown_text(who)}_" if who else "")
            lines.append(
                f"| {number} | `{symbol}` {word} | {label} | {markdown_text(f'{write.method} {write.path}')} "
                f"| {changes} |"
            )
        lines.append("")
    if plan.skipped:
        lines += ["**Not written by this plan**", ""]
        for s in plan.skipped:
            who = _who(plan, s.type_name, s.object_id)
            lines.append(
                f"- {markdown_text(s.type_name)} {markdown_text(s.display or s.object_id)}: {markdown_text(s.reason)}"
                + (f" (_{markdown_text(who)}_)" if who else "")
            )
        lines.append("")
    if assessment.warnings:
        lines += ["**Warnings**", ""]
        lines += [f"- {markdown_text(w)}" for w in assessment.warnings]
        lines.append("")
    if assessment.refusals:
        lines += ["**Unsafe: refused (exit 3)**", ""]
        lines += [f"- {markdown_text(r.message)} (`{r.override}` takes it anyway)" for r in assessment.refusals]
        lines.append("")
    if plan.checksum:
        lines.append(f"Checksum `{plan.checksum}`")
    return "\n".join(lines) + "\n"


def render_plan(plan: Plan, assessment: Assessment, output_format: str) -> str:
    """The plan in one of PLAN_FORMATS: what `plan` prints, and `show` prints again from the saved file."""
    if output_format == "json":
        return json_safe(plan_json(plan))  # the same values as the file; nothing in them acts on a terminal
    if output_format == "markdown":
        return render_plan_markdown(plan, assessment)
    return render_plan_text(plan, assessment)


def apply_document(plan: Plan, outcome: ApplyOutcome | None, recorded: str | None) -> dict[str, Any]:
    """What `apply --format json` prints (schemas/reports/apply-report.schema.json). No `outcome`: nothing ran,
    because the plan has no writes (left) or because its journal shows every write done by an earlier run."""
    if outcome is None:
        status = NOTHING_TO_APPLY if plan.empty else ALREADY_APPLIED
        outcome = ApplyOutcome(earlier=tuple(range(len(plan.writes))))
    else:
        status = outcome.status.value
    return {
        "format": APPLY_FORMAT,
        "status": status,
        "plan": {
            "checksum": plan.checksum,
            "tenant": plan.tenant,
            "source": plan.backup,
            "commit": plan.backup_commit,
            "kind": plan.kind.value,
        },
        "writes": {"done": len(outcome.applied), "total": len(plan.writes)},
        "stale": [{"type": type_name, "id": object_id} for type_name, object_id in outcome.stale],
        "failures": [failure.record() for failure in outcome.failures],
        "warnings": list(outcome.warnings),
        "overrides": list(outcome.overrides),
        "recreated": [{"type": t, "backupId": old, "newId": new} for t, old, new in outcome.recreated],
        "history": recorded,
    }
