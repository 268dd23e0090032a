"""Adding a resource type is one schema and seed data: no Python. Proven with a type the shipped schemas lack.

tests/fixtures/new-type/ holds one schema (devices, two properties of them); joined with the shipped
schemas it makes a registry from which the emulator serves the type, a snapshot writes its files, a
difference report sees a change to it, and a plan and apply put it back, through the real Graph client
over the emulator's HTTP API and a real git repository.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from pathlib import Path

import httpx
from conftest import HOST, demo_seed

from entra_gitops.emulator import Emulator
from entra_gitops.emulator.seed import SeedLoader
from entra_gitops.graph.auth import AuthMethod, AuthSettings
from entra_gitops.graph.client import GraphClient, connect
from entra_gitops.model.registry import Registry, load_registry, schemas_dir
from entra_gitops.model.settings import Config
from entra_gitops.model.tenant import TenantState
from entra_gitops.recovery.apply import apply_plan
from entra_gitops.recovery.journal import Journal
from entra_gitops.recovery.plan import build_plan
from entra_gitops.recovery.recheck import read_live_for
from entra_gitops.report.diff import difference_report
from entra_gitops.state.gitstore import StateRepo
from entra_gitops.state.snapshot import take_snapshot
from entra_gitops.state.sources import backup_state, live_state

NEW_TYPE = Path(__file__).parent / "fixtures" / "new-type"
DEVICE = "7c1b0f3e-5a4d-4c2b-9e8f-0a1b2c3d4e5f"
WHEN = dt.datetime(2026, 12, 1, 23, 0, tzinfo=dt.UTC)


def registry_with_new_type(tmp_path: Path) -> Registry:
    folder = tmp_path / "schemas"
    shutil.copytree(schemas_dir(), folder, ignore=shutil.ignore_patterns("plan", "reports", "settings", "*.md"))
    shutil.copy(NEW_TYPE / "device.schema.json", folder)
    return load_registry(folder)


def client_for(app: Emulator) -> GraphClient:
    client = connect(f"{HOST}/v1.0", auth=AuthSettings(method=AuthMethod.LOCAL), transport=httpx.ASGITransport(app=app))
    client.limiter.intervals.clear()  # the emulator here does not throttle
    return client


def test_a_type_declared_only_in_a_schema_is_backed_up_compared_and_recovered(tmp_path: Path) -> None:
    registry = registry_with_new_type(tmp_path)
    device = registry.get("device")
    seed = demo_seed()
    seed["devices"] = [{"id": DEVICE, "displayName": "OSL-LAPTOP-0042", "operatingSystem": "Windows"}]
    app = Emulator(SeedLoader(registry, seed, "demo with devices").load())
    store = StateRepo.open(tmp_path / "state", create=True)

    async def scenario() -> tuple[TenantState, object]:
        client = client_for(app)
        try:
            first = await take_snapshot(client, store, registry, (device,), Config(), WHEN)
            # An administrator's mistake, made through Graph as it would arrive.
            response = await client.send("PATCH", f"devices/{DEVICE}", body={"displayName": "Oops"})
            assert response.status == 204
            before = backup_state(store, registry, first.backup)
            live = await live_state(client, registry, (device,))
            report = difference_report(registry, before, live, backup_name=first.backup.name, against_name="live")
            plan = build_plan(
                registry, report, before, live, tool="test", tenant=None, backup_commit=first.backup.commit,
                created="2026-12-01T23:00:00Z",
            )  # fmt: skip
            outcome = await apply_plan(
                client, registry, plan, Journal(tmp_path / "journal.jsonl"), before,
                await read_live_for(client, registry, plan),
            )  # fmt: skip
            assert not outcome.failures, outcome.failures
            return await live_state(client, registry, (device,)), report
        finally:
            await client.aclose()

    after, report = asyncio.run(scenario())
    # The snapshot wrote the type's folder from the schema's x-entra-folder, one file per object.
    files = store.read_files("HEAD", "tenant-state/devices")
    assert [Path(p).name for p in files] == [f"{DEVICE}.yaml"]
    assert b"displayName: OSL-LAPTOP-0042" in next(iter(files.values()))
    # The report saw the change, per property; apply put it back.
    (change,) = report.changes  # type: ignore[attr-defined]
    assert (change.type_name, change.id) == ("device", DEVICE)
    assert after.get("device", DEVICE).data["displayName"] == "OSL-LAPTOP-0042"
