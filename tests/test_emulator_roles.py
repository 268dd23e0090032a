"""Directory roles and administrative units on the emulator: what Graph accepts, and what it refuses, over HTTP.

The behaviours are modelled (and their sources cited) in emulator/hooks.py (`_role_assignment`, `check_method`,
`before_link_write`) and emulator/graph_ids.py; these tests pin the status, code and message a client sees.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import SyncGraph, assert_graph_error, demo_seed
from tokens import bearer
from tokens import role_jwt as jwt

from entra_gitops.emulator.graph_ids import role_assignment_id
from entra_gitops.emulator.hooks import GROUP_NOT_ROLE_ASSIGNABLE, INVALID_ROLE_SCOPE, ROLE_ASSIGNMENT_EXISTS

SEED = demo_seed()
USERS = {u["displayName"]: u["id"] for u in SEED["users"]}
GROUPS = {g["displayName"]: g["id"] for g in SEED["groups"]}
SPS = {s["displayName"]: s["id"] for s in SEED["servicePrincipals"]}
UNITS = {u["displayName"]: u["id"] for u in SEED["directory/administrativeUnits"]}
KARI, HANNA, LARS = USERS["Kari Nordmann"], USERS["Hanna Berg"], USERS["Lars Haugen"]
PRIVILEGED_GROUP = GROUPS["Entra Privileged Admins"]  # isAssignableToRole: true
FINANCE = GROUPS["SG-Finance"]  # an ordinary security group
OSLO = UNITS["Oslo office"]
HELPDESK = "729827e3-9c14-49f7-bb1b-9608f156bbb8"
GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
CUSTOM_ROLE = next(r["id"] for r in SEED["roleManagement/directory/roleDefinitions"] if not r["isBuiltIn"])
MISSING = "00000000-0000-4000-8000-0000000000ff"
ASSIGNMENTS = "roleManagement/directory/roleAssignments"
DEFINITIONS = "roleManagement/directory/roleDefinitions"
ELIGIBILITIES = "roleManagement/directory/roleEligibilityScheduleInstances"
UNITS_PATH = "directory/administrativeUnits"


def assignment(principal: str, role: str = GLOBAL_READER, scope: str = "/") -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.unifiedRoleAssignment",
        "principalId": principal,
        "roleDefinitionId": role,
        "directoryScopeId": scope,
    }


def ref(object_id: str) -> dict[str, str]:
    return {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{object_id}"}


def as_app(*roles: str) -> dict[str, str]:
    return bearer(jwt(*roles))


# -- role assignments ------------------------------------------------------------------------------------


def test_a_created_assignment_has_graphs_id_shape_and_lists_back(api: SyncGraph) -> None:
    response = api.post(ASSIGNMENTS, assignment(HANNA))
    assert response.status_code == 201, response.text
    made = response.json()
    # Role template bytes, principal bytes, "-1" for the tenant (rbacapplication-list-roleassignments.md's ids).
    assert made["id"] == role_assignment_id(GLOBAL_READER, HANNA, "/")
    assert made["id"].endswith("-1") and len(made["id"]) == 45
    assert (made["principalId"], made["roleDefinitionId"], made["directoryScopeId"]) == (HANNA, GLOBAL_READER, "/")
    listed = api.list_all(ASSIGNMENTS, params={"$filter": f"principalId eq '{HANNA}'"})
    assert [a["id"] for a in listed] == [made["id"]]
    assert api.get(f"{ASSIGNMENTS}/{made['id']}").json()["principalId"] == HANNA


def test_an_assignment_scoped_to_a_unit_and_to_a_role_by_id(api: SyncGraph) -> None:
    scoped = api.post(ASSIGNMENTS, assignment(HANNA, HELPDESK, f"/administrativeUnits/{OSLO}"))
    assert scoped.status_code == 201, scoped.text
    assert scoped.json()["id"] == role_assignment_id(HELPDESK, HANNA, f"/administrativeUnits/{OSLO}")
    # The same principal and role for the whole tenant is another assignment, with another id.
    tenant_wide = api.post(ASSIGNMENTS, assignment(HANNA, HELPDESK))
    assert tenant_wide.status_code == 201 and tenant_wide.json()["id"] != scoped.json()["id"]
    custom = api.post(ASSIGNMENTS, assignment(SPS["Contoso HR Portal"], CUSTOM_ROLE))
    assert custom.status_code == 201, custom.text
    group = api.post(ASSIGNMENTS, assignment(PRIVILEGED_GROUP))
    assert group.status_code == 201, group.text


@pytest.mark.parametrize("principal", [MISSING, UNITS["Oslo office"]])
def test_a_principal_that_is_no_user_group_or_service_principal_is_not_found(api: SyncGraph, principal: str) -> None:
    error = assert_graph_error(api.post(ASSIGNMENTS, assignment(principal)), 404, "Request_ResourceNotFound")
    assert principal in error["message"]


def test_a_role_that_is_not_defined_is_not_found(api: SyncGraph) -> None:
    error = assert_graph_error(api.post(ASSIGNMENTS, assignment(HANNA, MISSING)), 404, "Request_ResourceNotFound")
    assert MISSING in error["message"]


@pytest.mark.parametrize(
    "scope", ["/administrativeUnits/" + MISSING, "/groups/" + FINANCE, "/administrativeUnits/", "tenant"]
)
def test_a_scope_that_is_neither_the_tenant_nor_a_live_unit_is_refused(api: SyncGraph, scope: str) -> None:
    error = assert_graph_error(api.post(ASSIGNMENTS, assignment(HANNA, scope=scope)), 400, "Request_BadRequest")
    assert error["message"] == INVALID_ROLE_SCOPE


def test_a_deleted_unit_is_no_scope(api: SyncGraph) -> None:
    assert api.delete(f"{UNITS_PATH}/{OSLO}").status_code == 204
    scope = f"/administrativeUnits/{OSLO}"
    error = assert_graph_error(api.post(ASSIGNMENTS, assignment(HANNA, scope=scope)), 400, "Request_BadRequest")
    assert error["message"] == INVALID_ROLE_SCOPE


def test_a_duplicate_assignment_conflicts(api: SyncGraph) -> None:
    existing = next(a for a in SEED[ASSIGNMENTS] if a["roleDefinitionId"] == GLOBAL_ADMIN)
    again = assignment(existing["principalId"], GLOBAL_ADMIN)
    error = assert_graph_error(api.post(ASSIGNMENTS, again), 400, "Request_BadRequest")
    assert error["message"] == ROLE_ASSIGNMENT_EXISTS
    assert len(api.list_all(ASSIGNMENTS)) == len(SEED[ASSIGNMENTS])


def test_a_group_that_is_not_role_assignable_is_refused(api: SyncGraph) -> None:
    error = assert_graph_error(api.post(ASSIGNMENTS, assignment(FINANCE)), 400, "Request_BadRequest")
    assert error["message"] == GROUP_NOT_ROLE_ASSIGNABLE


@pytest.mark.parametrize("missing", ["principalId", "roleDefinitionId", "directoryScopeId"])
def test_a_create_without_a_required_property_is_refused(api: SyncGraph, missing: str) -> None:
    body = {k: v for k, v in assignment(HANNA).items() if k != missing}
    error = assert_graph_error(api.post(ASSIGNMENTS, body), 400, "Request_BadRequest")
    assert missing in error["message"]


@pytest.mark.parametrize("body", [{}, {"directoryScopeId": f"/administrativeUnits/{OSLO}"}])
def test_an_assignment_has_no_update(api: SyncGraph, body: dict[str, Any]) -> None:
    existing = SEED[ASSIGNMENTS][0]
    error = assert_graph_error(api.patch(f"{ASSIGNMENTS}/{existing['id']}", body), 405, "Request_BadRequest")
    assert "PATCH" in error["message"]
    assert api.get(f"{ASSIGNMENTS}/{existing['id']}").json()["directoryScopeId"] == existing["directoryScopeId"]


def test_an_assignment_is_deleted_for_good(api: SyncGraph) -> None:
    existing = SEED[ASSIGNMENTS][-1]["id"]
    assert api.delete(f"{ASSIGNMENTS}/{existing}").status_code == 204
    assert_graph_error(api.get(f"{ASSIGNMENTS}/{existing}"), 404, "Request_ResourceNotFound")
    assert_graph_error(api.delete(f"{ASSIGNMENTS}/{existing}"), 404, "Request_ResourceNotFound")


def test_a_built_in_role_definition_is_neither_changed_nor_deleted(api: SyncGraph) -> None:
    path = f"{DEFINITIONS}/{GLOBAL_ADMIN}"
    error = assert_graph_error(api.patch(path, {"description": "Mine now"}), 400, "Request_BadRequest")
    assert "cannot be modified" in error["message"]
    error = assert_graph_error(api.delete(path), 400, "Request_BadRequest")
    assert "cannot be deleted" in error["message"]
    assert api.get(path).json()["description"].startswith("Can manage all aspects")


# -- eligibility schedule instances -----------------------------------------------------------------------


def test_eligibility_instances_are_read_only(api: SyncGraph) -> None:
    existing = SEED[ELIGIBILITIES][0]["id"]
    assert api.get(f"{ELIGIBILITIES}/{existing}").status_code == 200
    assert len(api.list_all(ELIGIBILITIES)) == len(SEED[ELIGIBILITIES])
    created = {"principalId": HANNA, "roleDefinitionId": GLOBAL_ADMIN, "directoryScopeId": "/"}
    for response, method in (
        (api.post(ELIGIBILITIES, created), "POST"),
        (api.patch(f"{ELIGIBILITIES}/{existing}", {"endDateTime": None}), "PATCH"),
        (api.delete(f"{ELIGIBILITIES}/{existing}"), "DELETE"),
    ):
        error = assert_graph_error(response, 405, "Request_BadRequest")
        assert method in error["message"]
    assert len(api.list_all(ELIGIBILITIES)) == len(SEED[ELIGIBILITIES])


def test_eligibility_writes_are_refused_before_permissions(api: SyncGraph) -> None:
    # Graph has no such method: the answer is the same whatever the token grants.
    response = api.post(ELIGIBILITIES, {"principalId": HANNA}, headers=as_app())
    assert_graph_error(response, 405, "Request_BadRequest")


# -- administrative units --------------------------------------------------------------------------------


def test_a_unit_is_soft_deleted_and_restored_with_its_members(api: SyncGraph) -> None:
    members = {m["id"] for m in api.list_all(f"{UNITS_PATH}/{OSLO}/members")}
    assert members == set(SEED[f"{UNITS_PATH}/{OSLO}/members"])
    assert api.delete(f"{UNITS_PATH}/{OSLO}").status_code == 204
    assert_graph_error(api.get(f"{UNITS_PATH}/{OSLO}"), 404, "Request_ResourceNotFound")
    deleted = api.list_all("directory/deletedItems/microsoft.graph.administrativeUnit")
    assert [d["id"] for d in deleted] == [OSLO]
    assert deleted[0]["deletedDateTime"]
    assert api.get(f"directory/deletedItems/{OSLO}").json()["displayName"] == "Oslo office"
    restored = api.post(f"directory/deletedItems/{OSLO}/restore")
    assert restored.status_code == 200, restored.text
    assert api.get(f"{UNITS_PATH}/{OSLO}").json()["displayName"] == "Oslo office"
    assert {m["id"] for m in api.list_all(f"{UNITS_PATH}/{OSLO}/members")} == members
    assert api.list_all("directory/deletedItems/microsoft.graph.administrativeUnit") == []


def test_a_member_is_added_once(api: SyncGraph) -> None:
    path = f"{UNITS_PATH}/{OSLO}/members/$ref"
    assert api.post(path, ref(HANNA)).status_code == 204
    error = assert_graph_error(api.post(path, ref(HANNA)), 400, "Request_BadRequest")
    assert "already exist" in error["message"]
    assert api.delete(f"{UNITS_PATH}/{OSLO}/members/{HANNA}/$ref").status_code == 204
    assert_graph_error(api.delete(f"{UNITS_PATH}/{OSLO}/members/{HANNA}/$ref"), 404, "Request_ResourceNotFound")


def test_a_dynamic_units_members_are_not_written(api: SyncGraph) -> None:
    dynamic = {
        "displayName": "Oslo staff (dynamic)",
        "membershipType": "Dynamic",
        "membershipRule": '(user.city -eq "Oslo")',
        "membershipRuleProcessingState": "On",
    }
    made = api.post(UNITS_PATH, dynamic)
    assert made.status_code == 201, made.text
    unit = made.json()["id"]
    assert_graph_error(api.post(f"{UNITS_PATH}/{unit}/members/$ref", ref(HANNA)), 403, "Authorization_RequestDenied")
    assert_graph_error(api.delete(f"{UNITS_PATH}/{unit}/members/{HANNA}/$ref"), 403, "Authorization_RequestDenied")


@pytest.mark.parametrize("change", [{"isMemberManagementRestricted": True}, {"visibility": "HiddenMembership"}])
def test_restriction_and_visibility_are_set_at_creation_only(api: SyncGraph, change: dict[str, Any]) -> None:
    # administrativeunit-update.md lists only displayName and description as updatable.
    (name,) = change
    error = assert_graph_error(api.patch(f"{UNITS_PATH}/{OSLO}", change), 400, "Request_BadRequest")
    assert name in error["message"] and "read-only" in error["message"]
    assert api.get(f"{UNITS_PATH}/{OSLO}").json()[name] in (None, False)
    assert api.patch(f"{UNITS_PATH}/{OSLO}", {"description": "Oslo HQ"}).status_code == 204
    made = api.post(UNITS_PATH, {"displayName": "Board", **change})
    assert made.status_code == 201, made.text
    assert made.json()[name] == change[name]


# -- permissions -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "needed"),
    [
        (ASSIGNMENTS, "RoleManagement.Read.Directory"),
        (DEFINITIONS, "RoleManagement.Read.Directory"),
        (ELIGIBILITIES, "RoleEligibilitySchedule.Read.Directory"),
        (ELIGIBILITIES, "RoleManagement.Read.Directory"),
        (UNITS_PATH, "AdministrativeUnit.Read.All"),
        (f"{UNITS_PATH}/{OSLO}/members", "AdministrativeUnit.Read.All"),
        ("directory/deletedItems/microsoft.graph.administrativeUnit", "AdministrativeUnit.Read.All"),
    ],
)
def test_reads_need_their_permission(api: SyncGraph, path: str, needed: str) -> None:
    assert_graph_error(api.get(path, headers=as_app("User.Read.All")), 403, "Authorization_RequestDenied")
    assert api.get(path, headers=as_app(needed)).status_code == 200


def test_role_assignment_writes_need_role_management_read_write(api: SyncGraph) -> None:
    body = assignment(HANNA)
    for weaker in ("RoleManagement.Read.Directory", "Directory.ReadWrite.All"):
        assert_graph_error(api.post(ASSIGNMENTS, body, headers=as_app(weaker)), 403, "Authorization_RequestDenied")
    writer = as_app("RoleManagement.ReadWrite.Directory")
    made = api.post(ASSIGNMENTS, body, headers=writer)
    assert made.status_code == 201, made.text
    path = f"{ASSIGNMENTS}/{made.json()['id']}"
    assert_graph_error(api.delete(path, headers=as_app("RoleManagement.Read.Directory")), 403)
    assert api.delete(path, headers=writer).status_code == 204


def test_unit_writes_need_administrative_unit_read_write(api: SyncGraph) -> None:
    reader, writer = as_app("AdministrativeUnit.Read.All"), as_app("AdministrativeUnit.ReadWrite.All")
    members = f"{UNITS_PATH}/{OSLO}/members/$ref"
    assert_graph_error(api.post(members, ref(HANNA), headers=reader), 403, "Authorization_RequestDenied")
    assert api.post(members, ref(HANNA), headers=writer).status_code == 204
    assert_graph_error(api.delete(f"{UNITS_PATH}/{OSLO}", headers=reader), 403, "Authorization_RequestDenied")
    assert api.delete(f"{UNITS_PATH}/{OSLO}", headers=writer).status_code == 204
    restore = f"directory/deletedItems/{OSLO}/restore"
    assert_graph_error(api.post(restore, headers=reader), 403, "Authorization_RequestDenied")
    assert api.post(restore, headers=writer).status_code == 200
    made = api.post(UNITS_PATH, {"displayName": "Bergen office"}, headers=writer)
    assert made.status_code == 201, made.text


@pytest.mark.parametrize("group", ["Contoso Marketing", "Entra Privileged Admins"])
def test_a_restricted_unit_takes_only_plain_security_groups(api: SyncGraph, group: str) -> None:
    # administrativeunit-post-members.md: no mail-enabled, Microsoft 365 or synchronised group in a restricted unit.
    restricted = UNITS["Executives (restricted)"]
    reference = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{GROUPS[group]}"}
    answer = api.post(f"{UNITS_PATH}/{restricted}/members/$ref", reference)
    if group == "Contoso Marketing":  # a Microsoft 365 group
        assert_graph_error(answer, 400, "Request_BadRequest")
        assert GROUPS[group] not in {m["id"] for m in api.list_all(f"{UNITS_PATH}/{restricted}/members")}
    else:  # a security group, neither mail-enabled nor synchronised
        assert answer.status_code == 204, answer.text
    # An ordinary unit takes either.
    assert api.post(f"{UNITS_PATH}/{OSLO}/members/$ref", reference).status_code == 204
