"""Reads by id: the same objects a full read gives, partial states that refuse unread keys, apply's cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import demo_tenant, graph_client, run, run_main, served, user_objects

from entra_gitops.emulator import Emulator
from entra_gitops.graph.targeted import Target, read_targets, readable_by_id
from entra_gitops.model.registry import default_registry
from entra_gitops.model.tenant import Lifecycle
from entra_gitops.state.gitstore import StateRepo
from entra_gitops.state.layout import object_path
from entra_gitops.state.sources import (
    UnreadObjectError,
    backup_source,
    live_state,
    load_source,
    partial_source_state,
    targeted_live_state,
)

REGISTRY = default_registry()
ABSENT = "0badc0de-0000-4000-8000-000000000000"


def both_reads(app: Emulator, extra: tuple[Target, ...] = ()) -> tuple[Any, Any]:
    """A full read of every type read by id, and a targeted read of each of its objects (and `extra`)."""
    types = tuple(t for t in REGISTRY if readable_by_id(t))

    async def go() -> tuple[Any, Any]:
        client = graph_client(app)
        try:
            full = await live_state(client, REGISTRY, types)
            targets = [Target(o.type_name, o.id) for o in full if REGISTRY.get(o.type_name).parent is None]
            part = await targeted_live_state(
                client, REGISTRY, [t.name for t in types], [*targets, *extra], counted=True
            )
            return full, part
        finally:
            await client.aclose()

    return run(go())


def test_an_object_read_by_id_is_the_object_a_full_read_gives(emulator: Emulator) -> None:
    tenant = emulator.tenant
    user = REGISTRY.get("user")
    gone = next(u for u in tenant.objects(user).values() if not u.get("onPremisesSyncEnabled"))
    tenant.delete(user, gone["id"])  # soft-deleted: read from directory/deletedItems
    full, part = both_reads(emulator, (Target("user", ABSENT),))
    assert {o.type_name for o in full} >= {
        "user",
        "group",
        "application",
        "servicePrincipal",
        "conditionalAccessPolicy",
    }
    for obj in full:
        assert part.get(*obj.key) == obj, obj.key
    assert part.get("user", gone["id"]).lifecycle is Lifecycle.SOFT_DELETED
    assert part.get("user", ABSENT) is None  # asked about and not there: absent, for certain
    sponsored = [o for o in full.of_type("user") if o.data.get("sponsors")]
    assert any(o.data.get("@odata.type") == "#microsoft.graph.agentUser" for o in sponsored)
    assert part.counts() == full.counts()


def test_a_group_with_more_than_one_page_of_members_is_read_whole() -> None:
    tenant = demo_tenant()
    user, group = REGISTRY.get("user"), REGISTRY.get("group")
    crowd = next(g for g in tenant.objects(group).values() if not g.get("membershipRule"))
    for raw in user_objects(1_100):
        tenant.create(user, {k: v for k, v in raw.items() if k != "businessPhones"} | {"mailNickname": raw["id"][-6:]})
    for created in [u for u in tenant.objects(user).values() if u["displayName"].startswith("User ")]:
        tenant.add_link(("group", "members"), crowd["id"], created["id"])
    full, part = both_reads(Emulator(tenant))
    members = part.get("group", crowd["id"]).data["members"]
    assert len(members) > 1_000
    assert part.get("group", crowd["id"]) == full.get("group", crowd["id"])


def test_a_partial_state_refuses_to_answer_for_an_object_it_was_not_read_for(emulator: Emulator) -> None:
    full = run(_full(emulator))
    one, other = [o for o in full.of_type("user") if o.lifecycle is Lifecycle.ACTIVE][:2]

    async def go() -> Any:
        client = graph_client(emulator)
        try:
            return await targeted_live_state(client, REGISTRY, ["user"], [Target("user", one.id)], counted=False)
        finally:
            await client.aclose()

    part = run(go())
    assert part.get("user", one.id) == one
    with pytest.raises(UnreadObjectError, match=f"user {other.id} was not read"):
        part.get("user", other.id)
    with pytest.raises(UnreadObjectError, match="cannot count"):
        part.counts()  # without Graph's count of the rest, a partial state has no totals to give


async def _full(app: Emulator) -> Any:
    client = graph_client(app)
    try:
        return await live_state(client, REGISTRY, tuple(REGISTRY))
    finally:
        await client.aclose()


def test_a_child_object_is_read_from_its_parents_collection(emulator: Emulator) -> None:
    full = run(_full(emulator))
    assignment = full.of_type("appRoleAssignment")[0]
    parent = assignment.data["resourceId"]

    async def go() -> Any:
        client = graph_client(emulator)
        try:
            return await read_targets(client, REGISTRY, [Target("appRoleAssignment", assignment.id, parent)])
        finally:
            await client.aclose()

    read = run(go())
    assert [o["id"] for o in read.read.objects["appRoleAssignment"]] == [assignment.id]
    assert read.covered == frozenset({("appRoleAssignment", assignment.id)})


def test_a_source_read_by_path_holds_the_same_objects_and_counts(repo: Path) -> None:
    store = StateRepo.open(repo)
    backup = store.resolve_backup("latest")
    source = backup_source(backup)
    whole = load_source(store, REGISTRY, source)
    users = [o for o in whole.of_type("user")][:3]
    targets = [Target("user", o.id) for o in users] + [Target("user", ABSENT)]
    part = partial_source_state(store, REGISTRY, source, targets, frozenset({"user", "group"}))
    for obj in users:
        assert part.get(*obj.key) == obj
    assert part.get("user", ABSENT) is None
    assert part.counts() == whole.counts()
    assert store.read_paths(backup.commit, [object_path(REGISTRY.get("user"), ABSENT)]) == {}
    unread = next(o for o in whole.of_type("group"))
    with pytest.raises(UnreadObjectError):
        part.get("group", unread.id)


def test_apply_reads_only_the_objects_it_writes(repo: Path) -> None:
    with served() as (url, app):
        seen: list[tuple[str, str, str]] = []
        handle = app.handle

        def logged(request: Any, request_id: str | None = None) -> Any:
            seen.append((request.method, request.path, str(getattr(request, "query", ""))))
            return handle(request, request_id)

        user = next(u for u in app.tenant.objects(REGISTRY.get("user")).values() if not u.get("onPremisesSyncEnabled"))
        before = user.get("department")
        with httpx.Client(base_url=url + "/", headers={"Authorization": "Bearer local"}) as http:
            http.patch(f"users/{user['id']}", json={"department": "Drifted"}).raise_for_status()
        plan_file = repo.parent / "plan.json"
        made = run_main("plan", "--repo", repo, "--graph-url", url, "-o", plan_file)
        assert made.returncode == 0, made.stderr
        app.handle = logged
        applied = run_main("apply", plan_file, "--repo", repo, "--graph-url", url, "--auto-approve")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        app.handle = handle
        with httpx.Client(base_url=url + "/", headers={"Authorization": "Bearer local"}) as http:
            assert http.get(f"users/{user['id']}?$select=department").json().get("department") == before
    listed = {path for method, path, _ in seen if method == "GET" and path.strip("/") in ("users", "groups")}
    assert not listed, "apply listed whole types"
    assert any(path.strip("/").endswith("users/$count") for _, path, _ in seen)
