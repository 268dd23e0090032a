"""The command line: the only module that prints, and the one boundary that maps errors to exit codes."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import click
import httpx
from click.core import ParameterSource

from entra_gitops import __version__, canonical
from entra_gitops.apply import (
    ApplyOutcome,
    Journal,
    PlanFileError,
    Status,
    UnsafePlanError,
    apply_plan,
    history_record,
    journal_path,
    pending_from_journal,
    read_plan_file,
)
from entra_gitops.cli_options import repo_option
from entra_gitops.cli_workflow import drift_command, init_command, permissions_command
from entra_gitops.config import CONFIG_FILE, DEFAULT_CONFIG_TEXT, Config, load_config
from entra_gitops.diff import ReportScope, difference_report
from entra_gitops.errors import ConfigError, EntraGitopsError, ExitCode
from entra_gitops.github import error_annotation, running_in_actions, summary_path
from entra_gitops.gitstore import StateRepo
from entra_gitops.graph.auth import AuthMethod, AuthSettings
from entra_gitops.graph.client import DEFAULT_GRAPH_URL, GraphClient, GraphStats, connect
from entra_gitops.layout import STATE_DIR
from entra_gitops.lock import clear, exclusive
from entra_gitops.plan import Plan, build_plan, plan_document
from entra_gitops.registry import Registry, ResourceType, default_registry
from entra_gitops.render.jsonout import render_json
from entra_gitops.render.markdown import render_markdown
from entra_gitops.render.plan import render_plan_markdown, render_plan_text
from entra_gitops.render.text import render_text
from entra_gitops.render.view import ReportView, build_view, display_names
from entra_gitops.safety import check_plan
from entra_gitops.snapshot import SnapshotOutcome, take_snapshot
from entra_gitops.sources import backup_state, live_state, resolve_reference, state_at
from entra_gitops.state import TenantState

LOCAL_URL = "http://127.0.0.1/v1.0"
HISTORY_DIR = "history"
T = TypeVar("T")


def graph_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of every command that talks to Graph: where, and how to sign in."""
    options = [
        click.option(
            "--graph-url",
            envvar="ENTRA_GITOPS_GRAPH_URL",
            default=DEFAULT_GRAPH_URL,
            show_default=True,
            help="Graph v1.0 base URL; a loopback URL (the emulator) signs in with a local token. "
            "Env: ENTRA_GITOPS_GRAPH_URL.",
        ),
        click.option(
            "--auth",
            "auth_method",
            type=click.Choice([m.value for m in AuthMethod]),
            default=None,
            help="How to sign in. Default: GitHub OIDC inside Actions, a client secret or certificate when "
            "configured, else DefaultAzureCredential. Env: ENTRA_GITOPS_AUTH.",
        ),
        click.option("--tenant-id", default=None, help="Directory (tenant) id. Env: AZURE_TENANT_ID."),
        click.option("--client-id", default=None, help="Application (client) id. Env: AZURE_CLIENT_ID."),
        click.option(
            "--certificate-path",
            type=click.Path(dir_okay=False),
            default=None,
            help="PEM or PKCS12 certificate for --auth certificate. Env: AZURE_CLIENT_CERTIFICATE_PATH. "
            "A client secret is read only from AZURE_CLIENT_SECRET, never from a flag.",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 64),
            default=8,
            show_default=True,
            help="Requests in flight at once.",
        ),
    ]

    @functools.wraps(command)
    def with_graph(
        *args: Any,
        graph_url: str,
        auth_method: str | None,
        tenant_id: str | None,
        client_id: str | None,
        certificate_path: str | None,
        concurrency: int,
        **kwargs: Any,
    ) -> Any:
        chosen = click.get_current_context().get_parameter_source("graph_url") is not ParameterSource.DEFAULT
        graph = GraphOptions(graph_url, chosen, auth_method, tenant_id, client_id, certificate_path, concurrency)
        return command(*args, graph=graph, **kwargs)

    for option in reversed(options):
        with_graph = option(with_graph)
    return with_graph


class GraphOptions(NamedTuple):
    """Where Graph is and how to sign in, as the shared options said (the repository's config fills gaps)."""

    url: str
    url_chosen: bool
    auth_method: str | None
    tenant_id: str | None
    client_id: str | None
    certificate_path: str | None
    concurrency: int

    def connect(self, config: Config | None = None) -> GraphClient:
        """A client for these options; an unset URL or tenant comes from entra-gitops.yaml when it has one."""
        url = config.graph_url if config and config.graph_url and not self.url_chosen else self.url
        settings = AuthSettings.from_env(
            method=AuthMethod(self.auth_method) if self.auth_method else None,
            tenant_id=self.tenant_id or (config.tenant_id if config else None),
            client_id=self.client_id,
            certificate_path=self.certificate_path,
        )
        return connect(url, auth=settings, concurrency=self.concurrency)


def describe_stats(stats: GraphStats, seconds: float) -> str:
    """One line on what a run cost Graph."""
    return (
        f"{stats.requests} requests, {stats.resource_units} resource units, {stats.retries} retries "
        f"({stats.throttled} throttled), {stats.bytes_read / 1024:.0f} KiB in {seconds:.1f} s"
    )


class Commands(click.Group):
    """The command group and the one error boundary: a user-facing error is one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EntraGitopsError as err:
            if (ctx.obj or {}).get("debug"):
                raise
            click.echo(f"error: {err}", err=True)
            if running_in_actions():
                click.echo(error_annotation(str(err)))
            ctx.exit(err.exit_code)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="entra-gitops")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Keep a Microsoft Entra tenant's configuration as reviewed, versioned files.

    \b
    Start here:
      entra-gitops demo                      everything, against a built-in Graph emulator
      entra-gitops snapshot --repo DIR       back up a tenant into a git repository
      entra-gitops diff --repo DIR           what changed since the latest backup
      entra-gitops emulator --seed demo      a local Graph to point any client at
    """
    ctx.obj = {"debug": debug}


@cli.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Loopback address to listen on (never a public one)."
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port; 0 picks a free one."
)
@click.option(
    "--seed",
    default="demo",
    show_default=True,
    help="'demo', a seed file (.json/.yaml in Graph's shapes), or 'synthetic:users=N,groups=N,apps=N,...'.",
)
@click.option(
    "--latency-ms", type=click.IntRange(0, 60000), default=0, show_default=True, help="Delay added to every response."
)
@click.option(
    "--faults", default="", help="Inject failures, e.g. '429,every=5,retry-after=none;503,first=2,path=users'."
)
@click.option(
    "--throttle", is_flag=True, help="Enforce Graph's documented limits (resource units, writes, Conditional Access)."
)
@click.option(
    "--throttle-scale",
    type=click.FloatRange(0.001, 1000),
    default=1.0,
    show_default=True,
    help="Multiply every enforced limit.",
)
def emulator(
    host: str, port: int, seed: str, latency_ms: int, faults: str, throttle: bool, throttle_scale: float
) -> None:
    """Serve a local Microsoft Graph v1.0 emulator until interrupted.

    It prints its base URL when ready; pass that URL as --graph-url to entra-gitops or to any
    Graph client (it accepts any bearer token). The tenant lives in memory and starts from --seed.
    """
    from entra_gitops.emulator import create_emulator
    from entra_gitops.emulator.server import require_loopback, serve

    require_loopback(host)
    app = create_emulator(seed, throttle=throttle, throttle_scale=throttle_scale, faults=faults, latency_ms=latency_ms)
    counts = ", ".join(
        f"{app.tenant.count(t)} {t.folder}" for t in app.registry if not t.singleton and t.parent is None
    )
    click.echo(f"Seeded tenant {app.tenant.tenant_id}: {counts}.", err=True)

    def ready(url: str) -> None:
        click.echo(url)
        click.echo(f"Graph emulator listening; try: entra-gitops demo --graph-url {url}   (Ctrl+C stops)", err=True)
        sys.stdout.flush()

    try:
        serve(app, host, port, ready)
    except KeyboardInterrupt:
        click.echo("Stopped.", err=True)


class ReadProgress:
    """A one-line running count of objects read, on a terminal only (scheduled jobs get the summary)."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.counts: dict[str, int] = {}
        self.last = 0.0

    def __call__(self, name: str, count: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + count
        now = time.monotonic()
        if self.enabled and now - self.last > 0.1:
            self.last = now
            total = sum(self.counts.values())
            click.echo(f"\r  reading: {total} objects ({name})\x1b[K", nl=False, err=True)

    def done(self) -> None:
        if self.enabled and self.counts:
            click.echo("\r\x1b[K", nl=False, err=True)


def snapshot_report(outcome: SnapshotOutcome, elapsed: float, registry: Registry) -> list[str]:
    """The summary a person reads after a snapshot."""
    backup = outcome.backup
    lines = []
    if outcome.created_commit:
        lines.append(f"Backup {backup.name} on new commit {backup.commit[:10]}.")
    else:
        lines.append(f"Backup {backup.name} on commit {backup.commit[:10]}: nothing changed since the last snapshot.")
    width = max(len(n) for n in registry.names)
    lines.append(f"  {'type':<{width}}  {'objects':>7}  {'deleted':>7}  changed files")
    for name in sorted(backup.counts):
        added, modified, removed = outcome.changes_by_type.get(name, (0, 0, 0))
        changed = f"+{added} ~{modified} -{removed}" if added or modified or removed else "-"
        lines.append(f"  {name:<{width}}  {backup.counts[name]:>7}  {backup.deleted.get(name, 0):>7}  {changed}")
    if not backup.complete:
        lines.append("This backup covers only the types asked for (--type), so it is marked incomplete.")
    for redaction in outcome.redactions:
        lines.append(
            f"warning: redacted a value that looked like a client secret: {redaction.type_name} "
            f"{redaction.object_id} {redaction.path}"
        )
    if outcome.pruned:
        lines.append(f"Retention removed {len(outcome.pruned)} older backup tag(s): {', '.join(outcome.pruned)}.")
    lines.append(f"Read with {describe_stats(outcome.stats, elapsed)}.")
    return lines


@cli.command()
@graph_options
@repo_option
@click.option(
    "--type",
    "type_names",
    multiple=True,
    metavar="TYPE",
    help="Only this resource type (repeatable); such a backup is marked incomplete. Default: every type.",
)
def snapshot(graph: GraphOptions, repo: Path, type_names: tuple[str, ...]) -> None:
    """Read the tenant and commit it to tenant-state/, tagged as backup/<UTC time>.

    Every type in scope is read first (live objects, soft-deleted objects, links); only when all
    reads succeeded are the files written, committed and tagged. An unchanged tenant gets a new tag
    on the same commit. Older backup tags beyond `retention` (entra-gitops.yaml, default 5) are
    removed; their commits stay in history. A missing repository is created.

    \b
    Examples:
      entra-gitops snapshot --repo ./tenant
      entra-gitops snapshot --graph-url http://127.0.0.1:8080/v1.0 --type user --type group
    """
    registry = default_registry()
    types = registry.select(list(type_names))
    store = StateRepo.open(repo, create=True, initial_files={CONFIG_FILE: DEFAULT_CONFIG_TEXT.encode()})
    config = load_config(store.root)
    progress = ReadProgress()

    async def run() -> SnapshotOutcome:
        async with graph.connect(config) as client:
            return await take_snapshot(client, store, registry, types, config, utc_now(), progress)

    started = time.monotonic()
    try:
        with exclusive(Path(store.repo.git_dir), "snapshot"):
            outcome = asyncio.run(run())
    finally:
        progress.done()
    for line in snapshot_report(outcome, time.monotonic() - started, registry):
        click.echo(line)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@cli.command()
@repo_option
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def backups(repo: Path, output_format: str) -> None:
    """List the backups in a state repository, newest first."""
    store = StateRepo.open(repo)
    found = store.backups()
    if output_format == "json":
        rows = [
            {
                "id": b.id,
                "tag": b.name,
                "time": b.time.isoformat().replace("+00:00", "Z"),
                "commit": b.commit,
                "tenant": b.tenant,
                "complete": b.complete,
                "counts": dict(b.counts),
                "deleted": dict(b.deleted),
            }
            for b in found
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    if not found:
        click.echo(f"No backups in {store.root} yet: run 'entra-gitops snapshot --repo {repo}'.")
        return
    click.echo(f"{'backup':<17}  {'time (UTC)':<19}  {'commit':<10}  {'objects':>7}  complete")
    for b in found:
        when = b.time.strftime("%Y-%m-%d %H:%M:%S")
        click.echo(
            f"{b.id:<17}  {when:<19}  {b.commit[:10]:<10}  {sum(b.counts.values()):>7}  {'yes' if b.complete else 'no'}"
        )


def read_live(graph: GraphOptions, config: Config, registry: Registry, types: tuple[ResourceType, ...]) -> TenantState:
    """The live tenant's state for `types`, with the progress line on a terminal."""
    progress = ReadProgress()

    async def run() -> TenantState:
        async with graph.connect(config) as client:
            return await live_state(client, registry, types, progress)

    try:
        return asyncio.run(run())
    finally:
        progress.done()


REPORT_FORMATS = ("text", "markdown", "json", "html")


def render_report(view: ReportView, output_format: str, colour: bool) -> str:
    """The report in the asked format; every format is made from the same view model."""
    if output_format == "markdown":
        return render_markdown(view)
    if output_format == "json":
        return render_json(view)
    if output_format == "html":
        from entra_gitops.render.html import render_html

        return render_html(view)
    return render_text(view, colour=colour)


def add_to_job_summary(markdown: str) -> None:
    """Append a rendering to the GitHub Actions job summary, when running there."""
    path = summary_path()
    if path is not None:
        with path.open("a", encoding="utf-8") as summary:
            summary.write(markdown + "\n")


def emit(text: str, output: Path | None) -> None:
    """Write a rendering to --output, or to standard output."""
    if output is None:
        click.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    click.echo(f"Wrote {output}.", err=True)


@cli.command("diff")
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
) -> None:
    """Compare a backup with the live tenant (or another backup or commit), per property and per link.

    Every changed object is classified (created after the backup, modified, soft-deleted,
    restored after the backup, permanently deleted, changed on-premises) with the recovery action
    it would get, and every changed property says whether recovery can write it back and why not.
    Exit code 0: no differences in scope; 2: differences; 1: error.

    \b
    Examples:
      entra-gitops diff                                   latest backup against the live tenant
      entra-gitops diff --against 20261120T230000Z        two backups, offline
      entra-gitops diff --type conditionalAccessPolicy --format markdown --output report.md
    """
    registry = default_registry()
    types = registry.select(list(type_names))
    store = StateRepo.open(repo)
    config = load_config(store.root)
    backup = store.resolve_backup(backup_id)
    before = backup_state(store, registry, backup)
    if against == "live":
        after = read_live(graph, config, registry, types)
        label = "the live tenant"
    else:
        label, commit, against_types = resolve_reference(store, against)
        after = state_at(store, registry, commit, against_types)
    scope = ReportScope(tuple(type_names), tuple(object_ids))
    report = difference_report(registry, before, after, backup_name=backup.name, against_name=label, scope=scope)
    view = build_view(report, display_names(before, after))
    emit(render_report(view, output_format, colour=output is None and sys.stdout.isatty()), output)
    add_to_job_summary(render_markdown(view))
    if not report.empty:
        ctx.exit(ExitCode.CHANGES)


def tenant_of(*states: TenantState) -> str | None:
    """The tenant id: the organization object's id in the first state that has one."""
    for state in states:
        organization = state.of_type("organization")
        if organization:
            return organization[0].id
    return None


@cli.command("plan")
@graph_options
@repo_option
@click.option("--backup", "backup_id", default="latest", show_default=True, help="The backup to recover to.")
@click.option(
    "--desired",
    metavar="REF",
    default=None,
    help="Plan towards the tenant-state/ files of this commit (a branch, HEAD, a pull request's head) "
    "instead of a backup: for reviewed edits of the files.",
)
@click.option("--type", "type_names", multiple=True, metavar="TYPE", help="Only this resource type (repeatable).")
@click.option("--id", "object_ids", multiple=True, metavar="OBJECT_ID", help="Only this object (repeatable).")
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="Save the plan file here.")
@click.option(
    "--format", "output_format", type=click.Choice(("text", "markdown", "json")), default="text", show_default=True
)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when the plan has writes, 0 when it has none.")
@click.pass_context
def plan_command(
    ctx: click.Context,
    graph: GraphOptions,
    repo: Path,
    backup_id: str,
    desired: str | None,
    type_names: tuple[str, ...],
    object_ids: tuple[str, ...],
    out: Path | None,
    output_format: str,
    detailed_exitcode: bool,
) -> None:
    """Compute the Graph writes that bring the live tenant back to a backup, and save them for review.

    The plan restores soft-deleted objects, writes changed `recover` properties and links back,
    soft-deletes objects created (or restored) after the backup, and re-creates app role
    assignments and admin-consented grants. Synchronised and permanently deleted objects are listed
    as not recoverable. The plan file records the backup, the scope, every write with the live
    object's fingerprint, and a checksum: `entra-gitops apply PLAN.json` executes exactly that.

    \b
    Examples:
      entra-gitops plan -o plan.json                       everything back to the latest backup
      entra-gitops plan --id 6f1d0c1e-... -o plan.json     one object, as it was
      entra-gitops plan --desired HEAD -o plan.json        towards hand-edited files (a pull request)
    """
    registry = default_registry()
    types = registry.select(list(type_names))
    store = StateRepo.open(repo)
    config = load_config(store.root)
    if desired is not None:
        if ctx.get_parameter_source("backup_id") is not ParameterSource.DEFAULT:
            raise click.UsageError("--desired and --backup name two different targets: give one")
        target, target_commit, target_types = resolve_reference(store, desired)
        before = state_at(store, registry, target_commit, target_types)
    else:
        backup = store.resolve_backup(backup_id)
        target, target_commit = backup.name, backup.commit
        before = backup_state(store, registry, backup)
    live = read_live(graph, config, registry, types)
    scope = ReportScope(tuple(type_names), tuple(object_ids))
    report = difference_report(registry, before, live, backup_name=target, against_name="the live tenant", scope=scope)
    plan = build_plan(
        registry,
        report,
        before,
        live,
        tool=f"entra-gitops {__version__}",
        tenant=tenant_of(live, before),
        backup_commit=target_commit,
        created=utc_now().isoformat().replace("+00:00", "Z"),
    )
    refusals = check_plan(plan, before.counts(), config.safety)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(plan_document(plan), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if output_format == "json":
        click.echo(json.dumps(plan_document(plan), indent=2, ensure_ascii=False))
    elif output_format == "markdown":
        click.echo(render_plan_markdown(plan, refusals), nl=False)
    else:
        click.echo(render_plan_text(plan, refusals), nl=False)
    add_to_job_summary(render_plan_markdown(plan, refusals))
    if out is not None:
        click.echo(f"Saved the plan to {out}. Review it, then: entra-gitops apply {out}", err=True)
    if detailed_exitcode and not plan.empty:
        ctx.exit(ExitCode.CHANGES)


@cli.command("apply")
@click.argument("plan_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@graph_options
@repo_option
@click.option("--auto-approve", is_flag=True, help="Do not ask for 'yes' first (for reviewed plans in pipelines).")
@click.option(
    "--force", is_flag=True, help="Apply although the plan crosses a safety threshold or touches a protected object."
)
@click.option(
    "--skip-stale", is_flag=True, help="Apply the writes for objects that did not change since the plan; skip the rest."
)
@click.option(
    "--write-rate", type=click.FloatRange(0.1, 1000), default=20.0, show_default=True, help="Writes per second at most."
)
def apply_command(
    plan_file: Path,
    graph: GraphOptions,
    repo: Path,
    auto_approve: bool,
    force: bool,
    skip_stale: bool,
    write_rate: float,
) -> None:
    """Execute a reviewed plan file, and nothing else.

    The plan's checksum, format and tenant are checked; the repository's lock is taken (one
    snapshot or recovery at a time); every target is re-read, and the whole plan is refused
    (exit 4) when any target changed since the plan was made, unless --skip-stale. Writes run in
    dependency order within Graph's write limits, each journalled before the next, so an
    interrupted apply can be rerun and continues where it stopped. Each object is verified
    afterwards, and the outcome is committed to recovery history (entra-gitops history).
    Exit 0 applied, 1 failed or partly applied, 3 refused as unsafe, 4 stale.
    """
    registry = default_registry()
    plan, _ = read_plan_file(plan_file)
    store = StateRepo.open(repo)
    config = load_config(store.root)
    # The commit, not the tag: retention may have removed the tag since, never the commit.
    backup = state_at(store, registry, store.resolve(plan.backup_commit))
    click.echo(render_plan_text(plan), nl=False)
    if plan.empty:
        click.echo("Nothing to apply.")
        return
    refusals = check_plan(plan, backup.counts(), config.safety)
    if refusals and not force:
        raise UnsafePlanError(
            "refused as unsafe: " + "; ".join(r.message for r in refusals),
            hint="review the plan; --force applies it anyway",
        )
    if not auto_approve:
        if not sys.stdin.isatty():
            raise ConfigError(
                "apply asks for 'yes' first, and nobody can answer here", hint="pass --auto-approve for a reviewed plan"
            )
        if (
            click.prompt(
                "Apply these writes to the live tenant? Only 'yes' is accepted", default="", show_default=False
            )
            != "yes"
        ):
            click.echo("Apply cancelled; nothing was written.")
            return
    with journal_for(store, plan) as journal:
        progress = pending_from_journal(plan, journal)
        if progress["done"] == len(plan.writes):
            if plan.checksum in recorded_plans(store):
                click.echo("This plan was applied completely already (see entra-gitops history).")
                return
            # Every write is done but the run died before its history record: record it now.
            times = [e["time"] for e in journal.entries]
            finished = ApplyOutcome(written=list(range(len(plan.writes))), started=min(times), finished=max(times))
            click.echo(
                f"This plan's writes were all done already; recorded in {record_history(store, plan, finished)[0]}."
            )
            return
        if progress["done"] or progress["inDoubt"] or progress["failed"]:
            click.echo(
                f"Continuing an earlier apply of this plan: {progress['done']} written, {progress['inDoubt']} in doubt "
                f"(checked before anything is resent), {progress['failed']} failed."
            )

        async def run() -> ApplyOutcome:
            async with graph.connect(config) as client:
                if plan.tenant:
                    organization = await client.list_all("organization", {"$select": "id"})
                    live_tenant = organization[0]["id"] if organization else None
                    if live_tenant and live_tenant != plan.tenant:
                        raise PlanFileError(
                            f"{plan_file}: the plan is for tenant {plan.tenant}, but Graph is tenant {live_tenant}"
                        )
                return await apply_plan(
                    client, registry, plan, journal, backup, skip_stale=skip_stale, write_rate=write_rate
                )

        outcome = asyncio.run(run())
        path, record = record_history(store, plan, outcome)
    click.echo(
        f"Apply {outcome.status.value}: {record['written']} of {len(plan.writes)} write(s) done"
        + (f", {len(outcome.stale)} stale object(s) skipped" if outcome.stale else "")
        + (f", {len(outcome.failures)} failed" if outcome.failures else "")
        + f". Recorded in {path}."
    )
    for failure in outcome.failures:
        click.echo(f"  failed: {failure['method']} {failure['path']}: {failure['message']}", err=True)
    for warning in outcome.warnings:
        click.echo(f"  warning: {warning}", err=True)
    if outcome.status in (Status.FAILED, Status.PARTIALLY_APPLIED):
        raise click.exceptions.Exit(ExitCode.ERROR)


@contextmanager
def journal_for(store: StateRepo, plan: Plan) -> Iterator[Journal]:
    """The plan's journal, held under the repository's lock for the whole apply (history commit included)."""
    git_dir = Path(store.repo.git_dir)
    with exclusive(git_dir, "apply"):
        journal = Journal(journal_path(git_dir, plan))
        try:
            yield journal
        finally:
            journal.close()


def record_history(store: StateRepo, plan: Plan, outcome: ApplyOutcome) -> tuple[str, dict[str, Any]]:
    """Commit one apply's history record to the repository; returns its path and the record."""
    record = history_record(plan, outcome)
    path = f"{HISTORY_DIR}/{record['id']}.yaml"
    store.commit_files({path: canonical.dump(record)}, f"Recovery {record['status']}: {plan.backup}\n", utc_now())
    return path, record


def history_records(store: StateRepo) -> list[dict[str, Any]]:
    """Every recovery history record at HEAD, newest first."""
    records = [canonical.load(content, path) for path, content in store.read_files("HEAD", HISTORY_DIR).items()]
    return sorted(records, key=lambda r: str(r.get("started")), reverse=True)


def recorded_plans(store: StateRepo) -> set[str]:
    return {str(r.get("planChecksum")) for r in history_records(store)}


@cli.command("history")
@repo_option
@click.option("--format", "output_format", type=click.Choice(("text", "json")), default="text", show_default=True)
def history_command(repo: Path, output_format: str) -> None:
    """Recovery history, newest first: every apply's status, backup, times and failures (kept in git)."""
    store = StateRepo.open(repo)
    records = history_records(store)
    if output_format == "json":
        click.echo(json.dumps(records, indent=2, ensure_ascii=False))
        return
    if not records:
        click.echo("No recoveries recorded yet.")
        return
    for r in records:
        click.echo(
            f"{r.get('started')}  {r.get('status'):<22} to {r.get('backup')}  "
            f"{r.get('written')}/{r.get('writes')} writes, {len(r.get('failures') or [])} failed  ({r.get('id')})"
        )


@cli.command("unlock")
@repo_option
def unlock_command(repo: Path) -> None:
    """Clear a lock left behind by a snapshot or apply that died (check that it really did)."""
    store = StateRepo.open(repo)
    holder = clear(Path(store.repo.git_dir))
    click.echo(f"Cleared the lock held by {holder}." if holder else "There was no lock.")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check state files: strict YAML, their type's schema, the id in the file name, canonical form.

    PATHS are files or folders (default: tenant-state/ here). Every problem is printed as
    file:line:column: message, and the exit code is 1 when there is any. This is the hook a state
    repository's pre-commit runs.
    """
    from entra_gitops.validate import check_file

    registry = default_registry()
    files = sorted(_state_files(paths or (Path(STATE_DIR),)))
    problems = []
    for file in files:
        relative = _state_relative(file)
        problems.extend(check_file(registry, relative, file.read_bytes()))
    for problem in problems:
        click.echo(str(problem), err=True)
        if running_in_actions():
            click.echo(error_annotation(problem.message, file=problem.path, line=problem.line, column=problem.column))
    if problems:
        click.echo(
            f"{len(problems)} problem(s) in {len({p.path for p in problems})} of {len(files)} file(s).", err=True
        )
        raise click.exceptions.Exit(ExitCode.ERROR)
    click.echo(f"{len(files)} state file(s) valid.")


def _state_files(paths: tuple[Path, ...]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found.extend(sorted(path.rglob("*.yaml")) if path.is_dir() else [path])
    return found


def _state_relative(file: Path) -> str:
    """The path from tenant-state/ on, as the layout names it, wherever the repository is."""
    parts = file.resolve().parts
    if STATE_DIR in parts:
        return "/".join(parts[len(parts) - 1 - parts[::-1].index(STATE_DIR) :])
    return file.as_posix()


@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", default="demo", show_default=True, help="Seed of the in-process emulator.")
def demo(directory: Path | None, seed: str) -> None:
    """The whole story against a built-in Graph emulator: snapshot, drift, snapshot, review.

    Nothing leaves this machine: the emulator runs in process and the state repository is created
    in DIRECTORY (a new temporary directory when omitted).
    """
    from entra_gitops.demo import make_drift
    from entra_gitops.emulator import create_emulator

    registry = default_registry()
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="entra-gitops-demo-"))
    if directory.exists() and any(directory.iterdir()):
        raise ConfigError(f"{directory} is not empty", hint="give the demo a new or empty directory")

    def step(text: str) -> None:
        click.echo()
        click.secho(f"==> {text}", bold=True)

    step(f"Starting the built-in Graph emulator in process with the {seed!r} tenant.")
    transport = httpx.ASGITransport(app=create_emulator(seed))
    step(f"Creating a state repository in {directory}.")
    store = StateRepo.open(directory, create=True, initial_files={CONFIG_FILE: DEFAULT_CONFIG_TEXT.encode()})
    config = load_config(store.root)

    def against_emulator(work: Callable[[GraphClient], Awaitable[T]]) -> T:
        async def go() -> T:
            async with connect(LOCAL_URL, transport=transport) as client:
                return await work(client)

        return asyncio.run(go())

    def snapshot_once() -> SnapshotOutcome:
        started = time.monotonic()
        outcome = against_emulator(lambda c: take_snapshot(c, store, registry, tuple(registry), config, utc_now()))
        for line in snapshot_report(outcome, time.monotonic() - started, registry):
            click.echo(line)
        return outcome

    step("Taking the first snapshot: reading every resource type and committing tenant-state/.")
    first = snapshot_once()
    step("Making drift through Graph, as an administrator's mistakes would arrive:")
    for change in against_emulator(make_drift):
        click.echo(f"  - {change.description}")
    step("Taking the second snapshot.")
    second = snapshot_once()

    step("The backups in the repository (entra-gitops backups):")
    for b in store.backups():
        click.echo(f"  {b.name}  commit {b.commit[:10]}  {sum(b.counts.values())} objects")

    step(f"What changed between the two backups, as git sees it (git diff {first.backup.name} {second.backup.name}):")
    click.echo(store.diff_text(first.backup.name, second.backup.name))

    step(
        f"The difference report: the first backup against the live tenant (entra-gitops diff --backup {first.backup.id}):"
    )
    before = backup_state(store, registry, first.backup)
    after = against_emulator(lambda c: live_state(c, registry, tuple(registry)))
    report = difference_report(registry, before, after, backup_name=first.backup.name, against_name="the live tenant")
    click.echo(render_text(build_view(report, display_names(before, after)), colour=sys.stdout.isatty()), nl=False)

    step(
        f"Planning the recovery back to {first.backup.name} (entra-gitops plan --backup {first.backup.id} -o plan.json):"
    )
    plan = build_plan(
        registry,
        report,
        before,
        after,
        tool=f"entra-gitops {__version__}",
        tenant=tenant_of(after, before),
        backup_commit=first.backup.commit,
        created=utc_now().isoformat().replace("+00:00", "Z"),
    )
    plan_file = directory / "plan.json"
    plan_file.write_text(json.dumps(plan_document(plan), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    click.echo(render_plan_text(plan), nl=False)

    step("Applying exactly that plan (entra-gitops apply plan.json --auto-approve):")
    with journal_for(store, plan) as journal:
        outcome = against_emulator(lambda c: apply_plan(c, registry, plan, journal, before, verify_delay=0.2))
        record_history(store, plan, outcome)
    written = len(outcome.written) + len(outcome.confirmed)
    click.echo(
        f"Apply {outcome.status.value}: {written} of {len(plan.writes)} write(s) done, recorded in recovery history."
    )

    step(f"A fresh difference report against {first.backup.name} (entra-gitops diff --backup {first.backup.id}):")
    now = against_emulator(lambda c: live_state(c, registry, tuple(registry)))
    clean = difference_report(registry, before, now, backup_name=first.backup.name, against_name="the live tenant")
    click.echo(render_text(build_view(clean, display_names(before, now)), colour=sys.stdout.isatty()), nl=False)
    step(f"Done. Explore it yourself: cd {directory} && git log --stat && entra-gitops history")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. Usage errors exit 1, because 2 means "differences present" for every command."""
    try:
        code = cli.main(args=argv, prog_name="entra-gitops", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        code = ExitCode.ERROR
    except click.ClickException as err:
        err.show()
        code = ExitCode.ERROR
    except click.exceptions.Exit as done:
        code = done.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        code = 130
    sys.exit(code or ExitCode.OK)


# The team-workflow commands live in their own module; registering them here keeps one CLI entry point.
cli.add_command(init_command)
cli.add_command(permissions_command)
cli.add_command(drift_command)
