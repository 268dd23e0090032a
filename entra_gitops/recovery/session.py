"""Recovery's work between the command line and the core: a checked plan from a source, a plan file checked for apply.

The core (diff, plan, safety, steps) is pure; this module reads what it needs from the state
repository and from Graph, runs the one tenant check before anything else, and hands values back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace

from entra_gitops import __version__
from entra_gitops.graph.audit import AuditRead, read_audit
from entra_gitops.graph.client import GraphClient
from entra_gitops.graph.reader import read_tenant_id
from entra_gitops.graph.targeted import Target, readable_by_id
from entra_gitops.model.errors import ConfigError
from entra_gitops.model.ids import fold_id, utc_text
from entra_gitops.model.progress import Progress, Reads, watched
from entra_gitops.model.registry import Registry
from entra_gitops.model.settings import Config
from entra_gitops.model.tenant import Lifecycle, SourceKind, TenantState
from entra_gitops.recovery.errors import PlanFileError
from entra_gitops.recovery.journal import JournalEvent
from entra_gitops.recovery.plan import Plan, PlanOptions, build_plan, with_checksum
from entra_gitops.recovery.recheck import plan_targets, read_live_for, touched_objects, verify_plan
from entra_gitops.recovery.safety import GUARD_TYPES, Assessment, Context, assess, break_glass_ids, resolve_protected
from entra_gitops.report.diff import DifferenceReport, ReportScope, difference_report
from entra_gitops.report.view import attributed, report_ids
from entra_gitops.state.gitstore import StateRepo
from entra_gitops.state.incremental import current_state
from entra_gitops.state.layout import object_path, parsed_once
from entra_gitops.state.sources import (
    PartialState,
    Source,
    backup_source,
    desired_source,
    load_source,
    partial_source_state,
)
from entra_gitops.state.tenancy import check_tenant, expected_tenant


@dataclass(frozen=True)
class Checked:
    """A plan and what its guards found, with the states they judged."""

    plan: Plan
    assessment: Assessment
    source: TenantState
    live: TenantState
    audit_warning: str | None = None  # one line for stderr: the audit log could not be read (who is unknown)


def source_time(store: StateRepo, source: Source) -> dt.datetime:
    """When the source was the tenant's state: its backup's time, or a desired commit's commit time."""
    backup = next((b for b in store.backups() if b.name == source.label and b.commit == source.commit), None)
    if backup is not None:
        return backup.time
    return store.repo.commit(source.commit).committed_datetime.astimezone(dt.UTC)


async def audit_for(
    client: GraphClient, report: DifferenceReport, since: dt.datetime, progress: Progress | Reads | None = None
) -> AuditRead:
    """The audit events behind a report's changes (none read when nothing changed)."""
    if report.empty:
        return AuditRead((), True)
    return await read_audit(client, since, report_ids(report), progress)


def plan_source(store: StateRepo, registry: Registry, backup_id: str, desired: str | None) -> Source:
    """The source a plan recovers to: a backup (default the newest complete one), or a commit's files."""
    if desired is not None:
        return desired_source(store, registry, desired)
    return backup_source(store.resolve_backup(backup_id))


def changed_since_backup(store: StateRepo, source: Source) -> set[str] | None:
    """A desired state's files that differ from the newest complete backup: the ones a person may have edited.

    Files a snapshot wrote passed normalization already; checking only the rest keeps a large tenant's
    plan fast. With no complete backup, every file is checked (None).
    """
    if source.kind is not SourceKind.DESIRED:
        return None
    backup = next((b for b in store.backups() if b.complete), None)
    if backup is None:
        return None
    before = store.tree_blobs(backup.commit)
    return {path for path, blob in store.tree_blobs(source.commit).items() if before.get(path) != blob}


def check_ids(scope: ReportScope, before: TenantState, after: TenantState, before_name: str, after_name: str) -> None:
    """Refuse --id values naming no object (of the scope's types) on either side: a typo is not "no changes"."""
    found = {
        object_id
        for state in (before, after)
        for type_name, object_id in state.objects
        if not scope.types or type_name in scope.types
    }
    missing = [i for i in scope.ids if fold_id(i) not in found]
    if missing:
        named = ", ".join(f"--id {i}" for i in missing)
        what = f"no {' or '.join(scope.types)} object" if scope.types else "no object"
        raise ConfigError(
            f"{named} match{'es' if len(missing) == 1 else ''} {what} in {before_name} or {after_name}",
            hint="check the id: each object's file is tenant-state/<folder>/<id>.yaml",
        )


def uncommitted_edits(store: StateRepo, source: Source) -> list[str]:
    """The state files edited in the work tree but not committed, which a plan towards a commit does not include."""
    return store.dirty_state_files() if source.kind is SourceKind.DESIRED else []


async def check_repository_tenant(client: GraphClient, store: StateRepo, config: Config, registry: Registry) -> str:
    """The tenant Graph answers for, refused unless it is the one this repository holds."""
    tenant = await read_tenant_id(client, registry)
    check_tenant(*expected_tenant(config, store.backups()), tenant, client.base_url)
    return tenant


def read_types(
    registry: Registry, config: Config, scope_types: tuple[str, ...], covered: frozenset[str] | None
) -> tuple[str, ...]:
    """What a plan reads live: the scope, the types it references (to tell soft-deleted from gone), the guards'."""
    names = set(scope_types or registry.names)
    if covered is not None:
        names &= covered
    for name in list(names):
        names |= registry.get(name).referenced_types
    if config.break_glass:
        names |= GUARD_TYPES
    return tuple(sorted(names))


def source_types(registry: Registry, config: Config, types: tuple[str, ...]) -> frozenset[str] | None:
    """What a plan loads of its source: the types it reads live, and those of the protected entries (a name is
    matched in the source too, so that renaming a protected object live cannot unprotect it); None for all."""
    names = set(types)
    for entry in config.safety.protected:
        if entry.type_name is None:
            return None  # an entry by name alone may match any type
        names.add(entry.type_name)
    return None if names >= set(registry.names) else frozenset(names)


async def make_plan(
    client: GraphClient,
    store: StateRepo,
    registry: Registry,
    config: Config,
    source: Source,
    scope: ReportScope,
    options: PlanOptions,
    now: dt.datetime,
    progress: Progress | Reads | None = None,
) -> Checked:
    """Plan the live tenant back to `source` within `scope`, and run every guard on the result."""
    with parsed_once():  # the live state is built on a backup's files, most of them the source's own
        return await _make_plan(client, store, registry, config, source, scope, options, now, progress)


async def _make_plan(
    client: GraphClient,
    store: StateRepo,
    registry: Registry,
    config: Config,
    source: Source,
    scope: ReportScope,
    options: PlanOptions,
    now: dt.datetime,
    progress: Progress | Reads | None = None,
) -> Checked:
    watch = watched(progress)
    tenant = await check_repository_tenant(client, store, config, registry)
    watch.phase(f"load {source.label}")
    types = read_types(registry, config, scope.types, source.types)
    loaded = source_types(registry, config, types)
    source_state = load_source(store, registry, source, changed_since_backup(store, source), loaded)
    live = await current_state(client, store, registry, registry.select(list(types)), watch)
    check_ids(scope, source_state, live, source.label, "the live tenant")
    watch.phase("plan and check the guards")
    report = difference_report(
        registry, source_state, live, backup_name=source.label, against_name="the live tenant", scope=scope,
        note=source.note,
    )  # fmt: skip
    since = source_time(store, source)
    audit = await audit_for(client, report, since, watch)
    attribution = attributed(report, audit.events if audit.available else None, since)
    changed_by = tuple((c.type_name, c.id, attribution.of(c.type_name, c.id).changed_by) for c in report.changes)
    protected, unmatched = resolve_protected(config.safety.protected, source_state, live)
    plan = build_plan(
        registry,
        report,
        source_state,
        live,
        tool=f"entra-gitops {__version__}",
        tenant=tenant,
        backup_commit=source.commit,
        created=utc_text(now),
        kind=source.kind,
        options=options,
        protected=protected,
        break_glass=break_glass_ids(config.break_glass, source_state, live),
    )
    context = Context(live, source_state, config.safety, protected, unmatched, config.break_glass, source.present)
    assessment = assess(registry, plan, context)
    plan = with_checksum(
        replace(plan, warnings=assessment.warnings, refusals=assessment.refusals, changed_by=changed_by)
    )
    return Checked(plan, assessment, source_state, live, audit.warning)


def apply_source(store: StateRepo, registry: Registry, plan: Plan) -> Source:
    """The source a plan file names, refused when its backup tag now points at another commit."""
    commit = store.resolve(plan.backup_commit)
    if plan.kind is SourceKind.DESIRED:
        folders = {t.folder: t.name for t in registry}
        return Source(plan.backup, commit, plan.kind, None, store.types_present(commit, folders))
    backup = next((b for b in store.backups() if b.name == plan.backup), None)
    if backup is not None and backup.commit != commit:
        raise PlanFileError(
            f"the plan recovers to {plan.backup} at commit {commit[:10]}, but that tag now points at "
            f"{backup.commit[:10]}: nothing was written",
            hint="a moved backup tag is a warning sign: check who moved it, then make and review a new plan",
        )
    # The commit, not the tag: retention may have removed the tag since, never the commit.
    return replace(backup_source(backup), commit=commit) if backup else Source(plan.backup, commit, plan.kind, None)


def plan_paths(registry: Registry, plan: Plan) -> set[str]:
    """The files that hold the objects a plan writes, in either lifecycle: what apply validates again."""
    paths = set()
    for write in plan.writes:
        rtype = registry.get(write.type_name)
        for lifecycle in Lifecycle:
            paths.add(object_path(rtype, write.object_id, lifecycle))
    return paths


def protected_targets(registry: Registry, config: Config) -> tuple[Target, ...]:
    """The objects protected by id, read with the plan's so the guard names them as it would from a full read."""
    readable = [t.name for t in registry if readable_by_id(t) and t.parent is None]
    return tuple(
        Target(name, entry.object_id)
        for entry in config.safety.protected
        if entry.object_id
        for name in ([entry.type_name] if entry.type_name in registry else readable)
    )


def targeted_source(
    store: StateRepo, registry: Registry, source: Source, plan: Plan, live: TenantState, also: tuple[Target, ...]
) -> TenantState:
    """The source's files for the objects the live read covers, and every file of the types it read in full.

    What the guards compare live objects with must be there for each of them, in the same types.
    """
    whole = live.types - live.partial if isinstance(live, PartialState) else live.types
    partial_types = frozenset(t.name for t in registry if not t.singleton and t.name not in whole)
    targets = (*plan_targets(plan), *also)
    return partial_source_state(store, registry, source, targets, partial_types, plan_paths(registry, plan))


async def check_for_apply(
    client: GraphClient,
    store: StateRepo,
    registry: Registry,
    config: Config,
    plan: Plan,
    events: Mapping[int, JournalEvent],
    progress: Progress | Reads | None = None,
) -> Checked:
    """A plan file as apply runs it: tenant checked, every step verified against its source, the guards run again."""
    tenant = await check_repository_tenant(client, store, config, registry)
    if plan.tenant and plan.tenant.lower() != tenant.lower():
        raise PlanFileError(f"the plan is for tenant {plan.tenant}, but Graph is tenant {tenant}: nothing was written")
    source = apply_source(store, registry, plan)
    if config.break_glass or any(not p.object_id for p in config.safety.protected):
        # The lockout guard and protection by name search whole types (every group a policy may reach, every
        # name): those read everything, as the plan did.
        source_state = load_source(store, registry, source, plan_paths(registry, plan))
        extra = GUARD_TYPES if config.break_glass else frozenset()
        live = await read_live_for(client, registry, plan, extra, progress, targeted=False)
    else:
        also = protected_targets(registry, config)
        live = await read_live_for(client, registry, plan, progress=progress, counted=True, also=also)
        source_state = targeted_source(store, registry, source, plan, live, also)
    verified, _ = verify_plan(registry, plan, source_state, live, touched_objects(plan, events))
    protected, unmatched = resolve_protected(config.safety.protected, source_state, live)
    context = Context(live, source_state, config.safety, protected, unmatched, config.break_glass, source.present)
    return Checked(verified, assess(registry, verified, context), source_state, live)
