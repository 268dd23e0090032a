"""A plan loads of its backup only the types it reads (and its protected entries'), parses only the files that
can differ, and plans exactly what it plans from the whole backup, every file parsed; drift likewise."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from conftest import graph_client, run, take_snapshot_of

from entra_gitops.emulator import Emulator, create_emulator
from entra_gitops.model.registry import default_registry
from entra_gitops.model.settings import (
    CONFIG_FILE,
    DEFAULT_CONFIG_TEXT,
    BreakGlassEntry,
    Config,
    Protected,
    SafetySettings,
)
from entra_gitops.recovery import session
from entra_gitops.recovery.plan import PlanOptions
from entra_gitops.report.diff import ReportScope
from entra_gitops.state import layout
from entra_gitops.state.gitstore import StateRepo
from entra_gitops.state.layout import FileData
from entra_gitops.state.sources import backup_source
from entra_gitops.workflow import drift
from entra_gitops.workflow.drift import drift_since

REGISTRY = default_registry()
T0 = dt.datetime(2026, 11, 21, 23, 0, tzinfo=dt.UTC)


def drifted(tmp_path: Path) -> tuple[Emulator, StateRepo]:
    """A backup of the demo tenant, then users, a group, a policy and an app changed live."""
    app = create_emulator("demo")
    store = StateRepo.open(tmp_path / "state", create=True, initial_files={CONFIG_FILE: DEFAULT_CONFIG_TEXT.encode()})
    take_snapshot_of(app, store, T0)
    for type_name, prop in (("user", "jobTitle"), ("group", "description"), ("application", "notes")):
        rtype = REGISTRY.get(type_name)
        for n, obj in enumerate(list(app.tenant.objects(rtype).values())[:3]):
            if not obj.get("onPremisesSyncEnabled"):
                app.tenant.update(rtype, obj, {prop: f"drifted {n}"})
    return app, store


def plan(app: Emulator, store: StateRepo, config: Config, scope: ReportScope) -> Any:
    async def go() -> Any:
        client = graph_client(app)
        client.limiter.intervals.clear()
        try:
            source = backup_source(store.backups()[0])
            return await session.make_plan(client, store, REGISTRY, config, source, scope, PlanOptions(), T0)
        finally:
            await client.aclose()

    return run(go())


CONFIGS = {
    "plain": Config(),
    "protected and break-glass": Config(
        safety=SafetySettings(protected=(Protected("namedLocation", None, "Oslo HQ"),)),
        break_glass=(BreakGlassEntry("breakglass01@contoso.onmicrosoft.com", frozenset()),),
    ),
}


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_a_scoped_plan_loads_only_its_types_and_plans_what_the_whole_backup_plans(
    tmp_path: Path, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, store = drifted(tmp_path)
    scope = ReportScope(types=("user",))
    narrowed = plan(app, store, config, scope)
    assert "application" not in narrowed.source.types and "user" in narrowed.source.types
    assert not narrowed.source.of_type("application")
    # The guards' types come with break-glass accounts configured (the lockout guard reads the policies), and a
    # protected entry's type with it, so that its name is matched in the backup too.
    assert ("conditionalAccessPolicy" in narrowed.source.types) is bool(config.break_glass)
    assert ("namedLocation" in narrowed.source.types) is bool(config.safety.protected)
    assert not any("matches no object" in w for w in narrowed.assessment.warnings)
    monkeypatch.setattr(session, "source_types", lambda *_: None)  # the whole backup, as before narrowing
    whole = plan(app, store, config, scope)
    assert "application" in whole.source.types
    assert narrowed.plan == whole.plan and narrowed.plan.writes  # the same writes, warnings, refusals, checksum
    assert narrowed.assessment == whole.assessment


def test_a_protected_entry_by_name_alone_loads_the_whole_backup(tmp_path: Path) -> None:
    app, store = drifted(tmp_path)
    config = Config(safety=SafetySettings(protected=(Protected(None, None, "Contoso HR Portal"),)))
    checked = plan(app, store, config, ReportScope(types=("user",)))
    assert checked.source.of_type("application")  # a name may be any type's: nothing is left out
    assert not any("matches no object" in w for w in checked.assessment.warnings)


def parsed_files(state: Any) -> set[tuple[str, str]]:
    """The objects of a state whose files were parsed (the rest were found equal by their blob alone)."""
    return {o.key for o in state if not isinstance(o.data, FileData) or o.data.parsed}


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_a_plan_parses_only_the_files_that_differ_and_plans_what_a_full_parse_plans(
    tmp_path: Path, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, store = drifted(tmp_path)
    lazy = plan(app, store, config, ReportScope())
    written = {(w.type_name, w.object_id) for w in lazy.plan.writes}
    # Types read by delta are built on the backup's own files: an object unchanged since is the same blob on both
    # sides, found equal without parsing. The other types are read in full, so their objects are compared by value.
    parsed = {key for key in parsed_files(lazy.source) | parsed_files(lazy.live) if REGISTRY.get(key[0]).delta}
    assert written <= parsed
    if not config.break_glass:  # a UPN is found by reading the users, and the lockout guard reads the groups
        assert parsed == written
    monkeypatch.setattr(session, "parsed_once", contextlib.nullcontext)  # every file parsed as it is loaded
    eager = plan(app, store, config, ReportScope())
    assert parsed_files(eager.source) == set(eager.source.objects)
    assert lazy.plan == eager.plan and lazy.plan.writes
    assert lazy.assessment == eager.assessment


def test_drift_between_two_backups_parses_only_the_files_that_differ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, store = drifted(tmp_path)
    take_snapshot_of(app, store, T0 + dt.timedelta(days=1))
    old, new = store.backups()[1], store.backups()[0]
    paths_before, paths_after = store.tree_blobs(old.commit), store.tree_blobs(new.commit)
    differing = {p for p in {*paths_before, *paths_after} if paths_before.get(p) != paths_after.get(p)}
    parsed: list[str] = []
    real = layout._parsed_file
    monkeypatch.setattr(
        layout, "_parsed_file", lambda content, path, oid: parsed.append(path) or real(content, path, oid)
    )
    lazy = drift_since(store, REGISTRY, old.name, new.name, ())
    assert lazy.report.changes
    # Names and values of what changed, and the singletons (their file name does not give their id): nothing of
    # the objects the two backups hold alike.
    assert {p for p in parsed if p.count("/") > 1} <= differing
    monkeypatch.setattr(drift, "parsed_once", contextlib.nullcontext)  # every file parsed as it is loaded
    parsed.clear()
    eager = drift_since(store, REGISTRY, old.name, new.name, ())
    assert len(parsed) > len(differing)
    assert lazy.report == eager.report and lazy.view == eager.view
