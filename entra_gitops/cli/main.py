"""The command line: the only module that prints, and the one boundary that maps errors to exit codes."""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import functools
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import click
import git
import httpx
from azure.core.exceptions import AzureError
from click.core import ParameterSource

from entra_gitops import __version__
from entra_gitops.cli.options import repo_option
from entra_gitops.cli.workflow import drift_command, init_command, permissions_command
from entra_gitops.graph.auth import AuthMethod, AuthSettings, sign_in_failure
from entra_gitops.graph.client import DEFAULT_GRAPH_URL, GraphClient, RetryPolicy, connect
from entra_gitops.model import canonical
from entra_gitops.model.errors import (
    ConfigError,
    EntraGitopsError,
    ExitCode,
    GraphError,
    OutputError,
    StateFileError,
    describe_git_error,
    describe_os_error,
)
from entra_gitops.model.ids import fold_id, utc_text
from entra_gitops.model.reads import GraphStats
from entra_gitops.model.registry import Registry, default_registry
from entra_gitops.model.settings import CONFIG_FILE, DEFAULT_CONFIG_TEXT, Config, load_config
from entra_gitops.model.tenant import TenantState
from entra_gitops.model.textsafe import printable
from entra_gitops.recovery.apply import (
    ApplyOutcome,
    Journal,
    Status,
    UnsafePlanError,
    apply_plan,
    history_record,
    journal_path,
    pending_from_journal,
    read_live_for,
    read_plan_file,
)
from entra_gitops.recovery.plan import Plan, PlanOptions, plan_json
from entra_gitops.recovery.render import render_plan_markdown, render_plan_text
from entra_gitops.recovery.safety import Refusal
from entra_gitops.recovery.session import (
    check_for_apply,
    check_ids,
    check_repository_tenant,
    make_plan,
    plan_source,
    uncommitted_edits,
)
from entra_gitops.report.diff import ReportScope, difference_report
from entra_gitops.report.jsonout import render_json
from entra_gitops.report.markdown import render_markdown
from entra_gitops.report.text import render_text
from entra_gitops.report.view import ReportView, build_view, display_names
from entra_gitops.state import signals
from entra_gitops.state.gitstore import StateRepo
from entra_gitops.state.layout import STATE_DIR
from entra_gitops.state.lock import clear, exclusive
from entra_gitops.state.paths import UnsafeIdError, validate_object_id
from entra_gitops.state.snapshot import SnapshotOutcome, take_snapshot
from entra_gitops.state.sources import backup_source, live_state, load_source, resolve_reference, state_at
from entra_gitops.workflow.github import error_annotation, running_in_actions, summary_path

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
        click.option(
            "--max-wait",
            type=click.FloatRange(0, 3600),
            default=120.0,
            show_default=True,
            help="Longest Retry-After to wait through; Graph asking for longer fails the run instead.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(1, 7 * 86400),
            default=None,
            help="Give up after this many seconds of talking to Graph (an apply's journal lets a rerun continue).",
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
        max_wait: float,
        timeout: float | None,
        **kwargs: Any,
    ) -> Any:
        chosen = click.get_current_context().get_parameter_source("graph_url") is not ParameterSource.DEFAULT
        deadline = time.monotonic() + timeout if timeout else None
        graph = GraphOptions(
            graph_url, chosen, auth_method, tenant_id, client_id, certificate_path, concurrency, max_wait, deadline,
            timeout,
        )  # fmt: skip
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
    max_wait: float = 120.0
    deadline: float | None = None  # time.monotonic() by which the command gives up talking to Graph
    timeout: float | None = None

    def connect(self, config: Config | None = None) -> GraphClient:
        """A client for these options; an unset URL or tenant comes from entra-gitops.yaml when it has one."""
        url = config.graph_url if config and config.graph_url and not self.url_chosen else self.url
        settings = AuthSettings.from_env(
            method=AuthMethod(self.auth_method) if self.auth_method else None,
            tenant_id=self.tenant_id or (config.tenant_id if config else None),
            client_id=self.client_id,
            certificate_path=self.certificate_path,
        )
        client = connect(url, auth=settings, concurrency=self.concurrency, retry=RetryPolicy(max_wait=self.max_wait))
        client.on_wait = warn
        return client


def describe_stats(stats: GraphStats, seconds: float) -> str:
    """One line on what a run cost Graph."""
    return (
        f"{stats.requests} requests, {stats.resource_units} resource units, {stats.retries} retries "
        f"({stats.throttled} throttled), {stats.bytes_read / 1024:.0f} KiB in {seconds:.1f} s"
    )


# Libraries that log each failure they raise (azure-identity at WARNING, with tracebacks at DEBUG): the boundary
# says it once instead, unless --debug.
QUIET_LOGGERS = ("azure", "msal")
INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl+C


@contextmanager
def quiet_libraries(debug: bool) -> Iterator[None]:
    """Hold the libraries' loggers at ERROR for the duration (not under --debug), then restore them."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    if not debug:
        for logger in loggers:
            logger.setLevel(max(logger.level, logging.ERROR))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class Commands(click.Group):
    """The command group and the one error boundary: a user-facing error is one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        # Parsed before the group's callback runs, so the loggers are quiet for every command.
        debug = bool(ctx.params.get("debug"))
        with quiet_libraries(debug):
            try:
                return super().invoke(ctx)
            except KeyboardInterrupt as stop:
                # click would make this Abort (exit 1, "Aborted!"): an interrupted run is not a failed one.
                terminated = isinstance(stop, signals.Terminated)
                click.echo(
                    ("Terminated" if terminated else "Interrupted")
                    + ": the repository is as before the run or holds the new backup; an apply continues where it "
                    "stopped when run again.",
                    err=True,
                )
                ctx.exit(signals.EXIT_TERMINATED if terminated else INTERRUPTED)
            except EntraGitopsError as err:
                if debug:
                    raise
                self.fail(ctx, str(err), err.exit_code)
            except git.GitCommandError as err:
                if debug:
                    raise
                self.fail(ctx, describe_git_error(err.command, err.status, err.stderr))
            except (git.InvalidGitRepositoryError, git.NoSuchPathError) as err:
                if debug:
                    raise
                missing = isinstance(err, git.NoSuchPathError)
                self.fail(ctx, f"{err} {'does not exist' if missing else 'is not a git repository'}")
            except OSError as err:
                # A closed pipe (`| head`) is click's to handle quietly.
                if debug or err.errno == errno.EPIPE:
                    raise
                self.fail(ctx, describe_os_error(err))
            except AzureError as err:
                # Only reached by a credential used outside SignIn; its message still never carries the secret.
                if debug:
                    raise
                self.fail(ctx, str(sign_in_failure(None, type(err).__name__, err)))

    @staticmethod
    def fail(ctx: click.Context, message: str, code: int = ExitCode.ERROR) -> None:
        """Say one error line (and its Actions annotation), and exit with `code`."""
        # Messages name objects, and names come from the tenant: nothing in them may act on a terminal.
        click.echo(f"error: {printable(message)}", err=True)
        if running_in_actions():
            click.echo(error_annotation(printable(message)))
        ctx.exit(code)


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
    "--faults",
    default="",
    help="Inject faults: RULE[;RULE...], each an action (STATUS, truncate=N, repeat-skiptoken, expire-token), "
    "delay=SECONDS, or both, with every=N, first=N, p=P, path=GLOB, method=M (and retry-after=N|none, after-commit "
    "with a STATUS), e.g. '429,every=5,retry-after=none;delay=2,path=users*'. See the README's 'Faults and limits'.",
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
    Graph client. Every request needs a bearer token: an opaque one (entra-gitops's local token, or
    'Authorization: Bearer local' with curl) may do everything; an unsigned JWT is held to the
    permissions in its `roles` (or `scp`) claim, as Graph would. The tenant lives in memory and
    starts from --seed.
    """
    from entra_gitops.emulator import create_emulator
    from entra_gitops.emulator.server import listen, serve

    # The port first: a busy one is said before a large synthetic tenant takes its time to seed.
    sock = listen(host, port)
    try:
        app = create_emulator(
            seed, throttle=throttle, throttle_scale=throttle_scale, faults=faults, latency_ms=latency_ms
        )
    except BaseException:
        sock.close()
        raise
    counts = ", ".join(
        f"{app.tenant.count(t)} {t.folder}" for t in app.registry if not t.singleton and t.parent is None
    )
    click.echo(f"Seeded tenant {app.tenant.tenant_id}: {counts}.", err=True)

    def ready(url: str) -> None:
        click.echo(url)
        click.echo(f"Graph emulator listening; try: entra-gitops demo --graph-url {url}   (Ctrl+C stops)", err=True)
        sys.stdout.flush()

    try:
        serve(app, host, port, ready, sock=sock)
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
    lines = [f"Note: {note}." for note in outcome.notes]
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
@click.option(
    "--accept-shrink",
    "accept_shrink",
    multiple=True,
    metavar="TYPE",
    help="Commit the read although TYPE shrank past shrinkGuard (or read empty) against the last complete "
    "backup: for objects that really are gone (repeatable).",
)
def snapshot(graph: GraphOptions, repo: Path, type_names: tuple[str, ...], accept_shrink: tuple[str, ...]) -> None:
    """Read the tenant and commit it to tenant-state/, tagged as backup/<UTC time>.

    Graph must be the tenant the repository holds (tenantId in entra-gitops.yaml; the first snapshot
    records it). Every type in scope is read first (live objects, soft-deleted objects, links); only
    when all reads succeeded are the files written, committed and tagged. A type whose live objects
    shrank by more than shrinkGuard (default half) against the last complete backup is a suspect
    read: no commit, no tag, exit 1, unless --accept-shrink TYPE. An unchanged tenant gets a new tag
    on the same commit. Older backup tags beyond `retention` (default 5) are removed; their commits
    stay in history. A missing repository is created.

    \b
    Examples:
      entra-gitops snapshot --repo ./tenant
      entra-gitops snapshot --graph-url http://127.0.0.1:8080/v1.0 --type user --type group
      entra-gitops snapshot --accept-shrink user          after removing many users on purpose
    Exit 0 backed up, 1 error (nothing committed or tagged).
    """
    registry = default_registry()
    types = registry.select(list(type_names))
    accepted = frozenset(t.name for t in registry.select(list(accept_shrink))) if accept_shrink else frozenset()
    store = StateRepo.open(repo, create=True, initial_files={CONFIG_FILE: DEFAULT_CONFIG_TEXT.encode()})
    config = load_config(store.root)
    started = time.monotonic()
    with exclusive(Path(store.repo.git_dir), "snapshot", notice=warn):
        outcome = with_graph(
            graph,
            config,
            lambda client, progress: take_snapshot(
                client, store, registry, types, config, utc_now(), progress, accepted
            ),
        )
    for line in snapshot_report(outcome, time.monotonic() - started, registry):
        click.echo(line)


def warn(text: str) -> None:
    """A warning line on stderr (tenant text escaped)."""
    click.echo(f"warning: {printable(text)}", err=True)


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
                "time": utc_text(b.time),
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


def with_graph(graph: GraphOptions, config: Config, work: Callable[[GraphClient, ReadProgress], Awaitable[T]]) -> T:
    """Run `work` against Graph with one client, and the progress line on a terminal."""
    progress = ReadProgress()

    async def run() -> T:
        async with graph.connect(config) as client:
            if graph.deadline is None:
                return await work(client, progress)
            try:
                return await asyncio.wait_for(work(client, progress), max(graph.deadline - time.monotonic(), 0.001))
            except TimeoutError:
                raise GraphError(
                    f"gave up after --timeout {graph.timeout:.0f} s: nothing more was read or written",
                    hint="an interrupted apply continues where it stopped when run again",
                ) from None

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
        from entra_gitops.report.html import render_html

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
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as err:
        raise OutputError.of(output, err) from None
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
    source = backup_source(store.resolve_backup(backup_id))
    before = load_source(store, registry, source)
    if against == "live":

        async def read(client: GraphClient, progress: ReadProgress) -> TenantState:
            await check_repository_tenant(client, store, config, registry)
            return await live_state(client, registry, types, progress)

        after = with_graph(graph, config, read)
        label = "the live tenant"
    else:
        label, commit, against_types = resolve_reference(store, against)
        after = state_at(store, registry, commit, against_types)
    scope = ReportScope(tuple(type_names), tuple(object_ids))
    check_ids(scope, before, after, source.label, label)
    report = difference_report(
        registry, before, after, backup_name=source.label, against_name=label, scope=scope, note=source.note
    )
    view = build_view(report, display_names(before, after))
    emit(render_report(view, output_format, colour=output is None and sys.stdout.isatty()), output)
    add_to_job_summary(render_markdown(view))
    if not report.empty:
        ctx.exit(ExitCode.CHANGES)


@cli.command("plan")
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
    allow_delete: bool,
    allow_empty: tuple[str, ...],
    allow_lockout: bool,
    out: Path | None,
    output_format: str,
    detailed_exitcode: bool,
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
    if uncommitted_edits(store, source):
        # Said before Graph is read, so that it is seen even when the plan then fails.
        warn(f"{STATE_DIR}/ has uncommitted edits, which this plan does not include: commit them first")
    scope = ReportScope(tuple(type_names), ids)
    options = PlanOptions(allow_delete, empty_ok)
    checked = with_graph(
        graph,
        config,
        lambda client, progress: make_plan(
            client, store, registry, config, source, scope, options, utc_now(), progress
        ),
    )
    plan, assessment = checked.plan, checked.assessment
    saveable = not (assessment.remaining(force=True, allow_lockout=allow_lockout))
    if out is not None and saveable:
        write_atomically(out, plan_json(plan))
    if output_format == "json":
        click.echo(plan_json(plan), nl=False)
    elif output_format == "markdown":
        click.echo(render_plan_markdown(plan, assessment), nl=False)
    else:
        click.echo(render_plan_text(plan, assessment), nl=False)
    add_to_job_summary(render_plan_markdown(plan, assessment))
    remaining = assessment.remaining(allow_lockout=allow_lockout)
    if out is not None:
        if not saveable:
            click.echo(f"Not saved to {out}: no review can accept this plan as it stands.", err=True)
        elif remaining:
            click.echo(f"Saved the plan to {out}; apply refuses it unless --force.", err=True)
        else:
            click.echo(f"Saved the plan to {out}. Review it, then: entra-gitops apply {out}", err=True)
    if remaining:
        raise unsafe(remaining)
    if detailed_exitcode and not plan.empty:
        ctx.exit(ExitCode.CHANGES)


def unsafe(refusals: tuple[Refusal, ...]) -> UnsafePlanError:
    """The one error every guard's refusal becomes: exit 3, the first reason, and the flags that override."""
    flags = sorted({r.override for r in refusals})
    first = refusals[0]
    more = f" (and {len(refusals) - 1} more, listed above)" if len(refusals) > 1 else ""
    return UnsafePlanError(
        f"refused as unsafe: {first.message}{more}", hint=f"review the plan; to take it anyway: {', '.join(flags)}"
    )


def check_object_id(value: str) -> str:
    """An --id as the files and Graph hold it: a safe object id, GUIDs in lower case."""
    try:
        return fold_id(validate_object_id(value.strip()))
    except UnsafeIdError as err:
        raise click.BadParameter(str(err), param_hint="--id") from None


def write_atomically(path: Path, text: str) -> None:
    """Write a file whole or not at all: a crash never leaves half a plan behind."""
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    failure = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch.write_text(text, encoding="utf-8")
        os.replace(scratch, path)
    except OSError as err:
        failure = OutputError.of(path, err)  # the file asked for, not the scratch file the OS refused
    finally:
        scratch.unlink(missing_ok=True)
    if failure is not None:
        raise failure


@cli.command("apply")
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
def apply_command(
    plan_file: Path,
    graph: GraphOptions,
    repo: Path,
    auto_approve: bool,
    force: bool,
    allow_lockout: bool,
    skip_stale: bool,
    write_rate: float,
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
    Exit 0 applied, 1 failed or partly applied (or the plan cannot be trusted), 3 refused as unsafe, 4 stale.
    """
    registry = default_registry()
    plan, _ = read_plan_file(plan_file)
    store = StateRepo.open(repo)
    config = load_config(store.root)
    with journal_for(store, plan) as journal:
        progress = pending_from_journal(plan, journal)
        if plan.writes and progress["done"] == len(plan.writes):
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
        events = journal.last_events()
        checked = with_graph(
            graph, config, lambda client, _: check_for_apply(client, store, registry, config, plan, events)
        )
        click.echo(render_plan_text(checked.plan, checked.assessment), nl=False)
        if checked.plan.empty:
            click.echo("Nothing to apply.")
            return
        remaining = checked.assessment.remaining(force=force, allow_lockout=allow_lockout)
        if remaining:
            raise unsafe(remaining)
        taken = set(checked.assessment.refusals) - set(remaining)
        overrides = tuple(sorted({r.override for r in taken}))
        if progress["done"] or progress["inDoubt"] or progress["failed"]:
            click.echo(
                f"Continuing an earlier apply of this plan: {progress['done']} written, {progress['inDoubt']} in doubt "
                f"(checked before anything is resent), {progress['failed']} failed."
            )
        if not auto_approve:
            confirm_apply()

        async def run(client: GraphClient, _: ReadProgress) -> ApplyOutcome:
            # After a person answered, the tenant may have moved: read it again for the stale check.
            live = checked.live if auto_approve else await read_live_for(client, registry, checked.plan)
            return await apply_plan(
                client, registry, checked.plan, journal, checked.source, live, skip_stale=skip_stale,
                write_rate=write_rate,
            )  # fmt: skip

        outcome = with_graph(graph, config, run)
        outcome.overrides = overrides
        path, record = record_history(store, checked.plan, outcome)
    click.echo(
        f"Apply {outcome.status.value}: {record['written']} of {len(plan.writes)} write(s) done"
        + (f", {len(outcome.stale)} stale object(s) skipped" if outcome.stale else "")
        + (f", {len(outcome.failures)} failed" if outcome.failures else "")
        + f". Recorded in {path}."
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
        raise click.exceptions.Exit(ExitCode.OK)


@contextmanager
def journal_for(store: StateRepo, plan: Plan) -> Iterator[Journal]:
    """The plan's journal, held under the repository's lock for the whole apply (history commit included)."""
    git_dir = Path(store.repo.git_dir)
    with exclusive(git_dir, "apply", notice=warn):
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
    """Every readable recovery history record at HEAD, newest first; an unreadable one is a warning and skipped."""
    records = []
    for path, content in store.read_files("HEAD", HISTORY_DIR).items():
        if not path.endswith(".yaml"):
            continue
        try:
            records.append(canonical.load(content, path))
        except StateFileError as err:
            # One damaged file must not hide the others, nor block every later apply (which reads them all).
            click.echo(f"warning: skipped {printable(str(err))}: not a readable recovery record", err=True)
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
        # A record edited by hand may lack a field or hold another shape: it is shown as it is, never a crash.
        failures = r.get("failures")
        failed = len(failures) if isinstance(failures, list) else 0
        click.echo(
            printable(
                f"{r.get('started')}  {str(r.get('status')):<22} to {r.get('backup')}  "
                f"{r.get('written')}/{r.get('writes')} writes, {failed} failed  ({r.get('id')})"
            )
        )


@cli.command("unlock")
@repo_option
@click.option(
    "--force",
    "lock_id",
    metavar="LOCK-ID",
    default=None,
    help="Clear the lock with this id although its holder looks alive (the id is in the refusal).",
)
def unlock_command(repo: Path, lock_id: str | None) -> None:
    """Clear the lock of a snapshot or apply that is gone.

    A holder that is alive on this host (or a lock from another host younger than six hours) is
    not cleared: the refusal names its lock id, and `--force LOCK-ID` clears exactly that lock, as
    Terraform's force-unlock does. A lock whose run is gone is also taken over by the next run.

    \b
    Examples:
      entra-gitops unlock
      entra-gitops unlock --force 3f9c2a1b7d4e6f80
    """
    store = StateRepo.open(repo)
    holder = clear(Path(store.repo.git_dir), lock_id)
    click.echo(f"Cleared the lock held by {holder.describe()}." if holder else "There was no lock.")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check state files: strict YAML, their type's schema, the id in the file name, canonical form.

    PATHS are files or folders (default: tenant-state/ here). Every problem is printed as
    file:line:column: message, and the exit code is 1 when there is any. This is the hook a state
    repository's pre-commit runs.
    """
    from entra_gitops.state.validate import check_file

    registry = default_registry()
    if not paths and not Path(STATE_DIR).is_dir():
        raise ConfigError(
            f"no state files found: there is no {STATE_DIR}/ in {Path.cwd()}",
            hint="run validate in a state repository, or give the files or folders to check",
        )
    places = paths or (Path(STATE_DIR),)
    files = sorted(_state_files(places))
    if not files:
        # Nothing checked is not "all valid": a wrong folder must not pass a pre-commit or CI gate.
        raise ConfigError(
            f"no state files (*.yaml) found in {', '.join(str(p) for p in places)}",
            hint="give a state repository's tenant-state/ folder or its files",
        )
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
    from entra_gitops.emulator import create_emulator
    from entra_gitops.workflow.demo import make_drift

    registry = default_registry()
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="entra-gitops-demo-"))
    if directory.exists() and any(directory.iterdir()):
        raise ConfigError(f"{directory} is not empty", hint="give the demo a new or empty directory")

    def step(text: str) -> None:
        click.echo()
        click.secho(f"==> {text}", bold=True)

    step(f"Starting the built-in Graph emulator in process with the {seed!r} tenant.")
    app = create_emulator(seed)
    transport = httpx.ASGITransport(app=app)
    step(f"Creating a state repository in {directory}.")
    settings = demo_settings(app)
    store = StateRepo.open(directory, create=True, initial_files={CONFIG_FILE: settings.encode()})
    config = load_config(store.root)
    if config.break_glass:
        click.echo(f"  {CONFIG_FILE} names the tenant's break-glass accounts: the lockout guard protects them.")

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
    config = load_config(store.root)  # the first snapshot recorded the tenant id
    step("Making drift through Graph, as an administrator's mistakes would arrive:")
    for change in against_emulator(make_drift):
        click.echo(f"  - {printable(change.description)}")
    step("Taking the second snapshot.")
    second = snapshot_once()

    step("The backups in the repository (entra-gitops backups):")
    for b in store.backups():
        click.echo(f"  {b.name}  commit {b.commit[:10]}  {sum(b.counts.values())} objects")

    step(f"What changed between the two backups, as git sees it (git diff {first.backup.name} {second.backup.name}):")
    click.echo(printable_lines(store.diff_text(first.backup.name, second.backup.name)))

    step(
        f"The difference report: the first backup against the live tenant (entra-gitops diff --backup {first.backup.id}):"
    )
    source = backup_source(first.backup)
    before = load_source(store, registry, source)
    after = against_emulator(lambda c: live_state(c, registry, tuple(registry)))
    report = difference_report(registry, before, after, backup_name=first.backup.name, against_name="the live tenant")
    click.echo(render_text(build_view(report, display_names(before, after)), colour=sys.stdout.isatty()), nl=False)

    step(
        f"Planning the recovery back to {first.backup.name} (entra-gitops plan --backup {first.backup.id} -o plan.json):"
    )
    checked = against_emulator(
        lambda c: make_plan(c, store, registry, config, source, ReportScope(), PlanOptions(), utc_now())
    )
    plan = checked.plan
    write_atomically(directory / "plan.json", plan_json(plan))
    click.echo(render_plan_text(plan, checked.assessment), nl=False)
    if checked.assessment.refusals:
        raise unsafe(checked.assessment.refusals)

    step("Applying exactly that plan (entra-gitops apply plan.json --auto-approve):")
    with journal_for(store, plan) as journal:

        async def recover(client: GraphClient) -> ApplyOutcome:
            ready = await check_for_apply(client, store, registry, config, plan, journal.last_events())
            return await apply_plan(client, registry, ready.plan, journal, ready.source, ready.live, verify_delay=0.2)

        outcome = against_emulator(recover)
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


def demo_settings(app: Any) -> str:
    """The demo repository's settings: the defaults, with the demo tenant's break-glass accounts named."""
    accounts = sorted(
        str(user.get("userPrincipalName"))
        for user in app.tenant.all_objects(app.registry.get("user"))
        if str(user.get("displayName", "")).startswith("Break Glass")
    )
    if not accounts:
        return DEFAULT_CONFIG_TEXT
    listed = "".join(f"  - {account}\n" for account in accounts)
    return DEFAULT_CONFIG_TEXT + f"# The demo tenant's emergency access accounts.\nbreakGlass:\n{listed}"


def printable_lines(text: str) -> str:
    """Text of many lines with each line's tenant data escaped (git's own output keeps its line breaks)."""
    return "\n".join(printable(line) for line in text.split("\n"))


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. Usage errors exit 1, because 2 means "differences present" for every command."""
    signals.install()
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
    except KeyboardInterrupt as stop:
        click.echo("Interrupted.", err=True)
        code = signals.EXIT_TERMINATED if isinstance(stop, signals.Terminated) else INTERRUPTED
    sys.exit(code or ExitCode.OK)


# The team-workflow commands live in their own module; registering them here keeps one CLI entry point.
cli.add_command(init_command)
cli.add_command(permissions_command)
cli.add_command(drift_command)
