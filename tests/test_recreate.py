"""plan --recreate: users and groups gone from Graph created again from the backup with new ids, every reference
moved to the new id, a password nobody ever sees, and a killed apply that never creates an object twice."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SyncGraph, run_main, served

from entra_gitops.emulator import Emulator
from entra_gitops.emulator.limits import Faults, parse_faults
from entra_gitops.recovery.plan import compute_checksum

BREAK_GLASS = "18154ee0-756e-4a9e-8da1-d5e27f3383a8"  # breakglass01, excluded by id from the blocking policies
EXCLUSIONS = "28ba6f52-29a9-4498-8d6d-fc0725b6cdcf"  # SG-CA-Exclusions-BreakGlass, breakglass01 a member
UPN = "breakglass01@contoso.onmicrosoft.com"


@pytest.fixture
def tenant() -> Iterator[tuple[str, Emulator, SyncGraph]]:
    with served() as (url, app):
        yield url, app, SyncGraph(app)


def hard_delete(api: SyncGraph, kind: str, object_id: str) -> None:
    """Delete, then purge from deleted items: what no restore can bring back."""
    assert api.delete(f"{kind}/{object_id}").status_code == 204
    assert api.delete(f"directory/deletedItems/{object_id}").status_code == 204
    assert api.get(f"directory/deletedItems/{object_id}").status_code == 404


def policies_excluding(api: SyncGraph, user_id: str) -> list[str]:
    policies = api.get("identity/conditionalAccess/policies").json()["value"]
    return sorted(p["id"] for p in policies if user_id in p["conditions"]["users"]["excludeUsers"])


def members(api: SyncGraph, group_id: str) -> set[str]:
    return {m["id"] for m in api.get(f"groups/{group_id}/members", params={"$select": "id"}).json()["value"]}


def plan(repo: Path, url: str, out: Path, *args: str) -> Any:
    made = run_main("plan", "--repo", repo, "--graph-url", url, "-o", out, *args)
    return made


def test_a_hard_deleted_break_glass_account_comes_back_in_its_group_and_its_policies_exclusions(
    tmp_path: Path, tenant: tuple[str, Emulator, SyncGraph]
) -> None:
    url, app, api = tenant
    repo = tmp_path / "state"
    assert run_main("snapshot", "--repo", repo, "--graph-url", url).returncode == 0
    excluded_by = policies_excluding(api, BREAK_GLASS)
    assert excluded_by and BREAK_GLASS in members(api, EXCLUSIONS)
    hard_delete(api, "users", BREAK_GLASS)
    assert BREAK_GLASS not in members(api, EXCLUSIONS)

    without = plan(repo, url, tmp_path / "without.json")
    assert "permanently deleted: a restore cannot bring it back; plan --recreate creates it again" in without.stdout
    assert not any(w["step"] == "create" for w in json.loads((tmp_path / "without.json").read_text())["writes"])

    made = plan(repo, url, tmp_path / "plan.json", "--recreate")
    assert made.returncode == 0, made.stdout + made.stderr
    document = json.loads((tmp_path / "plan.json").read_text())
    assert document["options"]["recreate"] is True
    steps = [(w["step"], w["type"], w["id"]) for w in document["writes"]]
    assert steps[0] == ("create", "user", BREAK_GLASS)
    assert ("addLink", "group", EXCLUSIONS) in steps
    assert {i for s, t, i in steps if s == "update" and t == "conditionalAccessPolicy"} == set(excluded_by)
    create = document["writes"][0]
    assert create["body"]["userPrincipalName"] == UPN
    assert create["body"]["passwordProfile"] == {"forceChangePasswordNextSignIn": True}  # no password in the plan
    assert "re-created from the backup, where its id was " + BREAK_GLASS in made.stdout
    assert f"add {BREAK_GLASS} → new id (re-created)" in made.stdout
    assert "the user must reset it" in made.stdout

    applied = run_main(
        "apply", tmp_path / "plan.json", "--repo", repo, "--graph-url", url, "--auto-approve", "--format", "json"
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    report = json.loads(applied.stdout)
    assert report["status"] == "succeeded", report["warnings"]
    [recreated] = report["recreated"]
    new_id = recreated["newId"]
    assert recreated == {"type": "user", "backupId": BREAK_GLASS, "newId": new_id} and new_id != BREAK_GLASS

    user = api.get(f"users/{new_id}", params={"$select": "userPrincipalName,accountEnabled"}).json()
    assert user["userPrincipalName"] == UPN and user["accountEnabled"] is True
    assert new_id in members(api, EXCLUSIONS)
    assert policies_excluding(api, new_id) == excluded_by
    assert policies_excluding(api, BREAK_GLASS) == []  # the old id is gone from every exclusion
    history = next((repo / "history").glob("*.yaml")).read_text()
    assert f"backupId: {BREAK_GLASS}" in history and f"newId: {new_id}" in history

    # The password was sent once and kept by nothing: not by the plan, the journal, history or the repository.
    password = app.tenant.last_password(new_id)
    assert password is not None and len(password) >= 16
    for path in (*repo.rglob("*"), *tmp_path.glob("*.json")):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    assert password not in applied.stdout + applied.stderr

    # The next snapshot tells the re-created account from a new one: in its report, its JSON and its commit.
    after = run_main("snapshot", "--repo", repo, "--graph-url", url)
    assert after.returncode == 0, after.stdout + after.stderr
    backup = document["backup"]["tag"]
    said = f"user {BREAK_GLASS} re-created from {backup} as {new_id}"
    assert said in after.stdout
    assert said in git(repo, "log", "-1", "--format=%B")
    again = run_main("snapshot", "--repo", repo, "--graph-url", url, "--format", "json")
    assert json.loads(again.stdout)["recreated"] == []  # said once, by the snapshot that first holds it


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def upn_holders(api: SyncGraph) -> list[str]:
    found = api.get("users", params={"$filter": f"userPrincipalName eq '{UPN}'", "$select": "id"}).json()["value"]
    return [u["id"] for u in found]


def journal_entries(repo: Path) -> list[dict[str, Any]]:
    [path] = (repo / ".git" / "entra-gitops" / "journal").glob("*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def recreation_planned(tmp_path: Path, url: str, api: SyncGraph) -> Path:
    """A backup, the break-glass account hard-deleted since, and the plan that re-creates it saved: the repo."""
    repo = tmp_path / "state"
    assert run_main("snapshot", "--repo", repo, "--graph-url", url).returncode == 0
    hard_delete(api, "users", BREAK_GLASS)
    made = plan(repo, url, tmp_path / "plan.json", "--recreate")
    assert made.returncode == 0, made.stdout + made.stderr
    return repo


def apply(repo: Path, url: str, plan_file: Path, *args: str) -> Any:
    return run_main("apply", plan_file, "--repo", repo, "--graph-url", url, "--auto-approve", *args)


def recreated_by_apply(repo: Path, url: str, tmp_path: Path) -> dict[str, str]:
    """plan --recreate, then its apply, each succeeding: backup id -> the new id of every object re-created."""
    made = plan(repo, url, tmp_path / "plan.json", "--recreate")
    assert made.returncode == 0, made.stdout + made.stderr
    applied = apply(repo, url, tmp_path / "plan.json", "--format", "json")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    report = json.loads(applied.stdout)
    assert report["status"] == "succeeded", report["warnings"]
    return {r["backupId"]: r["newId"] for r in report["recreated"]}


def test_an_answer_lost_after_the_create_is_found_by_its_name_and_never_created_twice(
    tmp_path: Path, tenant: tuple[str, Emulator, SyncGraph]
) -> None:
    url, app, api = tenant
    repo = recreation_planned(tmp_path, url, api)
    # Graph makes the user, but the answer never arrives (a gateway timeout after the commit).
    app.faults = Faults(parse_faults("504,after-commit,method=POST,path=users,first=1"))
    applied = apply(repo, url, tmp_path / "plan.json")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    [new_id] = upn_holders(api)
    events = [(e["write"], e["event"], e.get("created")) for e in journal_entries(repo) if e["write"] == 0]
    assert events == [(0, "sent", None), (0, "confirmed", {BREAK_GLASS: new_id})]
    assert new_id in members(api, EXCLUSIONS) and policies_excluding(api, new_id)


def test_an_apply_stopped_after_the_create_continues_with_the_new_id(
    tmp_path: Path, tenant: tuple[str, Emulator, SyncGraph]
) -> None:
    url, app, api = tenant
    repo = recreation_planned(tmp_path, url, api)
    app.faults = Faults(parse_faults("403,method=POST,path=groups/*/members/$ref"))
    stopped = apply(repo, url, tmp_path / "plan.json")
    assert stopped.returncode == 1 and "partiallyApplied" in stopped.stdout
    [new_id] = upn_holders(api)
    assert new_id not in members(api, EXCLUSIONS)
    app.faults = None
    resumed = apply(repo, url, tmp_path / "plan.json", "--format", "json")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert upn_holders(api) == [new_id]  # not created twice: the journal held its id
    assert new_id in members(api, EXCLUSIONS)
    assert json.loads(resumed.stdout)["recreated"] == [{"type": "user", "backupId": BREAK_GLASS, "newId": new_id}]


def test_a_failed_re_creation_sends_nothing_that_names_it(
    tmp_path: Path, tenant: tuple[str, Emulator, SyncGraph]
) -> None:
    url, app, api = tenant
    repo = recreation_planned(tmp_path, url, api)
    app.faults = Faults(parse_faults("400,method=POST,path=users"))
    failed = apply(repo, url, tmp_path / "plan.json")
    assert failed.returncode == 1
    assert f"not sent: it names {BREAK_GLASS}, whose re-creation did not succeed" in failed.stderr
    assert upn_holders(api) == [] and BREAK_GLASS not in members(api, EXCLUSIONS)
    assert not any("excludeUsers" in str(e) for e in journal_entries(repo))


def test_apply_refuses_a_re_creation_in_a_plan_not_made_with_recreate(
    tmp_path: Path, tenant: tuple[str, Emulator, SyncGraph]
) -> None:
    url, _, api = tenant
    repo = recreation_planned(tmp_path, url, api)
    document = json.loads((tmp_path / "plan.json").read_text())
    del document["options"]["recreate"]
    document["checksum"] = compute_checksum(document)  # a forger recomputes it: the step itself is refused
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    refused = apply(repo, url, forged)
    assert refused.returncode == 1
    assert "the plan was not made with --recreate" in refused.stderr
    assert upn_holders(api) == []


def test_a_hard_deleted_group_comes_back_with_its_members_owners_and_policies(
    tmp_path: Path, tenant: tuple[str, Emulator, SyncGraph]
) -> None:
    url, _, api = tenant
    repo = tmp_path / "state"
    assert run_main("snapshot", "--repo", repo, "--graph-url", url).returncode == 0
    before = members(api, EXCLUSIONS)
    owners = {o["id"] for o in api.get(f"groups/{EXCLUSIONS}/owners").json()["value"]}
    policies = api.get("identity/conditionalAccess/policies").json()["value"]
    using = sorted(p["id"] for p in policies if EXCLUSIONS in p["conditions"]["users"]["excludeGroups"])
    assert before and owners and using
    hard_delete(api, "groups", EXCLUSIONS)
    [new_id] = recreated_by_apply(repo, url, tmp_path).values()
    assert members(api, new_id) == before
    assert {o["id"] for o in api.get(f"groups/{new_id}/owners").json()["value"]} == owners
    policies = api.get("identity/conditionalAccess/policies").json()["value"]
    assert sorted(p["id"] for p in policies if new_id in p["conditions"]["users"]["excludeGroups"]) == using
    assert not any(EXCLUSIONS in p["conditions"]["users"]["excludeGroups"] for p in policies)


def test_the_lockout_guard_judges_the_plan_with_the_re_created_account(
    tmp_path: Path, tenant: tuple[str, Emulator, SyncGraph]
) -> None:
    url, _, api = tenant
    repo = tmp_path / "state"
    assert run_main("snapshot", "--repo", repo, "--graph-url", url).returncode == 0
    config = repo / "entra-gitops.yaml"
    config.write_text(config.read_text() + f"\nbreakGlass:\n  - {UPN}\n")
    subprocess.run(["git", "-C", str(repo), "commit", "-qam", "Name the break-glass account"], check=True)
    hard_delete(api, "users", BREAK_GLASS)
    without = plan(repo, url, tmp_path / "without.json")
    assert f"break-glass account {UPN} ({BREAK_GLASS}) would be locked out of every cloud app: account deleted" in (
        without.stdout
    )
    assert "plan --recreate creates it again, with a new id" in without.stdout
    made = plan(repo, url, tmp_path / "plan.json", "--recreate")
    assert made.returncode == 0, made.stdout + made.stderr
    assert "Warnings:" not in made.stdout  # the account is back, in its group and its policies' exclusions
    document = json.loads((tmp_path / "plan.json").read_text())
    assert not document.get("refusals") and not document["warnings"]
    assert BREAK_GLASS in document["breakGlass"]  # the account, by the id the plan knows it by


POLICY = "a7b93650-11ae-48d8-81ae-a83efe1cce53"  # CA004 - Block access outside allowed countries, enabled
LOCATION = "af215a8b-f646-46b8-8c2a-b7c2adc28ada"  # Allowed countries, which only CA004 names
POLICIES, LOCATIONS = "identity/conditionalAccess/policies", "identity/conditionalAccess/namedLocations"


def purge_policy_item(api: SyncGraph, collection: str, kind: str, object_id: str) -> None:
    """A Conditional Access policy or named location deleted, then purged from Conditional Access's deleted items."""
    assert api.delete(f"{collection}/{object_id}").status_code == 204
    assert api.delete(f"identity/conditionalAccess/deletedItems/{kind}/{object_id}").status_code == 204


def test_a_hard_deleted_policy_and_its_location_come_back_the_policy_enforced_last(
    tmp_path: Path, tenant: tuple[str, Emulator, SyncGraph]
) -> None:
    url, _, api = tenant
    repo = tmp_path / "state"
    assert run_main("snapshot", "--repo", repo, "--graph-url", url).returncode == 0
    was = api.get(f"{POLICIES}/{POLICY}").json()
    assert was["state"] == "enabled" and LOCATION in was["conditions"]["locations"]["excludeLocations"]
    countries = api.get(f"{LOCATIONS}/{LOCATION}").json()["countriesAndRegions"]
    purge_policy_item(api, POLICIES, "policies", POLICY)
    purge_policy_item(api, LOCATIONS, "namedLocations", LOCATION)

    made = plan(repo, url, tmp_path / "plan.json", "--recreate")
    assert made.returncode == 0, made.stdout + made.stderr
    writes = json.loads((tmp_path / "plan.json").read_text())["writes"]
    steps = [(w["step"], w["type"], w["id"]) for w in writes]
    # The location first (the policy names it), the policy created disabled, and enabled only after every create.
    assert steps.index(("create", "namedLocation", LOCATION)) < steps.index(
        ("create", "conditionalAccessPolicy", POLICY)
    )
    create = next(w for w in writes if w["step"] == "create" and w["id"] == POLICY)
    assert create["body"]["state"] == "disabled"
    switch = next(w for w in writes if w["step"] == "update" and w["id"] == POLICY)
    assert switch["changes"] == [{"name": "state", "now": "disabled", "after": "enabled"}]
    assert steps.index(("update", "conditionalAccessPolicy", POLICY)) > max(
        i for i, s in enumerate(steps) if s[0] == "create"
    )

    applied = apply(repo, url, tmp_path / "plan.json", "--format", "json")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    report = json.loads(applied.stdout)
    assert report["status"] == "succeeded", report["warnings"]
    new = {r["backupId"]: r["newId"] for r in report["recreated"]}
    assert set(new) == {POLICY, LOCATION}
    policy = api.get(f"{POLICIES}/{new[POLICY]}").json()
    assert policy["state"] == "enabled" and policy["displayName"] == was["displayName"]
    assert new[LOCATION] in policy["conditions"]["locations"]["excludeLocations"]
    assert LOCATION not in policy["conditions"]["locations"]["excludeLocations"]

    def set_parts(users: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in users.items() if v}  # Graph states an empty condition as [] or null, or not at all

    assert set_parts(policy["conditions"]["users"]) == set_parts(was["conditions"]["users"])
    location = api.get(f"{LOCATIONS}/{new[LOCATION]}").json()
    assert location["@odata.type"] == "#microsoft.graph.countryNamedLocation"
    assert sorted(location["countriesAndRegions"]) == sorted(countries)


def test_a_deleted_custom_authentication_strength_comes_back_with_the_policy_that_requires_it(
    tmp_path: Path, tenant: tuple[str, Emulator, SyncGraph]
) -> None:
    url, _, api = tenant
    guests, strength = "0aaf99e9-32f8-42a5-8330-194ce7f92aae", "995de142-5c3c-42b6-86b8-8c800a17d889"
    repo = tmp_path / "state"
    assert run_main("snapshot", "--repo", repo, "--graph-url", url).returncode == 0
    was = api.get(f"policies/authenticationStrengthPolicies/{strength}").json()
    purge_policy_item(api, POLICIES, "policies", guests)
    assert api.delete(f"policies/authenticationStrengthPolicies/{strength}").status_code == 204  # no soft delete
    new = recreated_by_apply(repo, url, tmp_path)
    assert set(new) == {guests, strength}
    again = api.get(f"policies/authenticationStrengthPolicies/{new[strength]}").json()
    assert sorted(again["allowedCombinations"]) == sorted(was["allowedCombinations"])
    policy = api.get(f"{POLICIES}/{new[guests]}").json()
    assert policy["grantControls"]["authenticationStrength"]["id"] == new[strength]
    assert policy["state"] == "disabled"  # as in the backup: no switch was needed


HR_APP, HR_SP = "1bf1bd69-7184-45f0-a07a-4bd318e98c81", "e0cfb4b7-8b9b-45eb-ad1a-3a89e308d451"  # Contoso HR Portal
GRAPH_SP = "8d6e4a90-b82f-42e5-817c-c6b770a4621f"
CLI_SP, CLI_APP_ID = "2b5b44ed-7e3d-4ede-9da5-cb98d440f7cc", "14d82eec-204b-4c2f-b7e8-296a70dab67e"  # Microsoft's


def assignments(api: SyncGraph, resource: str) -> list[tuple[str, str]]:
    found = api.get(f"servicePrincipals/{resource}/appRoleAssignedTo").json()["value"]
    return sorted((a["principalId"], a["appRoleId"]) for a in found)


def admin_grants(api: SyncGraph, client: str) -> list[tuple[str, str]]:
    found = api.get("oauth2PermissionGrants", params={"$filter": f"clientId eq '{client}'"}).json()["value"]
    return sorted((g["resourceId"], g["scope"]) for g in found if g["consentType"] == "AllPrincipals")


def test_a_hard_deleted_service_principal_comes_back_with_its_assignments_and_grants(
    tmp_path: Path, tenant: tuple[str, Emulator, SyncGraph]
) -> None:
    url, _, api = tenant
    repo = tmp_path / "state"
    assert run_main("snapshot", "--repo", repo, "--graph-url", url).returncode == 0
    assigned, granted = assignments(api, HR_SP), admin_grants(api, HR_SP)
    assert assigned and granted
    hard_delete(api, "servicePrincipals", HR_SP)
    hard_delete(api, "servicePrincipals", CLI_SP)  # Microsoft's app: a principal made again by its appId
    new = recreated_by_apply(repo, url, tmp_path)
    assert set(new) == {HR_SP, CLI_SP}
    assert assignments(api, new[HR_SP]) == assigned
    assert admin_grants(api, new[HR_SP]) == granted
    cli = api.get(f"servicePrincipals/{new[CLI_SP]}").json()
    assert (
        cli["appId"] == CLI_APP_ID and cli["appOwnerOrganizationId"] != api.get("organization").json()["value"][0]["id"]
    )


def test_a_hard_deleted_application_comes_back_with_a_new_app_id_its_principal_and_roles(
    tmp_path: Path, tenant: tuple[str, Emulator, SyncGraph]
) -> None:
    url, _, api = tenant
    repo = tmp_path / "state"
    assert run_main("snapshot", "--repo", repo, "--graph-url", url).returncode == 0
    old_app_id = api.get(f"applications/{HR_APP}").json()["appId"]
    roles = sorted(r["id"] for r in api.get(f"applications/{HR_APP}").json()["appRoles"])
    assigned = assignments(api, HR_SP)
    hard_delete(api, "servicePrincipals", HR_SP)
    hard_delete(api, "applications", HR_APP)
    made = plan(repo, url, tmp_path / "plan.json", "--recreate")
    assert made.returncode == 0, made.stdout + made.stderr
    assert "a new appId" in made.stdout
    applied = apply(repo, url, tmp_path / "plan.json", "--format", "json")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    new = {r["backupId"]: r["newId"] for r in json.loads(applied.stdout)["recreated"]}
    app = api.get(f"applications/{new[HR_APP]}").json()
    assert app["appId"] != old_app_id and sorted(r["id"] for r in app["appRoles"]) == roles
    principal = api.get(f"servicePrincipals/{new[HR_SP]}").json()
    assert principal["appId"] == app["appId"]  # the principal of the new application, not of the old appId
    assert assignments(api, new[HR_SP]) == assigned
    journal = "\n".join(json.dumps(e) for e in journal_entries(repo))
    assert old_app_id in journal and app["appId"] in journal  # a rerun would send with the new appId too


def test_history_names_only_the_re_creations_since_the_last_backup_of_their_type() -> None:
    import datetime as dt

    from entra_gitops.state.history import History, recreated_in

    def record(finished: object, *entries: object) -> dict[str, Any]:
        return {
            "id": f"r-{finished}",
            "backup": "backup/20261201T030000Z",
            "finished": finished,
            "recreated": list(entries),
        }

    user = {"type": "user", "backupId": BREAK_GLASS, "newId": "6F1C0B9E-2D4A-4C3B-9A8E-7D6C5B4A3F21"}
    group = {"type": "group", "backupId": EXCLUSIONS, "newId": "0b6f"}
    history = History(
        (
            record("2026-12-02T10:00:00.500Z", user, group, "damaged", {"type": "user"}),
            record("2026-12-01T10:00:00Z", {**user, "newId": "old"}),
            record("not a time", {**user, "newId": "unknown"}),
        ),
        (),
    )
    last = dt.datetime(2026, 12, 2, 9, tzinfo=dt.UTC)
    found = history.recreations({"user": last, "group": None})
    assert [(r.type_name, r.new_id, r.record) for r in found] == [
        ("user", "6F1C0B9E-2D4A-4C3B-9A8E-7D6C5B4A3F21", "r-2026-12-02T10:00:00.500Z"),
        ("group", "0b6f", "r-2026-12-02T10:00:00.500Z"),
    ]
    assert history.recreations({"group": dt.datetime(2026, 12, 3, tzinfo=dt.UTC)}) == ()  # and users not in scope
    # Only the objects the snapshot adds, ids compared as Graph does (GUIDs without regard to case).
    assert recreated_in(found, {"user": frozenset({"6f1c0b9e-2d4a-4c3b-9a8e-7d6c5b4a3f21"})}) == found[:1]
