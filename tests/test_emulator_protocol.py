"""The Graph behaviour entra-gitops depends on, asserted over raw HTTP against the in-process emulator.

Every test talks to a fresh demo tenant (or a small generated one) through httpx.ASGITransport and checks
what a Graph client would see: status codes, bodies, links and error shapes.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    BASE_URL,
    FakeClock,
    SyncGraph,
    assert_graph_error,
    demo_seed,
    demo_tenant,
    http_client,
    run,
    tenant_with_users,
    user_objects,
)

from entra_gitops.emulator import Emulator, create_emulator
from entra_gitops.emulator.seed import SeedLoader, load_tenant
from entra_gitops.model.errors import SeedError
from entra_gitops.model.registry import ResourceType, default_registry

REGISTRY = default_registry()

# Objects of the demo tenant (entra_gitops/emulator/seeds/demo.yaml).
TENANT_ID = "4c1a7f3e-92b5-4d08-8e6f-3b2d9a0c5e71"
INGRID = "612d7050-db34-4834-96a9-fc94a9c226a7"  # cloud user, member of App - Expenses Approvers
LARS = "eccc77d2-4b70-40d2-acc3-faa878648932"  # no proxyAddresses in the seed
KARI = "b4c45912-fe49-436c-a90e-b5df519c7319"  # member of SG-Finance
SYNCED_USER = "d1432e72-b6b3-4cd3-9415-278d90c93c87"  # onPremisesSyncEnabled: true
SIRI = "2dba657d-376d-4637-8723-e630bafbe0f5"
DELETED_USER = "ba46568c-c633-4163-ad2e-907effbb464b"
SYNCED_GROUP = "31c1bf09-31b3-4a0b-9a78-b766fc31622a"  # onPremisesSyncEnabled: true
SYNCHRONIZED = {SYNCED_USER, SYNCED_GROUP}
SG_FINANCE = "47469706-55e1-4537-a7f8-5bf63e58ff06"
EXPENSES_APPROVERS = "f87885a2-07c8-4d17-b27e-89c0e7734609"
MARKETING = "607339fc-3541-4f8a-80af-752104890f7c"  # Unified
HR_APP = "1bf1bd69-7184-45f0-a07a-4bd318e98c81"
HR_APP_ID = "1cec37e1-dcf9-41a8-822f-9fa7e47bb379"
HR_SP = "e0cfb4b7-8b9b-45eb-ad1a-3a89e308d451"
HR_ROLE = "2c905f4b-27de-47bd-8455-38c89fc57134"
GRAPH_SP = "8d6e4a90-b82f-42e5-817c-c6b770a4621f"
GRANT = "t7TP4JuL60WtGjqJ4wjUUZBKbo0vuOVCgXzGt3CkYh8"
CA_POLICY = "c5406577-8957-4ff2-86c8-99cd33b2056a"
DELETED_CA_POLICY = "04c9ae9a-7d54-44af-8a9c-0e59ad1d8ee6"
IP_LOCATION = "3d88fd38-fe20-4241-bd7b-3115b9dca115"
BUILTIN_STRENGTH = "00000000-0000-0000-0000-000000000002"
DIRECTORY_READERS = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"  # a built-in role, not privileged
CUSTOM_STRENGTH = "995de142-5c3c-42b6-86b8-8c800a17d889"

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
OPAQUE_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")
DIRECTORY_OBJECTS = "https://graph.microsoft.com/v1.0/directoryObjects"


def ref(object_id: str) -> dict[str, str]:
    return {"@odata.id": f"{DIRECTORY_OBJECTS}/{object_id}"}


def ids(objects: list[dict[str, Any]]) -> set[str]:
    return {o["id"] for o in objects}


# ---------------------------------------------------------------------------- per-type bodies


def new_application(api: SyncGraph, name: str = "Test app") -> dict[str, Any]:
    response = api.post("applications", {"displayName": name})
    assert response.status_code == 201, response.text
    return response.json()


CA_BODY = {
    "displayName": "Test - block legacy auth",
    "state": "disabled",
    "conditions": {
        "clientAppTypes": ["exchangeActiveSync", "other"],
        "applications": {"includeApplications": ["All"]},
        "users": {"includeUsers": ["All"], "excludeUsers": [SIRI]},
    },
    "grantControls": {"operator": "OR", "builtInControls": ["block"]},
}

# type name -> (body for POST, given the api; body for PATCH or None when Graph has no PATCH for it)
WRITES: dict[str, tuple[Callable[[SyncGraph], dict[str, Any]], dict[str, Any] | None]] = {
    "user": (
        lambda api: {
            "accountEnabled": True,
            "displayName": "Test User",
            "mailNickname": "test.user",
            "userPrincipalName": "test.user@contoso.com",
            "passwordProfile": {"password": "Not-a-real-secret-123", "forceChangePasswordNextSignIn": True},
        },
        {"jobTitle": "Tester"},
    ),
    "group": (
        lambda api: {
            "displayName": "Test group",
            "mailEnabled": False,
            "mailNickname": "test-group",
            "securityEnabled": True,
            "groupTypes": [],
        },
        {"description": "Changed"},
    ),
    "application": (lambda api: {"displayName": "Test app"}, {"notes": "Changed"}),
    "servicePrincipal": (lambda api: {"appId": new_application(api)["appId"]}, {"notes": "Changed"}),
    "appRoleAssignment": (lambda api: {"principalId": INGRID, "resourceId": HR_SP, "appRoleId": HR_ROLE}, None),
    "oauth2PermissionGrant": (
        lambda api: {
            "clientId": HR_SP,
            "consentType": "Principal",
            "principalId": INGRID,
            "resourceId": GRAPH_SP,
            "scope": "User.Read",
        },
        {"scope": "User.Read openid"},
    ),
    "conditionalAccessPolicy": (lambda api: dict(CA_BODY), {"state": "enabledForReportingButNotEnforced"}),
    "namedLocation": (
        lambda api: {
            "@odata.type": "#microsoft.graph.ipNamedLocation",
            "displayName": "Test location",
            "isTrusted": False,
            "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "192.0.2.0/28"}],
        },
        {"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Changed"},
    ),
    "authenticationStrengthPolicy": (
        lambda api: {"displayName": "Test strength", "allowedCombinations": ["fido2"]},
        {"description": "Changed"},
    ),
    # Graph has no update of a role assignment (rbacapplication-post-roleassignments, unifiedroleassignment-delete).
    "unifiedRoleAssignment": (
        lambda api: {"principalId": INGRID, "roleDefinitionId": DIRECTORY_READERS, "directoryScopeId": "/"},
        None,
    ),
    "unifiedRoleDefinition": (
        lambda api: {
            "displayName": "Test role",
            "isEnabled": True,
            "rolePermissions": [{"allowedResourceActions": ["microsoft.directory/applications/basic/update"]}],
        },
        {"description": "Changed"},
    ),
    "administrativeUnit": (lambda api: {"displayName": "Test unit"}, {"description": "Changed"}),
}
# Collections Graph serves with List and Get only: Privileged Identity Management makes their objects.
READ_ONLY_COLLECTIONS = {"unifiedRoleEligibilityScheduleInstance"}

SINGLETON_PATCHES = {
    "authenticationMethodsPolicy": {"reconfirmationInDays": 30},
    "authorizationPolicy": {"blockMsolPowerShell": False},
}

COLLECTION_TYPES = [
    t.name for t in REGISTRY if t.collection and not t.singleton and t.name not in READ_ONLY_COLLECTIONS
]
DELTA_TYPES = [t.name for t in REGISTRY if t.delta]
PARENT_IDS = {"resourceId": HR_SP}


def collection_path(rtype: ResourceType) -> str:
    assert rtype.collection is not None
    return rtype.collection.format(**PARENT_IDS)


def item_path(rtype: ResourceType, object_id: str) -> str:
    assert rtype.item is not None
    return rtype.item.format(id=object_id, **PARENT_IDS)


def create(api: SyncGraph, rtype: ResourceType) -> dict[str, Any]:
    response = api.post(collection_path(rtype), WRITES[rtype.name][0](api))
    assert response.status_code == 201, response.text
    return response.json()


def test_create_emulator_serves_the_demo_seed():
    api = SyncGraph(create_emulator("demo"))
    assert ids(api.list_all("organization")) == {TENANT_ID}
    assert len(api.list_all("users")) == len(demo_seed()["users"])
    assert ids(api.list_all("directory/deletedItems/microsoft.graph.user")) == {DELETED_USER}


def test_every_registry_type_is_covered():
    assert set(WRITES) == set(COLLECTION_TYPES)
    assert set(SINGLETON_PATCHES) | {"organization"} == {t.name for t in REGISTRY if t.singleton}
    assert set(DELTA_TYPES) == {"user", "group", "application", "servicePrincipal", "oauth2PermissionGrant"}


# ---------------------------------------------------------------------------- CRUD


@pytest.mark.parametrize("type_name", COLLECTION_TYPES)
def test_list_get_create_patch_delete(api: SyncGraph, type_name: str):
    rtype = REGISTRY.get(type_name)
    before = api.list_all(collection_path(rtype))
    assert before, f"the demo seed has {type_name} objects"

    created = create(api, rtype)
    assert created["id"] not in ids(before)
    got = api.get(item_path(rtype, created["id"]))
    assert got.status_code == 200, got.text
    assert got.json()["id"] == created["id"]
    assert created["id"] in ids(api.list_all(collection_path(rtype)))

    patch = WRITES[type_name][1]
    if patch is not None:
        assert api.patch(item_path(rtype, created["id"]), patch).status_code == 204
        names = ",".join(k for k in patch if not k.startswith("@"))
        after = api.get(item_path(rtype, created["id"]), params={"$select": names}).json()
        assert {k: after[k] for k in names.split(",")} == {k: v for k, v in patch.items() if not k.startswith("@")}

    assert api.delete(item_path(rtype, created["id"])).status_code == 204
    assert_graph_error(api.get(item_path(rtype, created["id"])), 404, "Request_ResourceNotFound")
    assert ids(api.list_all(collection_path(rtype))) == ids(before)


@pytest.mark.parametrize("type_name", sorted(SINGLETON_PATCHES))
def test_singleton_get_and_patch(api: SyncGraph, type_name: str):
    rtype = REGISTRY.get(type_name)
    assert rtype.singleton_path
    got = api.get(rtype.singleton_path)
    assert got.status_code == 200 and "value" not in got.json()
    change = SINGLETON_PATCHES[type_name]
    assert all(got.json()[k] != v for k, v in change.items())
    assert api.patch(rtype.singleton_path, change).status_code == 204
    after = api.get(rtype.singleton_path).json()
    assert {k: after[k] for k in change} == change
    assert {k: v for k, v in after.items() if k not in change} == {
        k: v for k, v in got.json().items() if k not in change
    }


def test_authentication_method_configuration_patch_needs_matching_type(api: SyncGraph):
    path = "policies/authenticationMethodsPolicy/authenticationMethodConfigurations/Sms"
    assert api.get(path).json()["state"] == "disabled"
    wrong = {"@odata.type": "#microsoft.graph.voiceAuthenticationMethodConfiguration", "state": "enabled"}
    assert_graph_error(api.patch(path, wrong), 400)
    right = {"@odata.type": "#microsoft.graph.smsAuthenticationMethodConfiguration", "state": "enabled"}
    assert api.patch(path, right).status_code == 204
    assert api.get(path).json()["state"] == "enabled"
    policy = api.get("policies/authenticationMethodsPolicy").json()
    assert {c["id"]: c["state"] for c in policy["authenticationMethodConfigurations"]}["Sms"] == "enabled"


def test_organization_is_a_one_item_collection_patched_by_id(api: SyncGraph):
    orgs = api.get("organization").json()["value"]
    assert ids(orgs) == {TENANT_ID}
    change = {"marketingNotificationEmails": ["news@contoso.com"]}
    assert api.patch(f"organization/{TENANT_ID}", change).status_code == 204
    assert api.get("organization").json()["value"][0]["marketingNotificationEmails"] == ["news@contoso.com"]
    assert_graph_error(api.patch(f"organization/{TENANT_ID}", {"displayName": "Fabrikam"}), 400)


def test_organization_cannot_be_created_or_deleted(api: SyncGraph):
    assert_graph_error(api.post("organization", {"displayName": "Second tenant"}), (400, 405))
    assert_graph_error(api.delete(f"organization/{TENANT_ID}"), (400, 405))
    assert ids(api.get("organization").json()["value"]) == {TENANT_ID}


def test_app_role_assignment_create_and_delete(api: SyncGraph):
    path = f"servicePrincipals/{HR_SP}/appRoleAssignedTo"
    before = api.list_all(path)
    response = api.post(path, {"principalId": INGRID, "resourceId": HR_SP, "appRoleId": HR_ROLE})
    assert response.status_code == 201, response.text
    created = response.json()
    assert OPAQUE_ID.match(created["id"])
    assert created["principalType"] == "User" and created["principalDisplayName"] == "Ingrid Nilsen"
    assert created["resourceDisplayName"] == "Contoso HR Portal"
    assert ids(api.list_all(path)) == ids(before) | {created["id"]}
    assert api.delete(f"{path}/{created['id']}").status_code == 204
    assert ids(api.list_all(path)) == ids(before)
    assert_graph_error(api.get(f"{path}/{created['id']}"), 404)


def test_app_role_assignment_for_unknown_principal_is_404(api: SyncGraph):
    body = {"principalId": "00000000-0000-4000-8000-00000000dead", "resourceId": HR_SP, "appRoleId": HR_ROLE}
    assert_graph_error(api.post(f"servicePrincipals/{HR_SP}/appRoleAssignedTo", body), 404)


# ---------------------------------------------------------------------------- paging


@pytest.fixture
def big() -> SyncGraph:
    """A tenant of 250 generated users."""
    return SyncGraph(Emulator(tenant_with_users(250)))


def test_default_page_size_is_100_and_next_links_are_absolute(big: SyncGraph):
    sizes, seen, url = [], [], "users"
    while url:
        page = big.get(url).json()
        sizes.append(len(page["value"]))
        seen.extend(page["value"])
        url = page.get("@odata.nextLink")
        if url:
            assert url.startswith(f"{BASE_URL}/users?"), url
    assert sizes == [100, 100, 50]
    assert len(seen) == 250 and ids(seen) == ids(user_objects(250))


@pytest.mark.parametrize("top", [1, 7, 100, 999])
def test_top_is_accepted_from_1_to_999(big: SyncGraph, top: int):
    first = big.get("users", params={"$top": top}).json()
    assert len(first["value"]) == min(top, 250)
    assert ("@odata.nextLink" in first) == (top < 250)
    if top == 7:
        everything = big.list_all("users?$top=7")
        assert len(everything) == 250 and ids(everything) == ids(user_objects(250))


@pytest.mark.parametrize("top", ["0", "1000", "-1", "ten"])
def test_top_out_of_range_is_graphs_400(big: SyncGraph, top: str):
    assert_graph_error(big.get("users", params={"$top": top}), 400)


def test_error_body_echoes_client_request_id(api: SyncGraph):
    response = api.get("users", params={"$top": "1000"}, headers={"client-request-id": "abc-123"})
    error = assert_graph_error(response, 400)
    assert error["innerError"]["client-request-id"] == "abc-123"
    assert error["innerError"]["request-id"] == response.headers["request-id"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", error["innerError"]["date"])


def test_rereading_a_next_link_gives_the_same_page(big: SyncGraph):
    next_link = big.get("users", params={"$top": 40, "$select": "id,displayName"}).json()["@odata.nextLink"]
    first, again = big.get(next_link).json(), big.get(next_link).json()
    assert first == again
    assert len(first["value"]) == 40 and set(first["value"][0]) == {"id", "displayName"}


def test_max_page_size_preference_is_honoured_and_a_malformed_one_ignored(big: SyncGraph):
    small = big.get("users", headers={"Prefer": "odata.maxpagesize=30"}).json()
    assert len(small["value"]) == 30 and "@odata.nextLink" in small
    for prefer in ("odata.maxpagesize=lots", "odata.maxpagesize=", "return=minimal"):
        response = big.get("users", headers={"Prefer": prefer})
        assert response.status_code == 200 and len(response.json()["value"]) == 100


def test_invalid_skiptoken_is_400(big: SyncGraph):
    assert_graph_error(big.get("users", params={"$skiptoken": "nonsense.5"}), 400)


# ---------------------------------------------------------------------------- $select


def test_select_returns_only_selected_members_with_absent_ones_null_or_empty(api: SyncGraph):
    user = api.get(f"users/{LARS}", params={"$select": "displayName,faxNumber,proxyAddresses"}).json()
    assert {k: v for k, v in user.items() if k != "@odata.context"} == {
        "displayName": "Lars Haugen",
        "faxNumber": None,
        "proxyAddresses": [],
    }
    listed = api.get("users", params={"$select": "id,department"}).json()["value"]
    # The annotation of an object of a derived type (an agent user) is not a member: Graph sends it with any $select.
    assert all(set(u) - {"@odata.type"} == {"id", "department"} for u in listed)
    assert {u.get("@odata.type") for u in listed} == {None, "#microsoft.graph.agentUser"}


def test_select_of_unknown_property_is_400(api: SyncGraph):
    assert_graph_error(api.get("users", params={"$select": "displayName,shoeSize"}), 400)
    assert_graph_error(api.get(f"groups/{SG_FINANCE}", params={"$select": "shoeSize"}), 400)


def test_users_without_select_get_graphs_default_properties(api: SyncGraph):
    default = set(REGISTRY.get("user").default_select or ())
    assert "accountEnabled" not in default
    for user in api.get("users").json()["value"]:
        assert set(user) - {"@odata.type"} == default  # agent users are tagged with their type
    single = api.get(f"users/{INGRID}").json()
    assert set(single) - {"@odata.context"} == default


def test_percent_encoded_option_names_work_like_dollar_names(api: SyncGraph):
    encoded = api.get("users?%24select=displayName,department&%24top=3").json()
    plain = api.get("users?$select=displayName,department&$top=3").json()
    assert encoded["value"] == plain["value"] and len(plain["value"]) == 3
    assert all(set(u) == {"displayName", "department"} for u in encoded["value"])


# ---------------------------------------------------------------------------- $filter

USER_FILTERS: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
    ("displayName eq 'INGRID NILSEN'", lambda u: u["displayName"] == "Ingrid Nilsen"),
    ("accountEnabled eq false", lambda u: u.get("accountEnabled") is False),
    ("accountEnabled eq true", lambda u: u.get("accountEnabled") is True),
    ("jobTitle eq null", lambda u: u.get("jobTitle") is None),
    ("userType ne 'Member'", lambda u: u.get("userType") != "Member"),
    ("department in ('Finance', 'it')", lambda u: u.get("department") in ("Finance", "IT")),
    ("startswith(displayName,'k')", lambda u: u["displayName"].lower().startswith("k")),
    (
        "department eq 'Finance' and onPremisesSyncEnabled eq true",
        lambda u: u.get("department") == "Finance" and u.get("onPremisesSyncEnabled") is True,
    ),
    ("department eq 'IT' or department eq 'Sales'", lambda u: u.get("department") in ("IT", "Sales")),
    ("not(department eq 'Finance')", lambda u: u.get("department") != "Finance"),
    (
        "(department eq 'IT' or department eq 'Finance') and not startswith(displayName,'K')",
        lambda u: u.get("department") in ("IT", "Finance") and not u["displayName"].lower().startswith("k"),
    ),
]


@pytest.mark.parametrize("expression,expected", USER_FILTERS, ids=[f for f, _ in USER_FILTERS])
def test_filter_forms(api: SyncGraph, expression: str, expected: Callable[[dict[str, Any]], bool]):
    select = {"$select": "id,displayName,accountEnabled,jobTitle,userType,department,onPremisesSyncEnabled"}
    everyone = api.list_all("users", params=select)
    want = {u["id"] for u in everyone if expected(u)}
    assert want and want != ids(everyone), "the demo seed must make this filter discriminate"
    got = api.list_all("users", params={**select, "$filter": expression})
    assert ids(got) == want


def test_filter_any_on_group_types(api: SyncGraph):
    everyone = api.list_all("groups", params={"$select": "id,groupTypes"})
    unified = api.list_all("groups", params={"$filter": "groupTypes/any(c:c eq 'Unified')"})
    assert MARKETING in ids(unified)
    assert ids(unified) == {g["id"] for g in everyone if "Unified" in g["groupTypes"]} != ids(everyone)


@pytest.mark.parametrize(
    "expression",
    [
        "displayName eq",
        "contains(displayName,'a')",
        "displayName like 'a'",
        "(displayName eq 'a'",
        "startswith(displayName 'a')",
        "displayName eq 'unterminated",
        "createdDateTime ge 5",
        "accountEnabled eq 1",
        "groupTypes/any(c:c eq 'Unified')) or",
    ],
)
def test_unsupported_or_malformed_filter_is_400(api: SyncGraph, expression: str):
    assert_graph_error(api.get("users", params={"$filter": expression}), 400)


# ---------------------------------------------------------------------------- $count


def test_count_needs_consistency_level_eventual(api: SyncGraph):
    total = len(api.list_all("users"))
    response = api.get("users/$count", headers={"ConsistencyLevel": "eventual"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert response.text == str(total)
    assert_graph_error(api.get("users/$count"), 400)
    finance = api.get(
        "users/$count", params={"$filter": "department eq 'Finance'"}, headers={"ConsistencyLevel": "eventual"}
    )
    assert int(finance.text) == len(api.list_all("users", params={"$filter": "department eq 'Finance'"})) > 0


def test_count_true_adds_odata_count(big: SyncGraph):
    page = big.get("users", params={"$count": "true", "$top": 10}, headers={"ConsistencyLevel": "eventual"}).json()
    assert page["@odata.count"] == 250 and len(page["value"]) == 10
    assert_graph_error(big.get("users", params={"$count": "true"}), 400)


# ---------------------------------------------------------------------------- soft delete


def test_soft_deleted_user_is_listed_under_both_casts_and_restored_with_memberships(api: SyncGraph):
    def groups_of() -> set[str]:
        return {g["id"] for g in api.list_all("groups") if INGRID in ids(api.list_all(f"groups/{g['id']}/members"))}

    memberships = groups_of()
    assert EXPENSES_APPROVERS in memberships

    assert api.delete(f"users/{INGRID}").status_code == 204
    assert_graph_error(api.get(f"users/{INGRID}"), 404, "Request_ResourceNotFound")
    assert INGRID not in ids(api.list_all("users"))
    assert INGRID not in ids(api.list_all(f"groups/{EXPENSES_APPROVERS}/members"))
    for cast in ("microsoft.graph.user", "graph.user"):
        deleted = {u["id"]: u for u in api.list_all(f"directory/deletedItems/{cast}")}
        assert {INGRID, DELETED_USER} <= set(deleted)
        assert deleted[INGRID]["@odata.type"] == "#microsoft.graph.user"
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", deleted[INGRID]["deletedDateTime"])
    assert INGRID not in ids(api.list_all("directory/deletedItems/microsoft.graph.group"))

    restored = api.post(f"directory/deletedItems/{INGRID}/restore")
    assert restored.status_code == 200, restored.text
    assert restored.json()["id"] == INGRID and restored.json()["displayName"] == "Ingrid Nilsen"
    assert api.get(f"users/{INGRID}").status_code == 200
    assert INGRID not in ids(api.list_all("directory/deletedItems/microsoft.graph.user"))
    assert groups_of() == memberships


def test_deleted_items_need_a_type_cast(api: SyncGraph):
    response = api.get("directory/deletedItems")
    assert response.status_code in (400, 404)
    assert "value" not in response.json()
    assert_graph_error(response, (400, 404))


def test_permanent_delete_of_a_deleted_item(api: SyncGraph):
    assert api.get(f"directory/deletedItems/{DELETED_USER}").json()["id"] == DELETED_USER
    assert api.delete(f"directory/deletedItems/{DELETED_USER}").status_code == 204
    assert DELETED_USER not in ids(api.list_all("directory/deletedItems/microsoft.graph.user"))
    assert_graph_error(api.post(f"directory/deletedItems/{DELETED_USER}/restore"), 404)
    assert_graph_error(api.get(f"directory/deletedItems/{DELETED_USER}"), 404)
    assert_graph_error(api.get(f"users/{DELETED_USER}"), 404)


def test_restore_of_a_live_or_unknown_object_is_404(api: SyncGraph):
    assert_graph_error(api.post(f"directory/deletedItems/{INGRID}/restore"), 404)
    assert_graph_error(api.post("directory/deletedItems/00000000-0000-4000-8000-00000000dead/restore"), 404)


def test_conditional_access_policy_soft_delete_and_restore(api: SyncGraph):
    listing = "identity/conditionalAccess/deletedItems/policies"
    assert ids(api.list_all(listing)) == {DELETED_CA_POLICY}
    assert api.delete(f"identity/conditionalAccess/policies/{CA_POLICY}").status_code == 204
    assert_graph_error(api.get(f"identity/conditionalAccess/policies/{CA_POLICY}"), 404)
    deleted = {p["id"]: p for p in api.list_all(listing)}
    assert set(deleted) == {DELETED_CA_POLICY, CA_POLICY} and deleted[CA_POLICY]["deletedDateTime"]
    restored = api.post(f"{listing}/{CA_POLICY}/restore")
    assert restored.status_code == 200 and restored.json()["id"] == CA_POLICY
    assert api.get(f"identity/conditionalAccess/policies/{CA_POLICY}").json()["displayName"].startswith("CA001")
    assert ids(api.list_all(listing)) == {DELETED_CA_POLICY}


@pytest.mark.parametrize(
    "path",
    [f"oauth2PermissionGrants/{GRANT}", f"policies/authenticationStrengthPolicies/{CUSTOM_STRENGTH}"],
)
def test_types_without_soft_delete_are_deleted_for_good(api: SyncGraph, path: str):
    assert api.delete(path).status_code == 204
    assert_graph_error(api.get(path), 404)
    object_id = path.rsplit("/", 1)[1]
    for cast in ("user", "group", "application", "servicePrincipal"):
        assert object_id not in ids(api.list_all(f"directory/deletedItems/microsoft.graph.{cast}"))
    assert_graph_error(api.post(f"directory/deletedItems/{object_id}/restore"), 404)


def test_builtin_authentication_strength_cannot_be_deleted(api: SyncGraph):
    assert_graph_error(api.delete(f"policies/authenticationStrengthPolicies/{BUILTIN_STRENGTH}"), 400)
    assert api.get(f"policies/authenticationStrengthPolicies/{BUILTIN_STRENGTH}").status_code == 200


# ---------------------------------------------------------------------------- $ref links


@pytest.mark.parametrize("link", ["members", "owners"])
def test_add_and_remove_links(api: SyncGraph, link: str):
    path = f"groups/{SG_FINANCE}/{link}"
    before = api.list_all(path)
    assert INGRID not in ids(before)
    assert api.post(f"{path}/$ref", ref(INGRID)).status_code == 204
    listed = {m["id"]: m for m in api.list_all(path)}
    assert set(listed) == ids(before) | {INGRID}
    assert all(m["@odata.type"] == "#microsoft.graph.user" for m in listed.values())
    assert_graph_error(api.post(f"{path}/$ref", ref(INGRID)), 400)
    assert api.delete(f"{path}/{INGRID}/$ref").status_code == 204
    assert ids(api.list_all(path)) == ids(before)
    assert_graph_error(api.delete(f"{path}/{INGRID}/$ref"), 404)


def test_group_members_carry_their_own_type(api: SyncGraph):
    members = api.list_all("groups/f4a403fc-badb-4699-bdf2-7e8087fe33a7/members")
    types = {m["id"]: m["@odata.type"] for m in members}
    assert types["af02c155-9b00-4d4b-97a3-160656b67b06"] == "#microsoft.graph.group"
    assert types["70012bf2-b358-49c3-bc42-07660678a297"] == "#microsoft.graph.user"


def test_link_to_unknown_object_is_404(api: SyncGraph):
    unknown = "00000000-0000-4000-8000-00000000dead"
    assert_graph_error(api.post(f"groups/{SG_FINANCE}/members/$ref", ref(unknown)), 404)
    assert_graph_error(api.post(f"groups/{unknown}/members/$ref", ref(INGRID)), 404)
    assert_graph_error(api.post(f"groups/{SG_FINANCE}/owners/$ref", {"nothing": 1}), 400)


# ---------------------------------------------------------------------------- delta


def delta_round(api: SyncGraph, url: str, page_size: int = 4) -> tuple[list[dict[str, Any]], str]:
    """Every row of one delta round and its deltaLink; pages before the last carry only a nextLink."""
    rows: list[dict[str, Any]] = []
    headers = {"Prefer": f"odata.maxpagesize={page_size}"}
    while True:
        response = api.get(url, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        rows.extend(page["value"])
        if "@odata.nextLink" in page:
            assert "@odata.deltaLink" not in page
            url = page["@odata.nextLink"]
            assert url.startswith(BASE_URL)
            continue
        assert page["@odata.deltaLink"].startswith(BASE_URL)
        return rows, page["@odata.deltaLink"]


@pytest.mark.parametrize("type_name", DELTA_TYPES)
def test_delta_initial_round_then_exactly_the_changes(api: SyncGraph, type_name: str):
    rtype = REGISTRY.get(type_name)
    assert rtype.delta
    live = api.list_all(collection_path(rtype))
    rows, delta_link = delta_round(api, rtype.delta, page_size=2)
    assert len(rows) == len(live) > 2 and ids(rows) == ids(live)

    nothing, delta_link = delta_round(api, delta_link)
    assert nothing == []

    patched, soft, hard = [o["id"] for o in live if o["id"] not in SYNCHRONIZED][-3:]
    patch = WRITES[type_name][1]
    assert patch is not None
    assert api.patch(item_path(rtype, patched), patch).status_code == 204
    created = create(api, rtype)
    assert api.delete(item_path(rtype, soft)).status_code == 204
    assert api.delete(item_path(rtype, hard)).status_code == 204
    if rtype.soft_delete:
        assert api.delete(f"directory/deletedItems/{hard}").status_code == 204

    changed, _ = delta_round(api, delta_link)
    by_id = {r["id"]: r for r in changed}
    assert set(by_id) == {patched, created["id"], soft, hard}
    assert "@removed" not in by_id[patched] and "@removed" not in by_id[created["id"]]
    assert by_id[soft]["@removed"] == {"reason": "changed" if rtype.soft_delete else "deleted"}
    assert by_id[hard]["@removed"] == {"reason": "deleted"}
    assert set(by_id[hard]) == {"id", "@removed"}


def test_delta_with_parentheses_as_the_sdk_sends_it(api: SyncGraph):
    plain, _ = delta_round(api, "users/delta")
    parenthesised, delta_link = delta_round(api, "users/delta()")
    assert ids(plain) == ids(parenthesised) == ids(api.list_all("users"))
    assert api.patch(f"users/{INGRID}", {"jobTitle": "CEO"}).status_code == 204
    assert ids(delta_round(api, delta_link)[0]) == {INGRID}


def test_delta_reports_restore_as_a_change(api: SyncGraph):
    _, delta_link = delta_round(api, "users/delta")
    assert api.post(f"directory/deletedItems/{DELETED_USER}/restore").status_code == 200
    rows, _ = delta_round(api, delta_link)
    assert [r["id"] for r in rows] == [DELETED_USER] and "@removed" not in rows[0]


def test_group_delta_with_members(api: SyncGraph):
    rows, delta_link = delta_round(api, "groups/delta?$select=displayName,members")
    by_id = {r["id"]: r for r in rows}
    finance = by_id[SG_FINANCE]
    assert set(finance) == {"id", "displayName", "members@delta"}
    members = api.list_all(f"groups/{SG_FINANCE}/members")
    assert {m["id"] for m in finance["members@delta"]} == ids(members)
    assert all(m["@odata.type"] == "#microsoft.graph.user" for m in finance["members@delta"])

    assert api.post(f"groups/{SG_FINANCE}/members/$ref", ref(INGRID)).status_code == 204
    assert api.delete(f"groups/{EXPENSES_APPROVERS}/members/{INGRID}/$ref").status_code == 204
    changed, _ = delta_round(api, delta_link)
    by_id = {r["id"]: r for r in changed}
    assert set(by_id) == {SG_FINANCE, EXPENSES_APPROVERS}
    assert by_id[SG_FINANCE]["members@delta"] == [{"@odata.type": "#microsoft.graph.user", "id": INGRID}]
    assert by_id[EXPENSES_APPROVERS]["members@delta"] == [
        {"@odata.type": "#microsoft.graph.user", "id": INGRID, "@removed": {"reason": "deleted"}}
    ]


def test_delta_after_member_soft_delete_shows_the_membership_removed(api: SyncGraph):
    _, delta_link = delta_round(api, "groups/delta?$select=displayName,members")
    assert api.delete(f"users/{KARI}").status_code == 204
    changed, _ = delta_round(api, delta_link)
    finance = {r["id"]: r for r in changed}[SG_FINANCE]
    assert {"@odata.type": "#microsoft.graph.user", "id": KARI, "@removed": {"reason": "deleted"}} in finance[
        "members@delta"
    ]


def test_delta_token_latest_gives_an_empty_page_with_a_delta_link(api: SyncGraph):
    page = api.get("users/delta", params={"$deltatoken": "latest"}).json()
    assert page["value"] == [] and "@odata.nextLink" not in page
    assert api.patch(f"users/{INGRID}", {"jobTitle": "CEO"}).status_code == 204
    rows, _ = delta_round(api, page["@odata.deltaLink"])
    assert ids(rows) == {INGRID}


def test_expired_delta_token_is_410_sync_state_not_found():
    tenant = demo_tenant()
    clock = FakeClock()
    tenant.clock = clock
    api = SyncGraph(Emulator(tenant))
    _, delta_link = delta_round(api, "users/delta")
    clock.advance(6 * 24 * 3600)
    assert api.get(delta_link).status_code == 200
    clock.advance(24 * 3600 + 1)
    assert_graph_error(api.get(delta_link), 410, "syncStateNotFound")


def test_garbage_delta_token_is_400(api: SyncGraph):
    assert_graph_error(api.get("users/delta", params={"$deltatoken": "not-a-token"}), 400)
    _, groups_link = delta_round(api, "groups/delta")
    token = groups_link.split("$deltatoken=", 1)[1]
    assert_graph_error(api.get("users/delta", params={"$deltatoken": token}), 400)


# ---------------------------------------------------------------------------- $batch


def batch(api: SyncGraph, requests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    response = api.post("$batch", {"requests": requests})
    assert response.status_code == 200, response.text
    answers = response.json()["responses"]
    assert len(answers) == len(requests)
    return {a["id"]: a for a in answers}


def test_batch_of_20_answers_each_by_id(api: SyncGraph):
    users = api.list_all("users", params={"$select": "id"})[:20]
    answers = batch(
        api,
        [
            {"id": str(i), "method": "GET", "url": f"/users/{u['id']}?$select=id,displayName"}
            for i, u in enumerate(users)
        ],
    )
    assert set(answers) == {str(i) for i in range(20)}
    for i, user in enumerate(users):
        assert answers[str(i)]["status"] == 200
        assert answers[str(i)]["body"]["id"] == user["id"]


def test_batch_of_21_is_400(api: SyncGraph):
    requests = [{"id": str(i), "method": "GET", "url": "/users?$top=1"} for i in range(21)]
    assert_graph_error(api.post("$batch", {"requests": requests}), 400)


def test_batch_depends_on_and_failed_dependencies(api: SyncGraph):
    answers = batch(
        api,
        [
            {
                "id": "1",
                "method": "PATCH",
                "url": f"/users/{INGRID}",
                "body": {"jobTitle": "Chair"},
                "headers": {"Content-Type": "application/json"},
            },
            {"id": "2", "method": "GET", "url": f"/users/{INGRID}?$select=jobTitle", "dependsOn": ["1"]},
            {"id": "3", "method": "GET", "url": "/users/00000000-0000-4000-8000-00000000dead"},
            {
                "id": "4",
                "method": "PATCH",
                "url": f"/users/{LARS}",
                "body": {"jobTitle": "Never"},
                "headers": {"Content-Type": "application/json"},
                "dependsOn": ["3"],
            },
            {"id": "5", "method": "GET", "url": "/users?$top=1000"},
        ],
    )
    assert answers["1"]["status"] == 204
    assert answers["2"]["status"] == 200 and answers["2"]["body"]["jobTitle"] == "Chair"
    assert answers["3"]["status"] == 404 and answers["3"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert set(answers["3"]["body"]["error"]["innerError"]) >= {"date", "request-id", "client-request-id"}
    assert answers["4"]["status"] == 424
    assert answers["5"]["status"] == 400 and answers["5"]["body"]["error"]["message"]
    assert api.get(f"users/{LARS}", params={"$select": "jobTitle"}).json()["jobTitle"] == "Chief Financial Officer"


def test_batch_depending_on_a_later_request_is_400(api: SyncGraph):
    requests = [
        {"id": "1", "method": "GET", "url": "/users?$top=1", "dependsOn": ["2"]},
        {"id": "2", "method": "GET", "url": "/groups?$top=1"},
    ]
    assert_graph_error(api.post("$batch", {"requests": requests}), 400)


# ---------------------------------------------------------------------------- server-owned fields


def test_server_values_win_over_client_chosen_ones(api: SyncGraph):
    chosen = {
        "id": "11111111-1111-4111-8111-111111111111",
        "createdDateTime": "2001-01-01T00:00:00Z",
        "appId": "22222222-2222-4222-8222-222222222222",
    }
    app = api.post("applications", {"displayName": "Chosen ids", **chosen}).json()
    for name, value in chosen.items():
        assert app[name] != value
    assert GUID.match(app["id"]) and GUID.match(app["appId"]) and app["appId"] != app["id"]
    assert api.get(f"applications/{app['id']}").json()["appId"] == app["appId"]
    assert_graph_error(api.get(f"applications/{chosen['id']}"), 404)

    user = api.post("users", {**WRITES["user"][0](api), "id": chosen["id"]}).json()
    assert GUID.match(user["id"]) and user["id"] != chosen["id"]
    assert "passwordProfile" not in user
    assert "passwordProfile" not in api.get(f"users/{user['id']}", params={"$select": "id,displayName"}).json()


def _guid_le(guid: str) -> bytes:
    return uuid.UUID(guid).bytes_le


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_assignment_and_grant_ids_derive_from_the_objects_they_join(api: SyncGraph):
    # Read off real Graph ids (Azure/azure-cli#20974; serviceprincipal-post-approleassignedto.md's example):
    # a grant's id is its client's, resource's and (one user's consent) principal's GUID bytes, base64url.
    grant = api.post("oauth2PermissionGrants", WRITES["oauth2PermissionGrant"][0](api)).json()
    assert grant["id"] == _b64(_guid_le(HR_SP) + _guid_le(GRAPH_SP) + _guid_le(INGRID))
    assert len(grant["id"]) == 64 and not GUID.match(grant["id"])
    assignment = api.post(f"servicePrincipals/{HR_SP}/appRoleAssignedTo", WRITES["appRoleAssignment"][0](api)).json()
    assert OPAQUE_ID.match(assignment["id"])
    raw = base64.urlsafe_b64decode(assignment["id"] + "=")
    assert raw[:16] == _guid_le(assignment["principalId"])
    assert api.get(f"oauth2PermissionGrants/{grant['id']}").json()["scope"] == "User.Read"


REFUSED_PATCHES = {
    "read-only user createdDateTime": (f"users/{INGRID}", {"createdDateTime": "2001-01-01T00:00:00Z"}),
    "read-only group securityIdentifier": (f"groups/{SG_FINANCE}", {"securityIdentifier": "S-1-12-1-1-2-3-4"}),
    "read-only application appId": (f"applications/{HR_APP}", {"appId": "22222222-2222-4222-8222-222222222222"}),
    "unknown property": (f"users/{INGRID}", {"shoeSize": 44}),
    "relationship instead of $ref": (f"groups/{SG_FINANCE}", {"members": [INGRID]}),
    "synchronised user": (f"users/{SYNCED_USER}", {"jobTitle": "Controller"}),
    "built-in strength": (f"policies/authenticationStrengthPolicies/{BUILTIN_STRENGTH}", {"description": "Mine now"}),
    "allowedCombinations by PATCH": (
        f"policies/authenticationStrengthPolicies/{CUSTOM_STRENGTH}",
        {"allowedCombinations": ["fido2"]},
    ),
    "named location without @odata.type": (
        f"identity/conditionalAccess/namedLocations/{IP_LOCATION}",
        {"displayName": "No type"},
    ),
    "named location of another type": (
        f"identity/conditionalAccess/namedLocations/{IP_LOCATION}",
        {"@odata.type": "#microsoft.graph.countryNamedLocation", "displayName": "Wrong type"},
    ),
    "singleton id": ("policies/authorizationPolicy", {"id": "mine"}),
}


@pytest.mark.parametrize("path,body", REFUSED_PATCHES.values(), ids=REFUSED_PATCHES.keys())
def test_refused_patches_are_400_and_change_nothing(api: SyncGraph, path: str, body: dict[str, Any]):
    readable = ",".join(
        k
        for k in body
        if k
        in {
            "createdDateTime",
            "securityIdentifier",
            "appId",
            "jobTitle",
            "description",
            "allowedCombinations",
            "displayName",
        }
    )
    select = {"$select": readable or "id"}
    before = api.get(path, params=select).json()
    assert_graph_error(api.patch(path, body), 400)
    assert api.get(path, params=select).json() == before


@pytest.mark.parametrize("path", [f"users/{SYNCED_USER}", f"groups/{SYNCED_GROUP}"])
def test_synchronized_objects_cannot_be_deleted(api: SyncGraph, path: str):
    assert_graph_error(api.delete(path), 400)
    assert api.get(path).status_code == 200


def test_allowed_combinations_change_through_their_action(api: SyncGraph):
    path = f"policies/authenticationStrengthPolicies/{CUSTOM_STRENGTH}"
    previous = api.get(path).json()["allowedCombinations"]
    response = api.post(
        f"{path}/updateAllowedCombinations", {"allowedCombinations": ["fido2", "windowsHelloForBusiness"]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["previousCombinations"] == previous
    assert response.json()["currentCombinations"] == ["fido2", "windowsHelloForBusiness"]
    assert api.get(path).json()["allowedCombinations"] == ["fido2", "windowsHelloForBusiness"]
    builtin = f"policies/authenticationStrengthPolicies/{BUILTIN_STRENGTH}/updateAllowedCombinations"
    assert_graph_error(api.post(builtin, {"allowedCombinations": ["fido2"]}), 400)


def test_named_location_patch_with_its_type_is_204(api: SyncGraph):
    path = f"identity/conditionalAccess/namedLocations/{IP_LOCATION}"
    body = {"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Oslo head office"}
    assert api.patch(path, body).status_code == 204
    after = api.get(path).json()
    assert after["displayName"] == "Oslo head office" and after["@odata.type"] == "#microsoft.graph.ipNamedLocation"


def test_patch_changes_only_sent_properties_and_replaces_collections_whole(api: SyncGraph):
    select = {"$select": "businessPhones,jobTitle,department"}
    before = api.get(f"users/{INGRID}", params=select).json()
    assert api.patch(f"users/{INGRID}", {"businessPhones": ["+47 1"]}).status_code == 204
    after = api.get(f"users/{INGRID}", params=select).json()
    assert after == {**before, "businessPhones": ["+47 1"]}


def test_unreadable_json_body_is_400(api: SyncGraph):
    async def send() -> httpx.Response:
        async with http_client(api.app) as client:
            return await client.patch(
                f"{BASE_URL}/users/{INGRID}", content=b"{not json", headers={"Content-Type": "application/json"}
            )

    assert_graph_error(run(send()), 400)
    assert_graph_error(api.request("PATCH", f"users/{INGRID}"), 400)


# ---------------------------------------------------------------------------- URL forms


@pytest.mark.parametrize("collection,object_id", [("applications", HR_APP), ("servicePrincipals", HR_SP)])
def test_alternate_key_by_app_id(api: SyncGraph, collection: str, object_id: str):
    path = f"{collection}(appId='{HR_APP_ID}')"
    assert api.get(path).json()["id"] == object_id
    assert api.get(f"{collection}(appId='{HR_APP_ID.upper()}')").json()["id"] == object_id
    assert api.patch(path, {"notes": "By appId"}).status_code == 204
    assert api.get(f"{collection}/{object_id}", params={"$select": "notes"}).json()["notes"] == "By appId"
    assert_graph_error(api.get(f"{collection}(appId='00000000-0000-4000-8000-00000000dead')"), 404)


def test_guid_ids_are_case_insensitive(api: SyncGraph):
    assert api.get(f"users/{INGRID.upper()}").json()["id"] == INGRID
    assert api.get(f"groups/{SG_FINANCE.upper()}/members").status_code == 200
    assert api.post(f"groups/{SG_FINANCE}/members/$ref", ref(INGRID.upper())).status_code == 204
    assert INGRID in ids(api.list_all(f"groups/{SG_FINANCE}/members"))
    assert api.get(f"directory/deletedItems/{DELETED_USER.upper()}").json()["id"] == DELETED_USER
    assert api.get(f"directoryObjects/{SG_FINANCE.upper()}").json()["@odata.type"] == "#microsoft.graph.group"
    body = {"principalId": INGRID.upper(), "resourceId": HR_SP.upper(), "appRoleId": HR_ROLE}
    created = api.post(f"servicePrincipals/{HR_SP.upper()}/appRoleAssignedTo", body)
    assert created.status_code == 201, created.text
    assert created.json()["principalId"] == INGRID and created.json()["resourceId"] == HR_SP


def test_unknown_paths_get_graph_errors(api: SyncGraph):
    assert_graph_error(api.get("nonsense/things"), (400, 404))
    assert_graph_error(api.get(f"users/{INGRID}/shoes"), (400, 404))
    assert_graph_error(api.get("/beta/users"), 404)
    assert_graph_error(api.get("/"), 404)
    assert_graph_error(api.request("PUT", f"users/{INGRID}", json={}), (400, 405))


# ---------------------------------------------------------------------------- seed errors


def seed_error(data: Any, label: str = "broken.yaml") -> str:
    with pytest.raises(SeedError) as caught:
        SeedLoader(REGISTRY, data, label).load()
    return str(caught.value)


def test_seed_unknown_key_names_file_and_key():
    message = seed_error({"users": user_objects(1), "gadgets": []})
    assert "broken.yaml" in message and "gadgets" in message


def test_seed_dangling_member_names_file_key_and_id():
    group = {"id": "10000000-0000-4000-8000-000000000001", "displayName": "G", "groupTypes": []}
    key = f"groups/{group['id']}/members"
    message = seed_error({"users": user_objects(1), "groups": [group], key: ["00000000-0000-4000-8000-00000000dead"]})
    assert "broken.yaml" in message and key in message and "00000000-0000-4000-8000-00000000dead" in message


def test_a_seed_whose_policy_names_objects_deleted_since_is_a_normal_tenant():
    # Graph keeps the ids of users and groups deleted since in a policy, and Microsoft's own
    # conditionalaccesspolicy-get.md example excludes the built-in "MFA trusted IPs" location.
    data = demo_seed()
    conditions = data["identity/conditionalAccess/policies"][0]["conditions"]
    conditions["users"]["excludeGroups"] = ["00000000-0000-4000-8000-0000000000aa"]
    conditions["locations"] = {
        "includeLocations": ["All"],
        "excludeLocations": ["00000000-0000-0000-0000-000000000000"],
    }
    tenant = SeedLoader(REGISTRY, data, "demo-edited.yaml").load()
    assert tenant.count(REGISTRY.get("conditionalAccessPolicy")) == len(data["identity/conditionalAccess/policies"])


def test_seed_malformed_yaml_names_file_and_line(tmp_path: Path):
    path = tmp_path / "tenant.yaml"
    path.write_text("users:\n  - id: a\n    displayName: [unclosed\n  - id: b\n", encoding="utf-8")
    with pytest.raises(SeedError) as caught:
        load_tenant(REGISTRY, str(path))
    assert re.search(rf"{re.escape(str(path))}:\d+:\d+", str(caught.value)), str(caught.value)


def test_seed_that_is_not_a_mapping():
    message = seed_error([{"id": "x"}], "list.yaml")
    assert "list.yaml" in message and "mapping" in message


def test_seed_item_without_id_names_key():
    message = seed_error({"users": [{"displayName": "No id"}]})
    assert "broken.yaml" in message and "users" in message
