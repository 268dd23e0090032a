"""Directory roles and administrative units around the whole loop, through the real CLI against the emulator over
HTTP: an intruder's Global Administrator grant found and removed, a removed assignment made again, a unit's members
and the unit itself put back, the role of a hard-deleted administrator re-created with the new account, and an
eligibility reported but never written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SyncGraph, run_main, served

from entra_gitops.emulator import Emulator

ASSIGNMENTS = "roleManagement/directory/roleAssignments"
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
DIRECTORY_READERS = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"
KJETIL = "d1432e72-b6b3-4cd3-9415-278d90c93c87"  # Kjetil Berg: no role in the demo tenant
SIRI = "2dba657d-376d-4637-8723-e630bafbe0f5"  # Siri Johansen, Head of IT: Global Administrator
INGRID = "612d7050-db34-4834-96a9-fc94a9c226a7"
OSLO = "5b3d1c9a-7e2f-4a8b-b6c4-0d9e1f2a3b4c"  # the Oslo office administrative unit: Lars, Kari and Kjetil


@pytest.fixture
def tenant(tmp_path: Path) -> Iterator[tuple[str, Emulator, SyncGraph, Path]]:
    """The demo tenant served, and a repository holding its first backup."""
    with served() as (url, app):
        repo = tmp_path / "state"
        taken = run_main("snapshot", "--repo", repo, "--graph-url", url)
        assert taken.returncode == 0, taken.stdout + taken.stderr
        yield url, app, SyncGraph(app), repo


def holders(api: SyncGraph, role: str) -> list[tuple[str, str]]:
    """(principal, scope) of every assignment of `role`, as Graph lists them."""
    listed = api.list_all(ASSIGNMENTS, params={"$filter": f"roleDefinitionId eq '{role}'"})
    return sorted((a["principalId"], a["directoryScopeId"]) for a in listed)


def plan(repo: Path, url: str, out: Path, *args: str) -> tuple[Any, dict[str, Any]]:
    made = run_main("plan", "--repo", repo, "--graph-url", url, "-o", out, *args)
    assert made.returncode == 0, made.stdout + made.stderr
    return made, json.loads(out.read_text())


def apply(repo: Path, url: str, plan_file: Path) -> None:
    applied = run_main("apply", plan_file, "--repo", repo, "--graph-url", url, "--auto-approve", "--format", "json")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert json.loads(applied.stdout)["status"] == "succeeded"


def clean(repo: Path, url: str) -> None:
    """The live tenant matches the backup again: `diff` finds nothing."""
    again = run_main("diff", "--repo", repo, "--graph-url", url)
    assert again.returncode == 0, again.stdout


def test_an_intruders_global_administrator_grant_is_found_and_removed(
    tmp_path: Path, tenant: tuple[str, Emulator, SyncGraph, Path]
) -> None:
    url, _, api, repo = tenant
    made = api.post(ASSIGNMENTS, {"principalId": KJETIL, "roleDefinitionId": GLOBAL_ADMIN, "directoryScopeId": "/"})
    assert made.status_code == 201, made.text
    grant = made.json()["id"]

    found = run_main("diff", "--repo", repo, "--graph-url", url)
    assert found.returncode == 2
    assert "+ unifiedRoleAssignment" in found.stdout and grant in found.stdout

    # Without --allow-delete the removal, which cannot be undone, is listed and not written.
    kept, document = plan(repo, url, tmp_path / "kept.json")
    assert document["writes"] == []
    assert grant in kept.stdout and "--allow-delete" in kept.stdout

    made, document = plan(repo, url, tmp_path / "plan.json", "--allow-delete")
    [write] = document["writes"]
    assert (write["step"], write["id"], write["irreversible"]) == ("delete", grant, True)
    assert "remove role assignment unifiedRoleAssignment" in made.stdout
    assert "1 remove role assignment" in made.stdout
    apply(repo, url, tmp_path / "plan.json")
    assert (KJETIL, "/") not in holders(api, GLOBAL_ADMIN)
    assert (SIRI, "/") in holders(api, GLOBAL_ADMIN)  # nothing else of the role was touched
    clean(repo, url)


def test_a_removed_role_assignment_is_made_again(tmp_path: Path, tenant: tuple[str, Emulator, SyncGraph, Path]) -> None:
    url, _, api, repo = tenant
    [siri] = [a for a in api.list_all(ASSIGNMENTS) if a["principalId"] == SIRI]
    assert api.delete(f"{ASSIGNMENTS}/{siri['id']}").status_code == 204
    assert (SIRI, "/") not in holders(api, GLOBAL_ADMIN)

    made, document = plan(repo, url, tmp_path / "plan.json")
    [write] = document["writes"]
    assert (write["step"], write["method"], write["path"]) == ("create", "POST", ASSIGNMENTS)
    assert write["body"] == {"principalId": SIRI, "roleDefinitionId": GLOBAL_ADMIN, "directoryScopeId": "/"}
    assert "+ re-create" in made.stdout
    apply(repo, url, tmp_path / "plan.json")
    assert (SIRI, "/") in holders(api, GLOBAL_ADMIN)
    clean(repo, url)


def members(api: SyncGraph, unit: str) -> set[str]:
    return {m["id"] for m in api.list_all(f"directory/administrativeUnits/{unit}/members")}


def test_an_administrative_units_members_and_name_are_put_back(
    tmp_path: Path, tenant: tuple[str, Emulator, SyncGraph, Path]
) -> None:
    url, _, api, repo = tenant
    before = members(api, OSLO)
    assert KJETIL in before and INGRID not in before
    assert api.delete(f"directory/administrativeUnits/{OSLO}/members/{KJETIL}/$ref").status_code == 204
    reference = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{INGRID}"}
    assert api.post(f"directory/administrativeUnits/{OSLO}/members/$ref", reference).status_code == 204
    assert api.patch(f"directory/administrativeUnits/{OSLO}", {"displayName": "Oslo"}).status_code == 204

    _, document = plan(repo, url, tmp_path / "plan.json")
    steps = sorted((w["step"], w.get("target")) for w in document["writes"])
    assert steps == [("addLink", KJETIL), ("removeLink", INGRID), ("update", None)]
    apply(repo, url, tmp_path / "plan.json")
    assert members(api, OSLO) == before
    assert api.get(f"directory/administrativeUnits/{OSLO}").json()["displayName"] == "Oslo office"
    clean(repo, url)


def test_a_soft_deleted_administrative_unit_is_restored_with_its_members(
    tmp_path: Path, tenant: tuple[str, Emulator, SyncGraph, Path]
) -> None:
    url, _, api, repo = tenant
    before = members(api, OSLO)
    assert api.delete(f"directory/administrativeUnits/{OSLO}").status_code == 204
    deleted = api.list_all("directory/deletedItems/microsoft.graph.administrativeUnit")
    assert [u["id"] for u in deleted] == [OSLO]

    made, document = plan(repo, url, tmp_path / "plan.json")
    assert [(w["step"], w["id"]) for w in document["writes"]] == [("restore", OSLO)]
    apply(repo, url, tmp_path / "plan.json")
    assert members(api, OSLO) == before
    clean(repo, url)


def test_the_role_of_a_hard_deleted_administrator_comes_back_with_the_account_re_created(
    tmp_path: Path, tenant: tuple[str, Emulator, SyncGraph, Path]
) -> None:
    url, _, api, repo = tenant
    assert api.delete(f"users/{SIRI}").status_code == 204
    assert (SIRI, "/") not in holders(api, GLOBAL_ADMIN)  # the assignment left with the account
    assert api.delete(f"directory/deletedItems/{SIRI}").status_code == 204  # and ends with its purge

    without, document = plan(repo, url, tmp_path / "without.json")
    assert not any(w["type"] == "unifiedRoleAssignment" for w in document["writes"])
    assert "permanently deleted" in without.stdout

    made, document = plan(repo, url, tmp_path / "plan.json", "--recreate")
    steps = [(w["step"], w["type"]) for w in document["writes"]]
    assert steps.index(("create", "user")) < steps.index(("create", "unifiedRoleAssignment"))
    assert f"{SIRI} → new id (re-created): sent with the id Graph gives it" in made.stdout
    applied = run_main(
        "apply", tmp_path / "plan.json", "--repo", repo, "--graph-url", url, "--auto-approve", "--format", "json"
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    new_ids = {r["backupId"]: r["newId"] for r in json.loads(applied.stdout)["recreated"]}
    assert (new_ids[SIRI], "/") in holders(api, GLOBAL_ADMIN)


def test_an_eligibility_is_reported_and_never_written(
    tmp_path: Path, tenant: tuple[str, Emulator, SyncGraph, Path]
) -> None:
    url, app, api, repo = tenant
    # Graph offers no write of an instance (only schedule requests make them): the change is made in the tenant.
    rtype = app.tenant.registry.get("unifiedRoleEligibilityScheduleInstance")
    [eligible] = [e for e in app.tenant.all_objects(rtype) if e["roleDefinitionId"] == GLOBAL_ADMIN]
    app.tenant.delete(rtype, eligible["id"])

    found = run_main("diff", "--repo", repo, "--graph-url", url)
    assert found.returncode == 2 and eligible["id"] in found.stdout
    made, document = plan(repo, url, tmp_path / "plan.json", "--allow-delete", "--recreate")
    assert document["writes"] == []
    assert "tracked, not recovered" in found.stdout


def test_a_privileged_grant_leads_every_rendering_and_names_the_drift_pull_request(
    tmp_path: Path, tenant: tuple[str, Emulator, SyncGraph, Path]
) -> None:
    url, _, api, repo = tenant
    for role in (GLOBAL_ADMIN, DIRECTORY_READERS):
        body = {"principalId": KJETIL, "roleDefinitionId": role, "directoryScopeId": "/"}
        assert api.post(ASSIGNMENTS, body).status_code == 201
    assert api.patch(f"users/{INGRID}", {"department": "Board"}).status_code == 204

    text = run_main("diff", "--repo", repo, "--graph-url", url).stdout
    assert "1 privileged role change(s), shown first." in text
    blocks = [b for b in text.split("\n\n") if b.startswith(("+ ", "~ ", "- "))]
    assert blocks[0].startswith("+ unifiedRoleAssignment [privileged]") and GLOBAL_ADMIN[:8] not in blocks[1][:40]
    assert sum("[privileged]" in b for b in blocks) == 1  # Directory Readers is not a privileged role

    document = json.loads(run_main("diff", "--repo", repo, "--graph-url", url, "--format", "json").stdout)
    flagged = [c for c in document["changes"] if c["privileged"]]
    assert len(flagged) == 1 and document["changes"][0] == flagged[0]
    html = run_main("diff", "--repo", repo, "--graph-url", url, "--format", "html").stdout
    assert "unifiedRoleAssignment [privileged]" in html

    # The drift pull request's title is chosen by the marker the markdown report carries.
    markdown = run_main("diff", "--repo", repo, "--graph-url", url, "--format", "markdown").stdout
    steps = (Path(__file__).parents[1] / "entra_gitops/templates/workflows/snapshot-steps.yml").read_text()
    marker = "privileged role change(s), shown first"
    assert f'grep -qF "{marker}"' in steps and 'title="Privileged role change: $title"' in steps
    assert marker in markdown and "unifiedRoleAssignment &#91;privileged&#93;" in markdown
