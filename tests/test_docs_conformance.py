"""Microsoft's own Graph v1.0 documentation examples as the emulator's conformance suite.

tests/fixtures/graph-docs-seed.yaml is a tenant copied from the response examples of Microsoft's Graph v1.0
documentation (each object names its page). These tests load it as documented, read it back through Graph, and
take it around the whole recovery loop with the real CLI (click's runner, in process) against the emulator served
over loopback: a snapshot into a new repository, drift made through Graph with plain HTTP, the difference report,
a plan, its apply and a clean report. One served emulator and one repository for the module; each step is its own
test, so a step that fails names itself and the others still report.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from ruamel.yaml import YAML

from entra_gitops.cli.main import cli
from entra_gitops.emulator import Emulator
from entra_gitops.emulator.seed import SeedLoader, read_seed
from entra_gitops.emulator.server import serving
from entra_gitops.model.registry import default_registry
from entra_gitops.model.tenant import Lifecycle
from entra_gitops.state.layout import STATE_DIR, object_path

SEED_PATH = Path(__file__).parent / "fixtures" / "graph-docs-seed.yaml"
AUTH = {"Authorization": "Bearer local"}

# Objects of the seed, named as their documentation pages name them.
TENANT = "84841066-274d-4ec0-a5c1-276be684bdd3"  # organization-get.md
ADELE = "87d349ed-44d7-43e1-9a83-5f2406dee5bd"  # user-get.md: Adele Vance
MEGAN = "f0206b06-7c5d-461c-ae24-08f68b7ef463"  # group-list-owners.md: Megan Bowen
DIEGO = "5c70937c-d9ea-4a47-8852-ab77630f803d"  # group-list-owners.md: Diego Siciliani
GRADY = "e8b753b5-4117-464e-9a08-713e1ff266b3"  # user-list.md: Grady Archie, soft-deleted in the seed
HR_TASKFORCE = "02bd9fd6-8f93-4758-87c3-1fb73740a315"  # group-get.md: a Microsoft 365 group
OPERATIONS = "21d05557-b7b6-418f-86fa-a3118d751be4"  # group-post-groups.md: a security group
SAMPLE_GROUP = "46cc6179-19d0-473e-97ad-6ff84347bbbb"  # directory-deleteditems-get.md
DEMO_POLICY = "6b5e999b-0ba8-4186-a106-e0296c1c4358"  # conditionalaccesspolicy-get.md (disabled)
EXO_POLICY = "7359d0e0-d8a9-4afa-8a93-e23e099d7be8"  # conditionalaccessroot-post-policies.md (enabled)
IPV4_LOCATION = "06e4ff15-ca6b-4843-9c34-3fdd1ce8f739"  # conditionalaccessroot-list-namedlocations.md
ALL_PRINCIPALS_GRANT = "AVs6JuUDjkCFV7q2gd8QTPimBBgj5iBFj0C6GwwRxC0"  # oauth2permissiongrant-get.md
PRINCIPAL_GRANT = (
    "E3NHhUPqfUy4pFT-010LYFo5-ycA-_5Fhl7nHbaJ7qACy1R9o6oWQJ-cpLSUIt2b"  # user-list-oauth2permissiongrants.md
)
MFA_TRUSTED_IPS = (
    "00000000-0000-0000-0000-000000000000"  # the built-in location conditionalaccesspolicy-get.md excludes
)
SOURCE = "# microsoftgraph/microsoft-graph-docs-contrib:"
CUSTOM_ROLE = "f189965f-f560-4c59-9101-933d4c87a91a"  # unifiedroledefinition-get.md, example 1
ELIGIBILITY = (
    "8MYkhImhnkm70CbBdTyW1BbHHAdHgZdDpbqyEFlRzAs-1-e"  # rbacapplication-list-roleeligibilityscheduleinstances.md
)
SEATTLE_UNIT = "4d7ea995-bc0f-45c0-8c3e-132e93bf95f8"  # directory-list-administrativeunits.md

# user-get.md, example 1's response (the default property set), as documented, without @odata.context.
USER_GET_EXAMPLE_1 = {
    "businessPhones": ["+1 425 555 0109"],
    "displayName": "Adele Vance",
    "givenName": "Adele",
    "jobTitle": "Retail Manager",
    "mail": "AdeleV@contoso.com",
    "mobilePhone": "+1 425 555 0109",
    "officeLocation": "18/2111",
    "preferredLanguage": "en-US",
    "surname": "Vance",
    "userPrincipalName": "AdeleV@contoso.com",
    "id": ADELE,
}
# user-get.md, example 3's response ($select=displayName,givenName,postalCode,identities): no id, as documented.
USER_GET_EXAMPLE_3 = {
    "displayName": "Adele Vance",
    "givenName": "Adele",
    "postalCode": "98004",
    "identities": [
        {"signInType": "userPrincipalName", "issuer": "contoso.com", "issuerAssignedId": "AdeleV@contoso.com"}
    ],
}

# The drift, made through Graph the way an administrator would make it.
DRIFT: tuple[tuple[str, str, dict[str, Any] | None], ...] = (
    ("PATCH", f"users/{ADELE}", {"jobTitle": "Product Marketing Manager"}),
    ("PATCH", f"identity/conditionalAccess/policies/{EXO_POLICY}", {"state": "disabled"}),
    ("DELETE", f"users/{MEGAN}", None),
    ("DELETE", f"groups/{OPERATIONS}/members/{DIEGO}/$ref", None),
    ("DELETE", f"oauth2PermissionGrants/{ALL_PRINCIPALS_GRANT}", None),
    (
        "PATCH",
        f"identity/conditionalAccess/namedLocations/{IPV4_LOCATION}",
        {"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "IPv4 named location (renamed)"},
    ),
)


def seed() -> tuple[dict[str, Any], str]:
    """The seed as plain JSON values, and its label."""
    data, label = read_seed(str(SEED_PATH))
    return json.loads(json.dumps(data)), label


def load_emulator() -> Emulator:
    data, label = seed()
    return Emulator(SeedLoader(default_registry(), data, label).load())


def run(*args: Any) -> Result:
    """The real command line, in process."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def read_yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def state_file(repo: Path, type_name: str, object_id: str, lifecycle: Lifecycle = Lifecycle.ACTIVE) -> Path:
    return repo / object_path(default_registry().get(type_name), object_id, lifecycle)


@dataclass
class RoundTrip:
    """Everything the round trip produced, kept for the tests to judge step by step."""

    repo: Path
    plan_file: Path
    snapshot: Result | None = None
    drift: list[tuple[str, str, int, str]] = field(default_factory=list)
    diff: Result | None = None
    plan: Result | None = None
    apply: Result | None = None
    clean_diff: Result | None = None
    after: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoundTrip]:
    """One served emulator over the documented tenant, one new repository, the whole loop once.

    Nothing is asserted here: a step that fails leaves the later results empty or failed, and the tests say which.
    """
    work = tmp_path_factory.mktemp("docs-conformance")
    trip = RoundTrip(repo=work / "state", plan_file=work / "plan.json")
    app = load_emulator()
    with serving(app) as url, httpx.Client(base_url=url + "/", headers=AUTH, timeout=30) as graph:
        trip.snapshot = run("snapshot", "--repo", trip.repo, "--graph-url", url)
        if trip.snapshot.exit_code == 0:
            for method, path, body in DRIFT:
                response = graph.request(method, path, json=body)
                trip.drift.append((method, path, response.status_code, response.text))
            trip.diff = run("diff", "--repo", trip.repo, "--graph-url", url, "--format", "json")
            trip.plan = run("plan", "--repo", trip.repo, "--graph-url", url, "-o", trip.plan_file)
            if trip.plan_file.exists():
                trip.apply = run("apply", trip.plan_file, "--repo", trip.repo, "--graph-url", url, "--auto-approve")
                trip.clean_diff = run("diff", "--repo", trip.repo, "--graph-url", url)
                for name, path in {
                    "megan": f"users/{MEGAN}",
                    "hrMembers": f"groups/{HR_TASKFORCE}/members?$select=id",
                    "hrOwners": f"groups/{HR_TASKFORCE}/owners?$select=id",
                    "grants": "oauth2PermissionGrants",
                    "exoPolicy": f"identity/conditionalAccess/policies/{EXO_POLICY}",
                }.items():
                    response = graph.get(path)
                    trip.after[name] = response.json() if response.status_code == 200 else response.status_code
    yield trip


def need(result: Result | None, step: str) -> Result:
    if result is None:
        pytest.fail(f"{step} did not run: an earlier step failed")
    return result


# -- the seed, as documented ------------------------------------------------------------------------------


def test_the_documented_tenant_loads_as_one_tenant() -> None:
    data, label = seed()
    tenant = SeedLoader(default_registry(), data, label).load()
    assert tenant.tenant_id == TENANT == data["organization"][0]["id"]
    # Kept exactly as conditionalaccesspolicy-get.md documents it: the built-in location and stale ids.
    (policy,) = (p for p in data["identity/conditionalAccess/policies"] if p["id"] == DEMO_POLICY)
    assert policy["conditions"]["locations"]["excludeLocations"] == [
        MFA_TRUSTED_IPS,
        "d2136c9c-b049-47ae-b9cf-316e04ef7198",
    ]
    assert policy["conditions"]["users"]["includeUsers"] == ["a702a13d-a437-4a07-8a7e-8c052de62dfd"]


def test_every_object_of_the_seed_names_its_documentation_page() -> None:
    """Beside each object (or above a relationship list or singleton) a comment names its source page."""
    lines = SEED_PATH.read_text(encoding="utf-8").splitlines()

    def comment_above(index: int) -> str:
        block = []
        while index > 0 and lines[index - 1].lstrip().startswith("#"):
            index -= 1
            block.append(lines[index])
        return "\n".join(block)

    unsourced = []
    objects = 0
    for index, line in enumerate(lines):
        top_level = bool(re.match(r"^[A-Za-z].*:$", line))
        item = bool(re.match(r'^  - ("@odata\.type"|[A-Za-z]+):', line))
        following = next((later for later in lines[index + 1 :] if not later.lstrip().startswith("#")), "")
        if top_level and not re.match(r'^  - ("@odata\.type"|[A-Za-z]+):', following) or item:
            objects += 1
            if SOURCE not in comment_above(index):
                unsourced.append(f"{SEED_PATH.name}:{index + 1}: {line.strip()}")
    assert not unsourced, unsourced
    assert objects >= 30
    data, _ = seed()
    assert sum(len(v) if isinstance(v, list) else 1 for v in data.values()) >= objects


def test_documented_reads_answer_as_documented() -> None:
    """GETs of the seeded objects answer Microsoft's documented bodies (without @odata.context)."""
    data, _ = seed()
    app = load_emulator()

    async def reads() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1/v1.0/", headers=AUTH) as graph:
            paths = {
                "user": f"users/{ADELE}",
                "userSelect": f"users/{ADELE}?$select=displayName,givenName,postalCode,identities",
                "policy": f"identity/conditionalAccess/policies/{DEMO_POLICY}",
                "location": f"identity/conditionalAccess/namedLocations/{IPV4_LOCATION}",
                "grant": f"oauth2PermissionGrants/{PRINCIPAL_GRANT}",
                "group": f"groups/{HR_TASKFORCE}",
                "methods": "policies/authenticationMethodsPolicy",
                "authorization": "policies/authorizationPolicy",
                "organization": "organization",
                "deletedGroup": f"directory/deletedItems/{SAMPLE_GROUP}",
                "customRole": f"roleManagement/directory/roleDefinitions/{CUSTOM_ROLE}",
                "eligibility": f"roleManagement/directory/roleEligibilityScheduleInstances/{ELIGIBILITY}",
                "unit": f"directory/administrativeUnits/{SEATTLE_UNIT}",
            }
            found = {}
            for name, path in paths.items():
                response = await graph.get(path)
                assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
                body = response.json()
                body.pop("@odata.context", None)
                found[name] = body
            return found

    got = asyncio.run(reads())

    def seeded(key: str, object_id: str) -> dict[str, Any]:
        return next(o for o in data[key] if o["id"] == object_id)

    assert got["user"] == USER_GET_EXAMPLE_1  # Graph's default property set, exactly
    assert got["userSelect"] == USER_GET_EXAMPLE_3
    assert got["policy"] == seeded("identity/conditionalAccess/policies", DEMO_POLICY)
    assert got["location"] == seeded("identity/conditionalAccess/namedLocations", IPV4_LOCATION)
    assert got["grant"] == seeded("oauth2PermissionGrants", PRINCIPAL_GRANT)
    assert got["group"] == seeded("groups", HR_TASKFORCE)
    assert got["methods"] == data["policies/authenticationMethodsPolicy"]
    assert got["authorization"] == data["policies/authorizationPolicy"]
    assert got["organization"]["value"] == data["organization"]
    assert got["deletedGroup"] == seeded("directory/deletedItems", SAMPLE_GROUP)
    assert got["customRole"] == seeded("roleManagement/directory/roleDefinitions", CUSTOM_ROLE)
    assert got["eligibility"] == seeded("roleManagement/directory/roleEligibilityScheduleInstances", ELIGIBILITY)
    assert got["unit"] == seeded("directory/administrativeUnits", SEATTLE_UNIT)


# -- snapshot -------------------------------------------------------------------------------------------


def test_snapshot_writes_every_type(round_trip: RoundTrip) -> None:
    result = need(round_trip.snapshot, "snapshot")
    assert result.exit_code == 0, result.output
    for rtype in default_registry():
        if rtype.singleton:
            assert (round_trip.repo / STATE_DIR / f"{rtype.folder}.yaml").is_file(), rtype.name
        else:
            assert list((round_trip.repo / STATE_DIR / rtype.folder).glob("*.yaml")), rtype.name
    assert state_file(round_trip.repo, "user", GRADY, Lifecycle.SOFT_DELETED).is_file()
    assert state_file(round_trip.repo, "group", SAMPLE_GROUP, Lifecycle.SOFT_DELETED).is_file()


def test_snapshot_keeps_microsofts_values(round_trip: RoundTrip) -> None:
    assert need(round_trip.snapshot, "snapshot").exit_code == 0
    repo = round_trip.repo
    policy = read_yaml(state_file(repo, "conditionalAccessPolicy", DEMO_POLICY))
    locations = policy["conditions"]["locations"]
    assert locations["excludeLocations"] == [MFA_TRUSTED_IPS, "d2136c9c-b049-47ae-b9cf-316e04ef7198"]
    assert locations["includeLocations"] == ["AllTrusted"]
    users = policy["conditions"]["users"]
    assert users["includeUsers"] == ["a702a13d-a437-4a07-8a7e-8c052de62dfd"]
    assert users["excludeUsers"] == ["124c5b6a-ffa5-483a-9b88-04c3fce5574a", "GuestsOrExternalUsers"]
    assert policy["sessionControls"]["signInFrequency"] == {"isEnabled": True, "type": "hours", "value": 4}
    assert policy["createdDateTime"] == "2019-09-26T23:12:16.0792706Z"

    adele = read_yaml(state_file(repo, "user", ADELE))
    assert (adele["displayName"], adele["jobTitle"], adele["officeLocation"]) == (
        "Adele Vance",
        "Retail Manager",
        "18/2111",
    )
    grant = read_yaml(state_file(repo, "oauth2PermissionGrant", PRINCIPAL_GRANT))
    assert grant["scope"] == " Contacts.ReadWrite openid profile"  # the leading space is Microsoft's
    strength = read_yaml(state_file(repo, "authenticationStrengthPolicy", "dd055c42-4218-4281-8631-f090e171f5cd"))
    assert strength["allowedCombinations"] == ["password, hardwareOath", "password, sms"]
    organization = read_yaml(repo / STATE_DIR / "organization.yaml")
    assert organization["id"] == TENANT and organization["verifiedDomains"][0]["name"] == "Contoso.com"
    grady = read_yaml(state_file(repo, "user", GRADY, Lifecycle.SOFT_DELETED))
    assert grady["userPrincipalName"] == "GradyA@contoso.com"
    settings = read_yaml(repo / "entra-gitops.yaml")
    assert settings["tenantId"] == TENANT


def test_snapshot_files_pass_validate(round_trip: RoundTrip) -> None:
    assert need(round_trip.snapshot, "snapshot").exit_code == 0
    result = run("validate", round_trip.repo / STATE_DIR)
    assert result.exit_code == 0, result.output


# -- drift, report, plan, apply -------------------------------------------------------------------------


def test_drift_through_graph_is_accepted(round_trip: RoundTrip) -> None:
    need(round_trip.snapshot, "snapshot")
    assert len(round_trip.drift) == len(DRIFT)
    refused = [f"{m} {p}: {status} {text}" for m, p, status, text in round_trip.drift if status >= 300]
    assert not refused, refused


def test_diff_lists_each_drift_with_its_kind(round_trip: RoundTrip) -> None:
    result = need(round_trip.diff, "diff")
    assert result.exit_code == 2, result.output
    report = json.loads(result.stdout)
    changes = {(c["type"], c["id"]): c for c in report["changes"]}
    assert {key: (c["kind"], c["action"]) for key, c in changes.items()} == {
        ("user", ADELE): ("modified", "update"),
        ("conditionalAccessPolicy", EXO_POLICY): ("modified", "update"),
        ("user", MEGAN): ("softDeleted", "restore"),
        ("group", OPERATIONS): ("modified", "update"),
        ("oauth2PermissionGrant", ALL_PRINCIPALS_GRANT): ("hardDeleted", "recreate"),
        ("namedLocation", IPV4_LOCATION): ("modified", "update"),
        # Megan's membership and ownership went with her soft delete; her restore brings them back.
        ("group", HR_TASKFORCE): ("modified", "none"),
    }

    def props(key: tuple[str, str]) -> dict[str, tuple[Any, Any]]:
        return {p["name"]: (p["before"], p["after"]) for p in changes[key]["properties"]}

    assert props(("user", ADELE)) == {"jobTitle": ("Retail Manager", "Product Marketing Manager")}
    assert props(("conditionalAccessPolicy", EXO_POLICY)) == {"state": ("enabled", "disabled")}
    assert props(("namedLocation", IPV4_LOCATION)) == {
        "displayName": ("IPv4 named location", "IPv4 named location (renamed)")
    }
    (members,) = changes[("group", OPERATIONS)]["links"]
    assert (members["name"], [r["id"] for r in members["removed"]], members["added"]) == ("members", [DIEGO], [])
    hr_links = {link["name"]: [r["id"] for r in link["removed"]] for link in changes[("group", HR_TASKFORCE)]["links"]}
    assert hr_links == {"members": [MEGAN], "owners": [MEGAN]}


def test_plan_makes_the_expected_steps(round_trip: RoundTrip) -> None:
    result = need(round_trip.plan, "plan")
    assert result.exit_code == 0, result.output
    plan = json.loads(round_trip.plan_file.read_text(encoding="utf-8"))
    assert plan["tenant"] == TENANT
    steps = {(w["step"], w["type"], w["id"]): w for w in plan["writes"]}
    assert set(steps) == {
        ("restore", "user", MEGAN),
        ("create", "oauth2PermissionGrant", ALL_PRINCIPALS_GRANT),
        ("update", "conditionalAccessPolicy", EXO_POLICY),
        ("update", "namedLocation", IPV4_LOCATION),
        ("update", "user", ADELE),
        ("addLink", "group", OPERATIONS),
    }
    assert [w["step"] for w in plan["writes"]][0] == "restore"  # restores first
    assert steps[("restore", "user", MEGAN)]["path"] == f"directory/deletedItems/{MEGAN}/restore"
    assert steps[("update", "conditionalAccessPolicy", EXO_POLICY)]["body"] == {"state": "enabled"}
    assert steps[("update", "user", ADELE)]["body"] == {"jobTitle": "Retail Manager"}
    assert steps[("update", "namedLocation", IPV4_LOCATION)]["body"] == {
        "@odata.type": "#microsoft.graph.ipNamedLocation",
        "displayName": "IPv4 named location",
    }
    grant = steps[("create", "oauth2PermissionGrant", ALL_PRINCIPALS_GRANT)]
    assert (grant["method"], grant["path"]) == ("POST", "oauth2PermissionGrants")
    assert grant["body"] == {
        "scope": "User.Read Group.ReadWrite.All",
        "clientId": "00af5dfb-85da-4b41-a677-0c6b86dd34f8",
        "consentType": "AllPrincipals",
        "resourceId": "1804a6f8-e623-4520-8f40-ba1b0c11c42d",
    }
    link = steps[("addLink", "group", OPERATIONS)]
    assert (link["path"], link["target"]) == (f"groups/{OPERATIONS}/members/$ref", DIEGO)
    assert [s["id"] for s in plan["skipped"]] == [HR_TASKFORCE]


def test_apply_writes_the_plan(round_trip: RoundTrip) -> None:
    result = need(round_trip.apply, "apply")
    assert result.exit_code == 0, result.output
    assert "6 of 6 write(s) done" in result.output
    after = round_trip.after
    assert isinstance(after["megan"], dict) and after["megan"]["displayName"] == "Megan Bowen"
    assert MEGAN in {m["id"] for m in after["hrMembers"]["value"]}  # the restore brought her membership back
    assert MEGAN in {o["id"] for o in after["hrOwners"]["value"]}
    assert after["exoPolicy"]["state"] == "enabled"
    recreated = [g for g in after["grants"]["value"] if g["consentType"] == "AllPrincipals"]
    assert [(g["clientId"], g["resourceId"], g["scope"]) for g in recreated] == [
        (
            "00af5dfb-85da-4b41-a677-0c6b86dd34f8",
            "1804a6f8-e623-4520-8f40-ba1b0c11c42d",
            "User.Read Group.ReadWrite.All",
        )
    ]


def test_diff_after_apply_is_clean(round_trip: RoundTrip) -> None:
    result = need(round_trip.clean_diff, "the diff after apply")
    assert result.exit_code == 0, result.output
    assert "No differences" in result.output
    history = run("history", "--repo", round_trip.repo, "--format", "json")
    assert history.exit_code == 0, history.output
    assert len(json.loads(history.stdout)) == 1
