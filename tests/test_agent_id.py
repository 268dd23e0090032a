"""Microsoft Entra Agent ID: agent objects are kinds of their base types (x-entra-graph.kinds), served by the emulator
with their @odata.type, kept in the snapshot with their own properties, shown as their kind in difference reports, and
recovered as their base types are. The real CLI (click's runner, in process) against the emulator over loopback HTTP.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from conftest import demo_tenant

from entra_gitops.cli.main import cli
from entra_gitops.emulator import Emulator
from entra_gitops.emulator.server import serving
from entra_gitops.model import canonical
from entra_gitops.model.registry import default_registry
from entra_gitops.model.tenant import Lifecycle, ObjectState
from entra_gitops.report.diff import Action, ChangeKind, DifferenceReport, ObjectChange, ReportScope, compare_objects
from entra_gitops.report.html import render_html
from entra_gitops.report.markdown import render_markdown
from entra_gitops.report.view import build_view

BLUEPRINT = "abdc0c6b-e40a-4a77-9d0d-65aa779bfe31"
BLUEPRINT_APP_ID = "c9222d03-63b4-4363-9f67-0a7a2ab31516"
PRINCIPAL = "1b4fd25b-b02b-49f3-8f52-5ddfa0240b0e"
IDENTITY = "8e5236ac-8746-4c4a-b7fc-868a5ac008ab"
AGENT_USER = "ca3094dc-8cdb-4117-8080-adcffb0cb893"
SOFIA = "a2845319-a7dc-449d-887b-ebffeff099e7"
GRAPH_SP = "8d6e4a90-b82f-42e5-817c-c6b770a4621f"
KARI = "b4c45912-fe49-436c-a90e-b5df519c7319"
TYPES = ("--type", "user", "--type", "servicePrincipal", "--type", "application")
SPONSOR = {"sponsors@odata.bind": [f"https://graph.microsoft.com/v1.0/users/{SOFIA}"]}


def run(*args: Any) -> Result:
    """The real command line, in process."""
    return CliRunner().invoke(cli, [str(a) for a in args])


class Graph:
    """Plain HTTP to the emulator, as an administrator or a script sees it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url + "/", timeout=30, headers={"Authorization": "Bearer local"})

    def __call__(self, method: str, path: str, body: Any = None, **params: str) -> httpx.Response:
        return self.http.request(method, path, json=body, params=params)

    def ok(self, method: str, path: str, body: Any = None, **params: str) -> dict[str, Any]:
        response = self(method, path, body, **params)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else {}


@pytest.fixture
def graph() -> Iterator[Graph]:
    with serving(Emulator(demo_tenant())) as url:
        client = Graph(url)
        try:
            yield client
        finally:
            client.http.close()


def kinds(listing: dict[str, Any]) -> dict[str, str | None]:
    return {item["id"]: item.get("@odata.type") for item in listing["value"]}


# -- the emulator -------------------------------------------------------------------------------------------------


def test_the_plain_lists_tag_agent_objects_with_their_odata_type(graph: Graph) -> None:
    for select in ({}, {"$select": "id,displayName"}):
        principals = kinds(graph.ok("GET", "servicePrincipals", **select))
        assert principals[IDENTITY] == "#microsoft.graph.agentIdentity"
        assert principals[PRINCIPAL] == "#microsoft.graph.agentIdentityBlueprintPrincipal"
        assert principals[GRAPH_SP] is None  # a plain service principal states no type in a list
        assert kinds(graph.ok("GET", "applications", **select))[BLUEPRINT] == "#microsoft.graph.agentIdentityBlueprint"
        users = kinds(graph.ok("GET", "users", **select))
        assert users[AGENT_USER] == "#microsoft.graph.agentUser" and users[KARI] is None
    one = graph.ok("GET", f"users/{AGENT_USER}", **{"$select": "id,identityParentId"})
    assert one["@odata.type"] == "#microsoft.graph.agentUser" and one["identityParentId"] == IDENTITY
    identity = graph.ok("GET", f"servicePrincipals/{IDENTITY}", **{"$select": "id,agentIdentityBlueprintId"})
    assert identity["agentIdentityBlueprintId"] == BLUEPRINT_APP_ID
    sponsors = graph.ok("GET", f"users/{AGENT_USER}/sponsors")["value"]
    assert [(s["@odata.type"], s["id"]) for s in sponsors] == [("#microsoft.graph.user", SOFIA)]


def test_the_casts_address_only_their_kind(graph: Graph) -> None:
    assert list(kinds(graph.ok("GET", "servicePrincipals/microsoft.graph.agentIdentity"))) == [IDENTITY]
    assert list(kinds(graph.ok("GET", "applications/graph.agentIdentityBlueprint"))) == [BLUEPRINT]
    got = graph.ok("GET", f"servicePrincipals/{IDENTITY}/microsoft.graph.agentIdentity")
    assert got["id"] == IDENTITY and got["@odata.context"].endswith(
        "#servicePrincipals/microsoft.graph.agentIdentity/$entity"
    )
    assert graph.ok("GET", f"users/microsoft.graph.agentUser/{AGENT_USER}")["id"] == AGENT_USER
    assert graph("GET", f"servicePrincipals/{GRAPH_SP}/microsoft.graph.agentIdentity").status_code == 404
    assert graph("GET", f"users/microsoft.graph.agentUser/{KARI}").status_code == 404


def test_agent_objects_are_created_as_graph_documents_and_refused_as_it_refuses(graph: Graph) -> None:
    cast = "servicePrincipals/microsoft.graph.agentIdentity"
    unknown = graph("POST", cast, {"displayName": "X", "agentIdentityBlueprintId": KARI, **SPONSOR})
    assert unknown.status_code == 400 and "is not the appId of an agent identity blueprint" in unknown.text
    unsponsored = graph("POST", cast, {"displayName": "X", "agentIdentityBlueprintId": BLUEPRINT_APP_ID})
    assert unsponsored.status_code == 400 and "sponsor" in unsponsored.text
    body = {"displayName": "Contoso Sales Agent (Baltics)", "agentIdentityBlueprintId": BLUEPRINT_APP_ID, **SPONSOR}
    created = graph.ok("POST", cast, body)
    assert created["@odata.type"] == "#microsoft.graph.agentIdentity"
    assert created["servicePrincipalType"] == "ServiceIdentity" and "sponsors@odata.bind" not in created
    assert kinds(graph.ok("GET", "servicePrincipals"))[created["id"]] == "#microsoft.graph.agentIdentity"

    immutable = graph("PATCH", f"servicePrincipals/{IDENTITY}", {"agentIdentityBlueprintId": BLUEPRINT_APP_ID})
    assert immutable.status_code == 400 and "agentIdentityBlueprintId" in immutable.text
    retyped = {"@odata.type": "#microsoft.graph.agentIdentityBlueprintPrincipal"}
    assert graph("PATCH", f"servicePrincipals/{IDENTITY}", retyped).status_code == 400

    user = {"accountEnabled": True, "displayName": "Baltics Agent", "mailNickname": "BalticsAgent"}
    user |= {"userPrincipalName": "balticsagent@contoso.com", "identityParentId": created["id"]}
    made = graph.ok("POST", "users", {"@odata.type": "microsoft.graph.agentUser", **user})
    assert made["@odata.type"] == "#microsoft.graph.agentUser"
    second = graph("POST", "users/microsoft.graph.agentUser", {**user, "userPrincipalName": "other@contoso.com"})
    assert second.status_code == 400 and "already has an agent user" in second.text
    parentless = {**user, "userPrincipalName": "orphan@contoso.com", "identityParentId": GRAPH_SP}
    orphan = graph("POST", "users/microsoft.graph.agentUser", parentless)
    assert orphan.status_code == 400 and "is not an agent identity" in orphan.text

    # agentuser-update: the body of an agent user's PATCH states its type.
    untyped = graph("PATCH", f"users/{AGENT_USER}", {"department": "Sales Nordics"})
    assert untyped.status_code == 400 and "#microsoft.graph.agentUser" in untyped.text
    typed = {"@odata.type": "#microsoft.graph.agentUser"}
    graph.ok("PATCH", f"users/{AGENT_USER}", {**typed, "department": "Nordics"})
    assert graph("PATCH", f"users/{AGENT_USER}", {**typed, "identityParentId": None}).status_code == 400  # immutable
    assert graph("PATCH", f"users/{KARI}", {**typed, "city": "Oslo"}).status_code == 400  # a type never changes


def test_a_deleted_agent_user_is_listed_and_restored_as_one(graph: Graph) -> None:
    graph.ok("DELETE", f"users/{AGENT_USER}")
    deleted = kinds(graph.ok("GET", "directory/deletedItems/microsoft.graph.user"))
    assert deleted[AGENT_USER] == "#microsoft.graph.agentUser"
    restored = graph.ok("POST", f"directory/deletedItems/{AGENT_USER}/restore")
    assert restored["@odata.type"] == "#microsoft.graph.agentUser"
    assert [s["id"] for s in graph.ok("GET", f"users/{AGENT_USER}/sponsors")["value"]] == [SOFIA]


# -- snapshot, diff and recovery ----------------------------------------------------------------------------------


def state_file(repo: Path, folder: str, object_id: str) -> dict[str, Any]:
    path = repo / "tenant-state" / folder / f"{object_id}.yaml"
    return canonical.load(path.read_bytes(), str(path))


def test_snapshot_diff_plan_and_apply_recover_agent_objects(graph: Graph, tmp_path: Path) -> None:
    repo = tmp_path / "state"
    snapshot = run("snapshot", "--repo", repo, "--graph-url", graph.url, *TYPES)
    assert snapshot.exit_code == 0, snapshot.output
    identity = state_file(repo, "servicePrincipals", IDENTITY)
    assert identity["@odata.type"] == "#microsoft.graph.agentIdentity"
    assert identity["agentIdentityBlueprintId"] == BLUEPRINT_APP_ID
    principal = state_file(repo, "servicePrincipals", PRINCIPAL)
    assert principal["@odata.type"] == "#microsoft.graph.agentIdentityBlueprintPrincipal"
    assert state_file(repo, "applications", BLUEPRINT)["@odata.type"] == "#microsoft.graph.agentIdentityBlueprint"
    agent_user = state_file(repo, "users", AGENT_USER)
    assert agent_user["@odata.type"] == "#microsoft.graph.agentUser"
    assert agent_user["identityParentId"] == IDENTITY and agent_user["sponsors"] == [SOFIA]
    assert "@odata.type" not in state_file(repo, "users", KARI)  # plain objects carry no type
    (backup,) = json.loads(run("backups", "--repo", repo, "--format", "json").output)
    since = ("--repo", repo, "--graph-url", graph.url, "--backup", backup["id"])

    graph.ok("PATCH", f"servicePrincipals/{IDENTITY}/microsoft.graph.agentIdentity", {"accountEnabled": False})
    graph.ok("DELETE", f"users/{AGENT_USER}")
    graph.ok("PATCH", f"applications/{BLUEPRINT}", {"displayName": "Contoso Sales Agent v2"})

    text = run("diff", *since)
    assert text.exit_code == 2, text.output
    assert "~ servicePrincipal (agentIdentity) 'Contoso Sales Agent (Nordics)'" in text.output
    assert "< user (agentUser) 'Sales Agent'" in text.output
    assert "~ application (agentIdentityBlueprint) 'Contoso Sales Agent v2'" in text.output
    document = json.loads(run("diff", *since, "--format", "json").output)
    changes = {c["id"]: c for c in document["changes"]}
    assert set(changes) == {IDENTITY, AGENT_USER, BLUEPRINT}
    assert {i: (c["type"], c["objectKind"], c["kind"]) for i, c in changes.items()} == {
        IDENTITY: ("servicePrincipal", "agentIdentity", "modified"),
        AGENT_USER: ("user", "agentUser", "softDeleted"),
        BLUEPRINT: ("application", "agentIdentityBlueprint", "modified"),
    }
    assert [(p["name"], p["before"], p["after"]) for p in changes[IDENTITY]["properties"]] == [
        ("accountEnabled", True, False)
    ]

    plan_file = tmp_path / "plan.json"
    planned = run("plan", *since, "-o", plan_file)
    assert planned.exit_code == 0, planned.output
    writes = {w["id"]: w for w in json.loads(plan_file.read_text(encoding="utf-8"))["writes"]}
    restore = writes[AGENT_USER]
    assert (restore["step"], restore["path"]) == ("restore", f"directory/deletedItems/{AGENT_USER}/restore")
    # Written as the base type is, at the base item path, the body stating the object's own kind.
    assert (writes[IDENTITY]["method"], writes[IDENTITY]["path"]) == ("PATCH", f"servicePrincipals/{IDENTITY}")
    assert writes[IDENTITY]["body"] == {"@odata.type": "#microsoft.graph.agentIdentity", "accountEnabled": True}
    named = {"@odata.type": "#microsoft.graph.agentIdentityBlueprint", "displayName": "Contoso Sales Agent"}
    assert writes[BLUEPRINT]["body"] == named

    applied = run("apply", plan_file, "--repo", repo, "--graph-url", graph.url, "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert graph.ok("GET", f"servicePrincipals/{IDENTITY}", **{"$select": "accountEnabled"})["accountEnabled"] is True
    assert graph.ok("GET", f"users/{AGENT_USER}")["@odata.type"] == "#microsoft.graph.agentUser"
    assert graph.ok("GET", f"applications/{BLUEPRINT}")["displayName"] == "Contoso Sales Agent"
    clean = run("diff", *since)
    assert clean.exit_code == 0, clean.output


def test_markdown_and_html_name_the_kind() -> None:
    change = ObjectChange("servicePrincipal", IDENTITY, "Agent", ChangeKind.CREATED, Action.SOFT_DELETE, None)
    plain = ObjectChange("servicePrincipal", GRAPH_SP, "Microsoft Graph", ChangeKind.CREATED, Action.SOFT_DELETE, None)
    agent = dataclasses.replace(change, object_kind="agentIdentity")
    report = DifferenceReport("backup/x", "the live tenant", ReportScope(), (agent, plain), 2)
    view = build_view(report)
    assert [r.type_label for r in view.rows] == ["servicePrincipal (agentIdentity)", "servicePrincipal"]
    assert "servicePrincipal (agentIdentity) <b>Agent</b>" in render_markdown(view)
    page = render_html(view)
    assert ">servicePrincipal (agentIdentity)</span>" in page and 'data-type="servicePrincipal"' in page


def test_a_backup_from_before_the_schema_named_the_type_shows_no_drift_of_it() -> None:
    rtype = default_registry().get("servicePrincipal")
    old = ObjectState("servicePrincipal", IDENTITY, Lifecycle.ACTIVE, {"id": IDENTITY, "accountEnabled": True})
    new = ObjectState(
        "servicePrincipal",
        IDENTITY,
        Lifecycle.ACTIVE,
        {"id": IDENTITY, "@odata.type": "#microsoft.graph.agentIdentity", "accountEnabled": True},
    )
    assert compare_objects(rtype, old, new) == ((), ())
    assert rtype.kind_of(new.data) == "agentIdentity" and rtype.kind_of(old.data) is None
