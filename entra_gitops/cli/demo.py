"""The demo command: the whole story against a built-in Graph emulator, through the calls the commands make."""

from __future__ import annotations

import shlex
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx

from entra_gitops.cli.options import utc_now
from entra_gitops.cli.output import command_lines, printable_lines, use_colour, warn
from entra_gitops.cli.snapshot import snapshot_report
from entra_gitops.graph.client import GraphClient, connect
from entra_gitops.model.errors import ConfigError
from entra_gitops.model.registry import Registry, default_registry
from entra_gitops.model.settings import CONFIG_FILE, Config, load_config
from entra_gitops.model.tenant import TenantState
from entra_gitops.model.textsafe import printable
from entra_gitops.recovery.errors import unsafe
from entra_gitops.recovery.history import record_history
from entra_gitops.recovery.outcome import ApplyOutcome
from entra_gitops.recovery.plan import PlanOptions
from entra_gitops.recovery.render import render_plan_text
from entra_gitops.recovery.service import apply_checked, journal_for, save_plan
from entra_gitops.recovery.session import check_for_apply, make_plan
from entra_gitops.report.diff import ReportScope, difference_report
from entra_gitops.report.text import render_text
from entra_gitops.report.view import build_view, display_names
from entra_gitops.state import signals
from entra_gitops.state.gitstore import StateRepo
from entra_gitops.state.snapshot import SnapshotOutcome, take_snapshot
from entra_gitops.state.sources import Source, backup_source, live_state, load_source
from entra_gitops.workflow.demo import demo_settings, make_drift

LOCAL_URL = "http://127.0.0.1/v1.0"
EMULATOR_URL = "http://127.0.0.1:8080/v1.0"  # what `entra-gitops emulator` prints on its default port
T = TypeVar("T")


def _step(text: str) -> None:
    click.echo()
    click.secho(f"==> {text}", bold=True)


class _Emulated:
    """Graph as the in-process emulator answers it, one client per piece of work."""

    def __init__(self, app: Any) -> None:
        self.transport = httpx.ASGITransport(app=app)

    def run(self, work: Callable[[GraphClient], Awaitable[T]]) -> T:
        async def go() -> T:
            async with connect(LOCAL_URL, transport=self.transport) as client:
                return await work(client)

        return signals.run(go())


def _snapshot(graph: _Emulated, store: StateRepo, registry: Registry, config: Config) -> SnapshotOutcome:
    started = time.monotonic()
    outcome = graph.run(lambda c: take_snapshot(c, store, registry, tuple(registry), config, utc_now()))
    for line in snapshot_report(outcome, time.monotonic() - started, registry):
        click.echo(line)
    return outcome


def _against_live(graph: _Emulated, registry: Registry, before: TenantState, backup: str) -> None:
    """The difference report of `before` (the backup) against the live tenant, as `diff` prints it."""
    after = graph.run(lambda c: live_state(c, registry, tuple(registry)))
    report = difference_report(registry, before, after, backup_name=backup, against_name="the live tenant")
    click.echo(render_text(build_view(report, display_names(report, before, after)), colour=use_colour()), nl=False)


def _recover(
    graph: _Emulated, store: StateRepo, registry: Registry, config: Config, source: Source, directory: Path
) -> None:
    """Plan the recovery to `source` and save it, as `plan -o plan.json` does; then apply it as `apply` does."""
    checked = graph.run(
        lambda c: make_plan(c, store, registry, config, source, ReportScope(), PlanOptions(), utc_now())
    )
    plan = checked.plan
    save_plan(directory / "plan.json", checked)
    click.echo(render_plan_text(plan, checked.assessment), nl=False)
    if checked.assessment.refusals:
        raise unsafe(checked.assessment.refusals)

    _step("Applying exactly that plan (entra-gitops apply plan.json --auto-approve):")
    with journal_for(store, plan, notice=warn) as journal:

        async def recover(client: GraphClient) -> ApplyOutcome:
            ready = await check_for_apply(client, store, registry, config, plan, journal.last_events())
            return await apply_checked(client, registry, ready, journal, verify_delay=0.2)

        outcome = graph.run(recover)
        record_history(store, plan, outcome, utc_now())
    click.echo(
        f"Apply {outcome.status.value}: {len(outcome.applied)} of {len(plan.writes)} write(s) done, recorded in "
        "recovery history."
    )


@click.command("demo")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", default="demo", show_default=True, help="Seed of the in-process emulator.")
def demo_command(directory: Path | None, seed: str) -> None:
    """The whole story against a built-in Graph emulator: snapshot, drift, snapshot, review.

    Nothing leaves this machine: the emulator runs in process and the state repository is created
    in DIRECTORY (a new temporary directory when omitted). It ends with commands to explore the result.

    \b
    Examples:
      entra-gitops demo
      entra-gitops demo ./demo-tenant                    keep it where you can find it
    Exit 0 the story ran to its end, 1 error (DIRECTORY is not empty).
    """
    from entra_gitops.emulator import create_emulator

    registry = default_registry()
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="entra-gitops-demo-"))
    if directory.exists() and any(directory.iterdir()):
        raise ConfigError(f"{directory} is not empty", hint="give the demo a new or empty directory")

    _step(f"Starting the built-in Graph emulator in process with the {seed!r} tenant.")
    app = create_emulator(seed)
    graph = _Emulated(app)
    _step(f"Creating a state repository in {directory}.")
    settings = demo_settings(app.tenant.all_objects(app.registry.get("user")))
    store = StateRepo.open(directory, create=True, initial_files={CONFIG_FILE: settings.encode()})
    config = load_config(store.root)
    if config.break_glass:
        click.echo(f"  {CONFIG_FILE} names the tenant's break-glass accounts: the lockout guard protects them.")

    _step("Taking the first snapshot: reading every resource type and committing tenant-state/.")
    first = _snapshot(graph, store, registry, config)
    config = load_config(store.root)  # the first snapshot recorded the tenant id
    _step("Making drift through Graph, as an administrator's mistakes would arrive:")
    for change in graph.run(make_drift):
        click.echo(f"  - {printable(change.description)}")
    _step("Taking the second snapshot.")
    second = _snapshot(graph, store, registry, config)

    _step("The backups in the repository (entra-gitops backups):")
    for b in store.backups():
        click.echo(f"  {b.name}  commit {b.commit[:10]}  {sum(b.counts.values())} objects")

    _step(f"What changed between the two backups, as git sees it (git diff {first.backup.name} {second.backup.name}):")
    click.echo(printable_lines(store.diff_text(first.backup.name, second.backup.name)))

    backup = first.backup
    _step(f"The difference report: the first backup against the live tenant (entra-gitops diff --backup {backup.id}):")
    source = backup_source(backup)
    before = load_source(store, registry, source)
    _against_live(graph, registry, before, backup.name)

    _step(f"Planning the recovery back to {backup.name} (entra-gitops plan --backup {backup.id} -o plan.json):")
    _recover(graph, store, registry, config, source, directory)

    _step(f"A fresh difference report against {backup.name} (entra-gitops diff --backup {backup.id}):")
    _against_live(graph, registry, before, backup.name)
    _explore(directory, first.backup.id, second.backup.id)


def _explore(directory: Path, first: str, second: str) -> None:
    """The closing hint: commands that work as printed, in order, in a new shell."""
    _step("Done. Explore it yourself (every command finds the repository from any folder inside it):")
    offline = command_lines(
        (f"cd {shlex.quote(str(directory))}", ""),
        ("git log --stat", "the snapshots as commits"),
        ("entra-gitops backups", "their backup tags"),
        (f"entra-gitops diff --backup {first} --against {second}", "the drift, offline"),
        ("entra-gitops history", "the recovery just applied"),
    )
    live = command_lines(
        ("entra-gitops emulator --seed demo", "in another terminal"),
        (f"entra-gitops diff --graph-url {EMULATOR_URL}", "the newest backup against it"),
        (f"entra-gitops snapshot --graph-url {EMULATOR_URL}", "a third backup"),
    )
    click.echo(
        f"{offline}\n\nAgainst a Graph of your own: start the emulator (the demo tenant as it was before the drift)"
        f"\nand give the URL it prints (this is its default port) as --graph-url:\n{live}"
    )
