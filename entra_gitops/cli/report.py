"""The report commands: diff (a backup against the live tenant or another commit) and validate (state files)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import click

from entra_gitops.cli.graphopts import GraphOptions, ReadProgress, graph_options, with_graph
from entra_gitops.cli.options import no_verify_option, repo_option
from entra_gitops.cli.output import add_to_job_summary, emit, use_colour, warn
from entra_gitops.graph.client import GraphClient
from entra_gitops.model.attribution import Attribution
from entra_gitops.model.errors import ExitCode
from entra_gitops.model.registry import default_registry
from entra_gitops.model.settings import load_config
from entra_gitops.model.tenant import TenantState
from entra_gitops.recovery.session import audit_for, check_ids, check_repository_tenant
from entra_gitops.report.diff import DifferenceReport, ReportScope, Whereabouts, difference_report
from entra_gitops.report.jsonout import render_json
from entra_gitops.report.markdown import render_markdown
from entra_gitops.report.text import render_text
from entra_gitops.report.view import ReportView, attributed, build_view, display_names, linked_ids
from entra_gitops.state.gitstore import BACKUP_PREFIX, StateRepo
from entra_gitops.state.incremental import Narrowed, narrowed_live, objects_named
from entra_gitops.state.layout import parsed_once
from entra_gitops.state.sources import backup_source, load_source, resolve_reference, state_at
from entra_gitops.state.verify import required_verification

REPORT_FORMATS = ("text", "markdown", "json", "html")


def render_report(view: ReportView, output_format: str, colour: bool) -> str:
    """The report in the asked format; every format is made from the same view model."""
    if output_format == "markdown":
        return render_markdown(view)
    if output_format == "json":
        return render_json(view)
    if output_format == "html":
        from entra_gitops.report.html import render_html

        return render_html(view)
    return render_text(view, colour=colour)


@click.command("diff")
@graph_options
@repo_option
@click.option(
    "--backup", "backup_id", default="latest", show_default=True, help="The backup to compare: its id, tag, or latest."
)
@click.option(
    "--against",
    default="live",
    show_default=True,
    help="'live' reads the tenant from Graph; a backup id, tag, branch or commit compares offline.",
)
@click.option("--type", "type_names", multiple=True, metavar="TYPE", help="Only this resource type (repeatable).")
@click.option("--id", "object_ids", multiple=True, metavar="OBJECT_ID", help="Only this object (repeatable, no limit).")
@click.option("--format", "output_format", type=click.Choice(REPORT_FORMATS), default="text", show_default=True)
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write here instead of stdout."
)
@no_verify_option
@click.pass_context
def diff_command(
    ctx: click.Context,
    graph: GraphOptions,
    repo: Path,
    backup_id: str,
    against: str,
    type_names: tuple[str, ...],
    object_ids: tuple[str, ...],
    output_format: str,
    output: Path | None,
    no_verify: bool,
) -> None:
    """Compare a backup with the live tenant (or another backup or commit), per property and per link.

    Every changed object is classified (created after the backup, modified, soft-deleted,
    restored after the backup, permanently deleted, changed on-premises) with the recovery action
    it would get, and every changed property says whether recovery can write it back and why not.

    \b
    Examples:
      entra-gitops diff                                   latest backup against the live tenant
      entra-gitops diff --against 20261120T230000Z        two backups, offline
      entra-gitops diff --type conditionalAccessPolicy --format markdown --output report.md
    Exit 0 no differences in scope, 1 error, 2 differences.
    """
    registry = default_registry()
    types = registry.select(list(type_names))
    store = StateRepo.open(repo)
    config = load_config(store.root)
    backup = store.resolve_backup(backup_id)
    source = backup_source(backup)
    other = resolve_reference(store, against)[0] if against != "live" else ""
    for name in dict.fromkeys(n for n in (backup.name, other) if n.startswith(BACKUP_PREFIX)):
        warning = required_verification(store, registry, config.signing, name, no_verify=no_verify)
        if warning:
            warn(warning)
    scope = ReportScope(tuple(type_names), tuple(object_ids))

    def compare(
        before: TenantState,
        after: TenantState,
        label: str,
        now: Whereabouts | None = None,
        same: Mapping[str, int] | None = None,
    ) -> DifferenceReport:
        check_ids(scope, before, after, source.label, label)
        return difference_report(
            registry, before, after, backup_name=source.label, against_name=label, scope=scope, note=source.note,
            now=now, identical=same,
        )  # fmt: skip

    attribution: Attribution | None = None  # two backups compare offline: the audit log is not asked
    if against == "live":

        async def read(
            client: GraphClient, progress: ReadProgress
        ) -> tuple[Narrowed, DifferenceReport, Attribution, str | None]:
            await check_repository_tenant(client, store, config, registry)
            # Only what can differ is parsed: objects whose files are one blob in the backup and live are not.
            cut = await narrowed_live(client, store, registry, types, source.commit, source.types, object_ids, progress)
            now = Whereabouts(cut.lifecycles, cut.after.types)
            found = compare(cut.before, cut.after, "the live tenant", now, cut.identical)
            audit = await audit_for(client, found, backup.time, progress)
            traced = attributed(found, audit.events if audit.available else None, backup.time)
            return cut, found, traced, audit.warning

        cut, report, attribution, audit_warning = with_graph(graph, config, read)
        if audit_warning:
            warn(audit_warning)
        named = objects_named(store, registry, cut, linked_ids(report))
        before, after = cut.before, TenantState.of([*cut.after, *named], cut.after.types)
    else:
        label, commit, against_types = resolve_reference(store, against)
        with parsed_once():  # a file both sides hold is one value: found equal without being parsed
            before = load_source(store, registry, source)
            after = state_at(store, registry, commit, against_types)
        report = compare(before, after, label)
    view = build_view(report, display_names(report, before, after), attribution)
    emit(render_report(view, output_format, colour=output is None and use_colour()), output)
    add_to_job_summary(render_markdown(view))
    if not report.empty:
        ctx.exit(ExitCode.CHANGES)
