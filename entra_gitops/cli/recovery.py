"""The recovery commands: plan (compute and save the writes for review) and apply (execute a reviewed plan)."""

from __future__ import annotations

import functools
import shlex
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from entra_gitops.cli.boundary import on_interrupt
from entra_gitops.cli.graphopts import GraphOptions, graph_options, with_graph
from entra_gitops.cli.options import format_option, no_verify_option, repo_option, utc_now
from entra_gitops.cli.output import add_to_job_summary, warn
from entra_gitops.model.errors import ConfigError, ExitCode
from entra_gitops.model.ids import fold_id
from entra_gitops.model.registry import default_registry
from entra_gitops.model.settings import load_config
from entra_gitops.model.tenant import SourceKind
from entra_gitops.model.textsafe import json_text, printable
from entra_gitops.recovery.errors import unsafe
from entra_gitops.recovery.history import record_history
from entra_gitops.recovery.journal import Journal
from entra_gitops.recovery.outcome import ApplyOutcome, Status
from entra_gitops.recovery.plan import Plan, PlanOptions
from entra_gitops.recovery.planfile import read_plan_file
from entra_gitops.recovery.render import (
    PLAN_FORMATS,
    apply_document,
    render_plan,
    render_plan_markdown,
    render_plan_text,
)
from entra_gitops.recovery.resume import journal_progress
from entra_gitops.recovery.service import (
    Saved,
    admitted_overrides,
    apply_checked,
    journal_for,
    record_completed,
    save_plan,
)
from entra_gitops.recovery.session import check_for_apply, make_plan, plan_source, uncommitted_edits
from entra_gitops.report.diff import ReportScope
from entra_gitops.state.gitstore import StateRepo
from entra_gitops.state.layout import STATE_DIR
from entra_gitops.state.paths import UnsafeIdError, validate_object_id
from entra_gitops.state.verify import required_verification

SAVED = {
    Saved.REFUSED: "Not saved to {out}: no review can accept this plan as it stands.",
    Saved.NEEDS_FORCE: "Saved the plan to {out}; apply refuses it unless --force.",
    Saved.SAVED: "Saved the plan to {out}. Review it, then: entra-gitops apply {out}",
}


@click.command("plan")
@graph_options
@repo_option
@click.option(
    "--backup",
    "backup_id",
    default="latest",
    show_default=True,
    help="The backup to recover to (latest: newest complete).",
)
@click.option(
    "--desired",
    metavar="REF",
    default=None,
    help="Plan towards the tenant-state/ files of this commit (a branch, HEAD, a pull request's head) "
    "instead of a backup: for reviewed edits of the files. The files must pass `entra-gitops validate`.",
)
@click.option("--type", "type_names", multiple=True, metavar="TYPE", help="Only this resource type (repeatable).")
@click.option("--id", "object_ids", multiple=True, metavar="OBJECT_ID", help="Only this object (repeatable).")
@click.option(
    "--allow-delete",
    is_flag=True,
    help="Also remove objects created after the backup whose type has no soft delete (app role assignments, "
    "grants, authentication strengths): permanent, shown as irreversible.",
)
@click.option(
    "--recreate",
    is_flag=True,
    help="Also create again, from the backup, what is gone from Graph (not even in deleted items): users, groups, "
    "applications (a new appId), service principals, Conditional Access policies (enabled last), named locations, "
    "authentication strengths, and the assignments and grants that went with them. Each gets a new id, and the "
    "plan moves every reference to it there.",
)
@click.option(
    "--allow-empty",
    multiple=True,
    metavar="TYPE",
    help="With --desired: TYPE's folder is missing on purpose, so every live TYPE object is to go (repeatable).",
)
@click.option(
    "--allow-lockout",
    is_flag=True,
    help="Save a plan the lockout guard refuses (apply refuses it again unless given --allow-lockout too).",
)
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="Save the plan file here.")
@click.option("--format", "output_format", type=click.Choice(PLAN_FORMATS), default="text", show_default=True)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when the plan has writes, 0 when it has none.")
@no_verify_option
@click.pass_context
def plan_command(
    ctx: click.Context,
    graph: GraphOptions,
    repo: Path,
    backup_id: str,
    desired: str | None,
    type_names: tuple[str, ...],
    object_ids: tuple[str, ...],
    allow_delete: bool,
    recreate: bool,
    allow_empty: tuple[str, ...],
    allow_lockout: bool,
    out: Path | None,
    output_format: str,
    detailed_exitcode: bool,
    no_verify: bool,
) -> None:
    """Compute the Graph writes that bring the live tenant back to a backup, and save them for review.

    The plan restores soft-deleted objects, writes changed `recover` properties and links back,
    soft-deletes objects created (or restored) after the backup, and re-creates app role
    assignments and admin-consented grants. Synchronised and permanently deleted objects are listed
    as not recoverable. The plan file records the backup, the scope, every step with the live
    object's fingerprint, and a checksum: `entra-gitops apply PLAN.json` executes exactly that.

    Every guard runs before the plan is saved (README, "Safety"): thresholds against the live
    tenant, protected objects, and the break-glass lockout guard. A desired state missing a type's
    folder, or a plan that would lock out a break-glass account, is refused and not saved.

    \b
    Examples:
      entra-gitops plan -o plan.json                       everything back to the latest complete backup
      entra-gitops plan --id 6f1d0c1e-... -o plan.json     one object, as it was
      entra-gitops plan --desired HEAD -o plan.json        towards hand-edited files (a pull request)
      entra-gitops plan --recreate -o plan.json            hard-deleted users and groups made again, new ids
    Exit 0 planned (2 with --detailed-exitcode when there are writes), 1 error, 3 refused as unsafe.
    """
    registry = default_registry()
    registry.select(list(type_names))
    empty_ok = tuple(t.name for t in registry.select(list(allow_empty))) if allow_empty else ()
    if empty_ok and desired is None:
        raise click.UsageError("--allow-empty is for --desired states: a backup has every type it read")
    ids = tuple(check_object_id(i) for i in object_ids)
    store = StateRepo.open(repo)
    config = load_config(store.root)
    if desired is not None and ctx.get_parameter_source("backup_id") is not ParameterSource.DEFAULT:
        raise click.UsageError("--desired and --backup name two different targets: give one")
    source = plan_source(store, registry, backup_id, desired)
    if source.kind is SourceKind.BACKUP:
        warning = required_verification(store, registry, config.signing, source.label, no_verify=no_verify)
        if warning:
            warn(warning)
    if uncommitted_edits(store, source):
        # Said before Graph is read, so that it is seen even when the plan then fails.
        warn(f"{STATE_DIR}/ has uncommitted edits, which this plan does not include: commit them first")
    scope = ReportScope(tuple(type_names), ids)
    options = PlanOptions(allow_delete, empty_ok, recreate)
    checked = with_graph(
        graph,
        config,
        lambda client, progress: make_plan(
            client, store, registry, config, source, scope, options, utc_now(), progress
        ),
    )
    if checked.audit_warning:
        warn(checked.audit_warning)
    saved = save_plan(out, checked, allow_lockout=allow_lockout) if out is not None else None
    plan, assessment = checked.plan, checked.assessment
    click.echo(render_plan(plan, assessment, output_format), nl=False)
    add_to_job_summary(render_plan_markdown(plan, assessment))
    if saved is not None:
        click.echo(SAVED[saved].format(out=out), err=True)
    remaining = assessment.remaining(allow_lockout=allow_lockout)
    if remaining:
        raise unsafe(remaining)
    if detailed_exitcode and not plan.empty:
        ctx.exit(ExitCode.CHANGES)


def check_object_id(value: str) -> str:
    """An --id as the files and Graph hold it: a safe object id, GUIDs in lower case."""
    try:
        return fold_id(validate_object_id(value.strip()))
    except UnsafeIdError as err:
        raise click.BadParameter(str(err), param_hint="--id") from None


@click.command("apply")
@click.argument("plan_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@graph_options
@repo_option
@click.option("--auto-approve", is_flag=True, help="Do not ask for 'yes' first (for reviewed plans in pipelines).")
@click.option(
    "--force",
    is_flag=True,
    help="Apply although the plan crosses a safety threshold or touches a protected object (never a lockout).",
)
@click.option(
    "--allow-lockout",
    is_flag=True,
    help="Apply although the lockout guard finds a break-glass account locked out afterwards; history says so.",
)
@click.option(
    "--skip-stale", is_flag=True, help="Apply the writes for objects that did not change since the plan; skip the rest."
)
@click.option(
    "--write-rate", type=click.FloatRange(0.1, 1000), default=20.0, show_default=True, help="Writes per second at most."
)
@format_option(
    "text",
    "json",
    help="json (with --auto-approve): status, writes done of total, failures and the history record on stdout; "
    "the plan and everything else on stderr.",
)
@no_verify_option
def apply_command(
    plan_file: Path,
    graph: GraphOptions,
    repo: Path,
    auto_approve: bool,
    force: bool,
    allow_lockout: bool,
    skip_stale: bool,
    write_rate: float,
    output_format: str,
    no_verify: bool,
) -> None:
    """Execute a reviewed plan file, and nothing else.

    The plan file must be well-formed and unchanged (its checksum), for this repository's tenant,
    and every step must be one that recovery to the plan's source makes: each request is derived
    again from its step and the file's own is refused when it differs. The repository's lock is
    taken (one snapshot or recovery at a time), every target re-read, and the whole plan refused
    (exit 4) when any target changed since the plan was made, unless --skip-stale. Every guard runs
    again against the live tenant. Writes run in dependency order within Graph's write limits, each
    journalled before the next, so an interrupted apply can be rerun and continues where it stopped.
    Each object is verified afterwards, and the outcome is committed to recovery history.

    \b
    Examples:
      entra-gitops apply plan.json                      shows the plan, asks for 'yes'
      entra-gitops apply plan.json --auto-approve       in a pipeline, for a reviewed plan
      entra-gitops apply plan.json --skip-stale         write what did not change since the plan
    Exit 0 applied, 1 failed, partly applied, declined at the prompt (anything but 'yes') or a plan that
    cannot be trusted, 3 refused as unsafe, 4 stale.
    """
    as_json = output_format == "json"
    if as_json and not auto_approve:
        raise click.UsageError("--format json needs --auto-approve: nobody can answer a prompt beside JSON output")
    say = functools.partial(click.echo, err=as_json)  # stdout holds only the JSON report then
    registry = default_registry()
    plan = read_plan_file(plan_file)
    store = StateRepo.open(repo)
    config = load_config(store.root)
    unverified = None
    if plan.kind is SourceKind.BACKUP:
        unverified = required_verification(store, registry, config.signing, plan.backup, no_verify=no_verify)
        if unverified:
            warn(unverified)
    with journal_for(store, plan, notice=warn) as journal, on_interrupt(lambda: resume_note(plan_file, plan, journal)):
        events = journal.last_events()
        progress = journal_progress(plan, events)
        if progress.complete:
            completed = record_completed(store, plan, journal, utc_now())
            for warning in completed.warnings:
                warn(warning)
            if completed.recorded is None:
                say("This plan was applied completely already (see entra-gitops history).")
            else:
                say(f"This plan's writes were all done already; recorded in {completed.recorded}.")
            if as_json:
                click.echo(json_text(apply_document(plan, None, completed.recorded)))
            return
        checked = with_graph(
            graph, config, lambda client, shown: check_for_apply(client, store, registry, config, plan, events, shown)
        )
        say(render_plan_text(checked.plan, checked.assessment), nl=False)
        if checked.plan.empty:
            say("Nothing to apply.")
            if as_json:
                click.echo(json_text(apply_document(checked.plan, None, None)))
            return
        overrides = admitted_overrides(checked.assessment, force=force, allow_lockout=allow_lockout)
        overrides += ("--no-verify",) if unverified else ()
        if progress.started:
            say(
                f"Continuing an earlier apply of this plan: {progress.done} written, {progress.in_doubt} in doubt "
                f"(checked before anything is resent), {progress.failed} failed."
            )
        if not auto_approve:
            confirm_apply()
        outcome = with_graph(
            graph,
            config,
            # After a person answered, the tenant may have moved: read it again for the stale check.
            lambda client, shown: apply_checked(
                client, registry, checked, journal, reread_live=not auto_approve, overrides=overrides,
                skip_stale=skip_stale, write_rate=write_rate, progress=shown,
            ),
        )  # fmt: skip
        path = record_history(store, checked.plan, outcome, utc_now())
    show_outcome(plan, outcome, path, as_json=as_json)


def resume_note(plan_file: Path, plan: Plan, journal: Journal) -> str:
    """What an interrupted apply leaves: the writes its journal holds as done, and the rerun that continues."""
    where = journal_progress(plan, journal.last_events())
    rerun = f"'entra-gitops apply {shlex.quote(str(plan_file))}'"
    if not (where.done or where.in_doubt):
        return f"nothing of this plan was written; run {rerun} again (the same options) to apply it."
    doubt = f", {where.in_doubt} in doubt (checked before anything is resent)" if where.in_doubt else ""
    return (
        f"the plan's journal holds what was done, {where.done} of {len(plan.writes)} write(s){doubt}; run {rerun} "
        "again (the same options) and it continues where it stopped, sending nothing twice."
    )


def show_outcome(plan: Plan, outcome: ApplyOutcome, recorded: str, *, as_json: bool = False) -> None:
    """The apply's summary line (beside JSON: the report), its failures and warnings; exit 1 when any write failed."""
    if as_json:
        click.echo(json_text(apply_document(plan, outcome, recorded)))
    click.echo(
        f"Apply {outcome.status.value}: {len(outcome.applied)} of {len(plan.writes)} write(s) done"
        + (f", {len(outcome.stale)} stale object(s) skipped" if outcome.stale else "")
        + (f", {len(outcome.failures)} failed" if outcome.failures else "")
        + f". Recorded in {recorded}.",
        err=as_json,
    )
    for failure in outcome.failures:
        click.echo(f"  failed: {failure.method} {failure.path}: {printable(failure.message)}", err=True)
    for warning in outcome.warnings:
        click.echo(f"  warning: {printable(warning)}", err=True)
    if outcome.status in (Status.FAILED, Status.PARTIALLY_APPLIED):
        raise click.exceptions.Exit(ExitCode.ERROR)


def confirm_apply() -> None:
    """Ask for 'yes' on a terminal; refuse where nobody can answer."""
    if not sys.stdin.isatty():
        raise ConfigError(
            "apply asks for 'yes' first, and nobody can answer here", hint="pass --auto-approve for a reviewed plan"
        )
    answer = click.prompt(
        "Apply these writes to the live tenant? Only 'yes' is accepted", default="", show_default=False
    )
    if answer != "yes":
        click.echo("Apply cancelled; nothing was written.")
        raise click.exceptions.Exit(ExitCode.ERROR)  # as Terraform: a declined apply is no success for a script
