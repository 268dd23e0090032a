"""Delta snapshots: the tree a snapshot that continues from the last backup gives is the one a full read gives."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    SyncGraph,
    demo_tenant,
    git,
    graph_client,
    run,
    run_main,
    served,
    take_snapshot_of,
    with_graph,
)

from entra_gitops.emulator import Emulator
from entra_gitops.emulator.seed import SeedLoader
from entra_gitops.emulator.synthetic import generate, parse_spec
from entra_gitops.graph.delta import DeltaTokenRejected, continue_url
from entra_gitops.model.registry import default_registry
from entra_gitops.state.gitstore import Backup, DeltaLink, StateRepo
from entra_gitops.state.incremental import choose_bases, type_basis

REGISTRY = default_registry()
T0 = dt.datetime(2026, 12, 1, 23, 0, tzinfo=dt.UTC)
DELTA_TYPES = {"user", "group", "application", "servicePrincipal", "oauth2PermissionGrant"}


def ref(object_id: str) -> dict[str, str]:
    return {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{object_id}"}


def tree_of(store: StateRepo, commit: str) -> str:
    return git(store.root, "rev-parse", f"{commit}:tenant-state").strip()


def snapshot(app: Emulator, store: StateRepo, hours: int, **kwargs: Any) -> Any:
    return take_snapshot_of(app, store, T0 + dt.timedelta(hours=hours), **kwargs)


def full_snapshot(app: Emulator, store: StateRepo, hours: int) -> Any:
    """A full read of the same tenant into the same repository: it must find nothing to commit."""
    from entra_gitops.graph.client import RetryPolicy
    from entra_gitops.model.settings import Config
    from entra_gitops.state.snapshot import take_snapshot

    async def go() -> Any:
        client = graph_client(app)
        client.retry = RetryPolicy(max_retries=2, backoff_base=0.001)
        client.limiter.intervals.clear()
        try:
            when = T0 + dt.timedelta(hours=hours)
            return await take_snapshot(client, store, REGISTRY, tuple(REGISTRY), Config(), when, full=True)
        finally:
            await client.aclose()

    return run(go())


def ids(api: SyncGraph, path: str, select: str = "id") -> list[dict[str, Any]]:
    return api.list_all(path, params={"$select": select})


def every_kind_of_change(api: SyncGraph) -> set[str]:
    """Create, update, soft delete, restore, hard delete, member add and remove, owner change, a sponsor, a
    grant's scope, an app and a service principal: each through Graph as an administrator would."""
    users = [u for u in ids(api, "users", "id,userType,onPremisesSyncEnabled") if not u.get("onPremisesSyncEnabled")]
    members = [u for u in users if u.get("userType") != "Guest"]
    guests = [u for u in users if u.get("userType") == "Guest"]
    groups = [g for g in ids(api, "groups", "id,groupTypes,onPremisesSyncEnabled,isAssignableToRole")]
    static = [
        g
        for g in groups
        if "DynamicMembership" not in (g.get("groupTypes") or [])
        and not g.get("onPremisesSyncEnabled")
        and not g.get("isAssignableToRole")
    ]
    done: set[str] = set()

    def ok(response: Any, what: str) -> None:
        assert response.status_code < 300, f"{what}: {response.status_code} {response.text}"
        done.add(what)

    created = api.post(
        "users",
        {
            "accountEnabled": True,
            "displayName": "Delta Created",
            "mailNickname": "delta.created",
            "userPrincipalName": "delta.created@contoso.example",
            "passwordProfile": {"password": "Never-Stored-1!", "forceChangePasswordNextSignIn": True},
        },
    )
    ok(created, "create")
    ok(api.patch(f"users/{members[0]['id']}", {"displayName": "Renamed By Delta", "jobTitle": None}), "update")
    ok(api.delete(f"users/{members[1]['id']}"), "soft delete")
    deleted = ids(api, "directory/deletedItems/microsoft.graph.user")
    earlier = [d for d in deleted if d["id"] != members[1]["id"]]
    if earlier:
        ok(api.post(f"directory/deletedItems/{earlier[0]['id']}/restore"), "restore")
    ok(api.delete(f"users/{members[2]['id']}"), "soft delete for the hard delete")
    ok(api.delete(f"directory/deletedItems/{members[2]['id']}"), "hard delete")
    group = static[0]["id"]
    ok(api.post(f"groups/{group}/members/$ref", ref(members[3]["id"])), "member add")
    current = ids(api, f"groups/{static[1]['id']}/members")
    if current:
        ok(api.delete(f"groups/{static[1]['id']}/members/{current[0]['id']}/$ref"), "member remove")
    ok(api.post(f"groups/{group}/owners/$ref", ref(members[4]["id"])), "owner add")
    owners = ids(api, f"groups/{static[2]['id']}/owners")
    if len(owners) > 1:
        ok(api.delete(f"groups/{static[2]['id']}/owners/{owners[0]['id']}/$ref"), "owner remove")
    ok(api.patch(f"groups/{static[3]['id']}", {"description": "changed by delta"}), "group update")
    if guests:
        ok(api.post(f"users/{guests[0]['id']}/sponsors/$ref", ref(members[5]["id"])), "sponsor add")
    apps = ids(api, "applications", "id,displayName")
    ok(api.patch(f"applications/{apps[0]['id']}", {"displayName": "App Renamed"}), "application update")
    sps = ids(api, "servicePrincipals", "id,tags")
    ok(api.patch(f"servicePrincipals/{sps[0]['id']}", {"tags": ["delta"]}), "service principal update")
    grants = ids(api, "oauth2PermissionGrants", "id,scope")
    if grants:
        ok(api.patch(f"oauth2PermissionGrants/{grants[0]['id']}", {"scope": "User.Read openid"}), "grant update")
    return done


def synthetic_app() -> Emulator:
    seed = generate(parse_spec("users=400,groups=60,apps=24,deleted=4,seed=3"))
    return Emulator(SeedLoader(REGISTRY, seed, "synthetic").load())


@pytest.mark.parametrize("make", [lambda: Emulator(demo_tenant()), synthetic_app], ids=["demo", "synthetic"])
def test_a_delta_snapshot_gives_the_tree_a_full_read_gives(make: Any, tmp_path: Path) -> None:
    app = make()
    api = SyncGraph(app)
    store = StateRepo.open(tmp_path / "state", create=True)
    first = snapshot(app, store, 0)
    assert set(first.full_reasons) == DELTA_TYPES and not any(v == "delta" for v in first.read_by.values())
    assert set(store.backups()[0].delta) == DELTA_TYPES

    done = every_kind_of_change(api)
    assert {"create", "update", "soft delete", "hard delete", "member add", "owner add"} <= done
    second = snapshot(app, store, 1)
    assert {n for n, how in second.read_by.items() if how == "delta"} == DELTA_TYPES
    assert second.created_commit and second.change.added and second.change.removed
    assert second.backup.read_by["user"] == "delta"

    # The same tenant read in full finds nothing to commit: the delta tree was already exactly that.
    check = full_snapshot(app, store, 2)
    assert set(check.full_reasons.values()) == {"--full"}
    assert not check.created_commit, check.change
    assert tree_of(store, check.backup.commit) == tree_of(store, second.backup.commit)

    # And a third, by delta again after more changes, continues from the full one.
    api.patch(f"users/{ids(api, 'users')[7]['id']}", {"department": "Third"})
    third = snapshot(app, store, 3)
    assert third.read_by["user"] == "delta" and third.changes_by_type == {"user": (0, 1, 0)}
    assert not full_snapshot(app, store, 4).created_commit


def test_an_unchanged_tenant_reads_only_the_changes_and_commits_nothing(tmp_path: Path) -> None:
    app = Emulator(demo_tenant())
    store = StateRepo.open(tmp_path / "state", create=True)
    first = snapshot(app, store, 0)
    second = snapshot(app, store, 1)
    assert not second.created_commit
    assert second.stats.requests < first.stats.requests
    assert second.backup.commit == first.backup.commit


def test_an_expired_token_falls_back_to_a_full_read_and_says_so(tmp_path: Path) -> None:
    app = Emulator(demo_tenant())
    api = SyncGraph(app)
    store = StateRepo.open(tmp_path / "state", create=True)
    snapshot(app, store, 0)
    api.patch(f"users/{ids(api, 'users')[0]['id']}", {"displayName": "After Expiry"})
    app.delta_ttl = -1  # every token Graph handed out is past its lifetime now
    outcome = snapshot(app, store, 1)
    assert set(outcome.full_reasons) == DELTA_TYPES
    assert all(v == "full" for v in outcome.read_by.values())
    assert any("user read in full" in n and "refused the delta token" in n for n in outcome.notes)
    assert outcome.changes_by_type == {"user": (0, 1, 0)}
    app.delta_ttl = 3600
    assert snapshot(app, store, 2).read_by["user"] == "delta"  # the fallback recorded fresh links


def test_a_fresh_clone_continues_by_delta(tmp_path: Path) -> None:
    with served() as (url, app):
        api = SyncGraph(app)
        origin = tmp_path / "origin"
        assert run_main("snapshot", "--repo", origin, "--graph-url", url).returncode == 0
        clone = tmp_path / "clone"
        subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
        api.patch(f"users/{ids(api, 'users')[0]['id']}", {"displayName": "Seen From A Clone"})
        result = run_main("snapshot", "--repo", clone, "--graph-url", url)
        assert result.returncode == 0, result.stderr
        assert "Read by delta (only what changed since the last backup): " in result.stdout
        assert "user" in result.stdout.split("Read by delta")[1].splitlines()[0]
        full = run_main("snapshot", "--repo", clone, "--graph-url", url, "--full")
        assert full.returncode == 0, full.stderr
        assert "nothing changed since the last snapshot" in full.stdout
        assert "(--full)" in full.stdout


def test_a_stored_link_is_rebuilt_on_this_graph_from_its_token_alone() -> None:
    client = graph_client(Emulator(demo_tenant()))
    users = REGISTRY.get("user")
    url = continue_url(client, users, "https://attacker.example/v1.0/users/delta()?$deltatoken=abc123&$select=x")
    assert url == f"{client.base_url}/users/delta?$deltatoken=abc123"
    for bad in (
        "https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=abc",  # another type's link
        "https://graph.microsoft.com/v1.0/users/delta?$skiptoken=abc",  # no delta token
        "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=a%0Ab c",  # not a token's characters
    ):
        with pytest.raises(DeltaTokenRejected):
            continue_url(client, users, bad)
    run(client.aclose())


def test_a_link_recorded_by_another_schema_or_tool_is_not_continued() -> None:
    users = REGISTRY.get("user")
    made = Backup("backup/20261201T230000Z", T0, "0" * 40, None, None, True, {}, {})
    stale = Backup(
        made.name, T0, made.commit, None, None, True, {}, {}, delta={"user": DeltaLink("https://g/users/delta", "x")}
    )
    good = Backup(
        made.name, T0, made.commit, None, None, True, {}, {}, delta={"user": DeltaLink("l", type_basis(users))}
    )
    assert choose_bases([users], [made], full=False)[1] == {"user": "no backup holds its delta link yet"}
    assert "changed since" in choose_bases([users], [stale], full=False)[1]["user"]
    assert set(choose_bases([users], [good], full=False)[0]) == {"user"}
    assert choose_bases([users], [good], full=True)[1] == {"user": "--full"}


def test_copying_the_repository_keeps_what_delta_needs(tmp_path: Path) -> None:
    """Nothing outside git is needed: a copy of the repository (tags and all) continues by delta."""
    app = Emulator(demo_tenant())
    store = StateRepo.open(tmp_path / "a", create=True)
    snapshot(app, store, 0)
    shutil.copytree(tmp_path / "a", tmp_path / "b", symlinks=True)
    copied = StateRepo.open(tmp_path / "b")
    assert snapshot(app, copied, 1).read_by["group"] == "delta"


def test_diff_against_live_narrowed_by_blob_gives_the_report_a_full_parse_gives(tmp_path: Path) -> None:
    """`diff` parses only objects whose files differ by blob; its report is the one of a full parse and read."""
    from entra_gitops.report.diff import difference_report
    from entra_gitops.report.jsonout import render_json
    from entra_gitops.report.view import build_view, display_names
    from entra_gitops.state.sources import backup_source, live_state, load_source

    with served() as (url, app):
        api = SyncGraph(app)
        repo = tmp_path / "state"
        assert run_main("snapshot", "--repo", repo, "--graph-url", url).returncode == 0
        every_kind_of_change(api)
        narrowed = run_main("diff", "--repo", repo, "--graph-url", url, "--format", "json")
        assert narrowed.returncode == 2, narrowed.stderr
        store = StateRepo.open(repo)
        source = backup_source(store.resolve_backup("latest"))
        before = load_source(store, REGISTRY, source)
        after = run(_read(app, lambda client: live_state(client, REGISTRY, tuple(REGISTRY))))
        report = difference_report(REGISTRY, before, after, backup_name=source.label, against_name="the live tenant")
        full = render_json(build_view(report, display_names(report, before, after)))
    ours, theirs = json.loads(narrowed.stdout), json.loads(full)
    for document in (ours, theirs):
        document.pop("auditLog", None)
        for change in document["changes"]:
            _drop_changed_by(change)
    assert ours == theirs
    assert ours["compared"] == theirs["compared"] > 50


def _drop_changed_by(node: Any) -> None:
    if isinstance(node, dict):
        node.pop("changedBy", None)
        for value in node.values():
            _drop_changed_by(value)
    elif isinstance(node, list):
        for value in node:
            _drop_changed_by(value)


async def _read(app: Emulator, work: Any) -> Any:
    client = graph_client(app)
    try:
        return await work(client)
    finally:
        await client.aclose()


def test_a_row_with_only_link_changes_keeps_the_backups_properties() -> None:
    """Graph may send a group whose only change is its members as its id and `members@delta`."""
    from entra_gitops.graph.delta import DeltaChanges
    from entra_gitops.model import canonical
    from entra_gitops.state.gitstore import blob_id
    from entra_gitops.state.incremental import merged_tree

    groups = REGISTRY.get("group")
    gid, kept, added, dropped = (f"{n}0000000-0000-4000-8000-000000000000" for n in "1234")
    before = {"id": gid, "displayName": "Finance", "mailEnabled": False, "members": [dropped, kept]}
    path = f"tenant-state/groups/{gid}.yaml"
    changes = DeltaChanges(
        "group", {gid: {"id": gid}}, {(gid, "members"): {added: True, dropped: False}}, {}, "next", 1
    )
    tree = merged_tree(REGISTRY, groups, {path: blob_id(canonical.dump(before))}, {gid: before}, changes, {}, ())
    after = canonical.load(tree.files[path], path)
    assert after["displayName"] == "Finance" and after["mailEnabled"] is False
    assert after["members"] == sorted([kept, added])
    assert tree.live_ids == (gid,) and tree.next_link == "next"


def test_a_narrowed_diff_still_knows_an_unchanged_object_named_by_id(tmp_path: Path) -> None:
    with served() as (url, app):
        api = SyncGraph(app)
        repo = tmp_path / "state"
        assert run_main("snapshot", "--repo", repo, "--graph-url", url).returncode == 0
        users = [u["id"] for u in ids(api, "users", "id,onPremisesSyncEnabled") if not u.get("onPremisesSyncEnabled")]
        api.patch(f"users/{users[0]}", {"jobTitle": "Changed"})
        same = run_main("diff", "--repo", repo, "--graph-url", url, "--id", users[1])
        assert same.returncode == 0, same.stderr
        changed = run_main("diff", "--repo", repo, "--graph-url", url, "--id", users[0], "--format", "json")
        assert changed.returncode == 2, changed.stderr
        assert [c["id"] for c in json.loads(changed.stdout)["changes"]] == [users[0]]
        typo = run_main("diff", "--repo", repo, "--graph-url", url, "--id", "00000000-0000-4000-8000-0000000000ff")
        assert typo.returncode == 1 and "matches no object" in typo.stderr


def test_a_delta_round_that_removes_most_users_is_a_suspect_read(tmp_path: Path) -> None:
    """The shrink guard counts what the delta leaves live against the last backup, as for a full read."""
    from entra_gitops.model.settings import Config
    from entra_gitops.state.snapshot import IncompleteReadError, take_snapshot

    app = Emulator(demo_tenant())
    store = StateRepo.open(tmp_path / "state", create=True)
    snapshot(app, store, 0)
    before = git(store.root, "for-each-ref", "refs/")
    users = REGISTRY.get("user")
    for user in list(app.tenant.objects(users).values())[:-3]:
        app.tenant.delete(users, user["id"])

    async def again(accept: frozenset[str]) -> Any:
        client = graph_client(app)
        client.limiter.intervals.clear()
        try:
            return await take_snapshot(client, store, REGISTRY, tuple(REGISTRY), Config(), T0, accept_shrink=accept)
        finally:
            await client.aclose()

    # The deleted users' directory roles and eligibilities leave with them: only the users' shrink is in question.
    roles = frozenset({"unifiedRoleAssignment", "unifiedRoleEligibilityScheduleInstance"})
    with pytest.raises(IncompleteReadError, match="user: 3 read"):
        run(again(roles))
    assert git(store.root, "for-each-ref", "refs/") == before and store.dirty_state_files() == []
    accepted = run(again(roles | {"user"}))
    assert accepted.read_by["user"] == "delta" and accepted.backup.counts["user"] == 3


def test_a_sponsor_change_alone_is_found_and_only_that_guest_is_rendered(tmp_path: Path) -> None:
    # Graph's user delta does not report sponsors: the guests' list with sponsors expanded does, and a guest
    # whose file holds its sponsors already is neither parsed nor rendered again.
    from entra_gitops.state.incremental import read_current

    app = Emulator(demo_tenant())
    api = SyncGraph(app)
    store = StateRepo.open(tmp_path / "state", create=True)
    snapshot(app, store, 0)
    guests = ids(api, "users", "id,userType")
    guest = next(u["id"] for u in guests if u["userType"] == "Guest")
    member = next(u["id"] for u in guests if u["userType"] == "Member")
    assert api.post(f"users/{guest}/sponsors/$ref", ref(member)).status_code == 204
    user = REGISTRY.get("user")
    bases, _ = choose_bases((user,), store.backups(), full=False)
    current = with_graph(app, lambda c: read_current(c, store, REGISTRY, (user,), bases))
    live = [p for p in current.trees["user"].files if not p.startswith("tenant-state/deleted/")]  # read in full
    assert [p.rsplit("/", 1)[-1].removesuffix(".yaml") for p in live] == [guest]
    second = snapshot(app, store, 1)
    assert second.changes_by_type == {"user": (0, 1, 0)}
    assert member in git(store.root, "show", f"HEAD:tenant-state/users/{guest}.yaml")
    assert not full_snapshot(app, store, 2).created_commit


@pytest.mark.parametrize(
    "text,value",
    [
        (b"id: x\nsponsors:\n  - a\n  - b\nuserType: Guest\n", ["a", "b"]),
        (b"id: x\nuserType: Guest\nsponsors:\n  - a\n", ["a"]),
        (b"id: x\nuserType: Guest\n", None),
        (b"id: x\nnote: |\n  sponsors:\n  - fake\n", None),  # a line inside a value is not the key
    ],
)
def test_a_top_level_key_is_read_from_its_own_lines(text: bytes, value: Any) -> None:
    from entra_gitops.state.incremental import _file_value

    assert _file_value(text, "sponsors") == value
