"""The emulator refuses what Microsoft Graph refuses: one test per behaviour, each asserting Graph's status and code.

The sources are cited where the emulator models each behaviour (emulator/hooks.py, emulator/values.py,
emulator/app.py); these tests pin the answers a client sees, over HTTP, in Graph's error shape.
"""

from __future__ import annotations

from typing import Any

from conftest import PASSWORD_PROFILE, SyncGraph, assert_graph_error, demo_seed

from entra_gitops.emulator import Emulator
from entra_gitops.emulator.seed import SeedLoader
from entra_gitops.model.registry import default_registry

REGISTRY = default_registry()
SEED = demo_seed()
USERS = {u["displayName"]: u for u in SEED["users"]}
GROUPS = {g["displayName"]: g for g in SEED["groups"]}
KARI, LARS, SIRI = (USERS[n]["id"] for n in ("Kari Nordmann", "Lars Haugen", "Siri Johansen"))
DYNAMIC = GROUPS["Sales - All (Dynamic)"]["id"]
SYNCED_GROUP = GROUPS["CORP-Oslo-Finance-Readers"]["id"]
FINANCE = GROUPS["SG-Finance"]["id"]
POLICY = next(p["id"] for p in SEED["identity/conditionalAccess/policies"] if p["state"] == "enabled")
LOCATIONS = {loc["displayName"]: loc for loc in SEED["identity/conditionalAccess/namedLocations"]}
HR_SP = next(sp for sp in SEED["servicePrincipals"] if sp["displayName"] == "Contoso HR Portal")
GRAPH_SP = next(sp for sp in SEED["servicePrincipals"] if sp["displayName"] == "Microsoft Graph")
ADMIN_GRANT = next(g for g in SEED["oauth2PermissionGrants"] if g["consentType"] == "AllPrincipals")
MISSING = "00000000-0000-4000-8000-0000000000ff"
TRUSTED_IPS = "00000000-0000-0000-0000-000000000000"  # the built-in "MFA trusted IPs" location


def ref(object_id: str) -> dict[str, str]:
    return {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{object_id}"}


def policy_path(policy_id: str = POLICY) -> str:
    return f"identity/conditionalAccess/policies/{policy_id}"


# -- values of the wrong type or enum ---------------------------------------------------------------


def test_a_value_of_the_wrong_type_is_refused_and_nothing_is_stored(api: SyncGraph) -> None:
    error = assert_graph_error(api.patch(f"users/{KARI}", {"accountEnabled": "notabool"}), 400, "Request_BadRequest")
    assert "Edm.Boolean" in error["message"] and "accountEnabled" in error["message"]
    assert api.get(f"users/{KARI}?$select=accountEnabled").json()["accountEnabled"] is True
    # OData's quoted spellings of a boolean are booleans (microsoft-graph-docs#12816).
    assert api.patch(f"users/{KARI}", {"accountEnabled": "false"}).status_code == 204
    assert api.get(f"users/{KARI}?$select=accountEnabled").json()["accountEnabled"] is False


def test_an_unknown_enum_value_is_refused_by_conditional_access(api: SyncGraph) -> None:
    error = assert_graph_error(api.patch(policy_path(), {"state": "bogus"}), 400, "BadRequest")
    assert error["message"].startswith("1007: Incoming ConditionalAccessPolicy object")
    nested = {"conditions": {"clientAppTypes": ["carrierPigeon"], "applications": {"includeApplications": ["All"]}}}
    assert_graph_error(api.patch(policy_path(), nested), 400, "BadRequest")
    assert api.get(policy_path()).json()["state"] == "enabled"


# -- membership Graph does not let a client change ---------------------------------------------------------


def test_a_dynamic_groups_members_cannot_be_added_or_removed(api: SyncGraph) -> None:
    members = [m["id"] for m in api.get(f"groups/{DYNAMIC}/members").json()["value"]]
    assert members
    assert_graph_error(api.post(f"groups/{DYNAMIC}/members/$ref", ref(KARI)), 403, "Authorization_RequestDenied")
    assert_graph_error(api.delete(f"groups/{DYNAMIC}/members/{members[0]}/$ref"), 403, "Authorization_RequestDenied")
    assert [m["id"] for m in api.get(f"groups/{DYNAMIC}/members").json()["value"]] == members


def test_a_synchronised_groups_members_cannot_be_changed_in_the_cloud(api: SyncGraph) -> None:
    error = assert_graph_error(api.post(f"groups/{SYNCED_GROUP}/members/$ref", ref(KARI)), 400, "Request_BadRequest")
    assert "on-premises mastered" in error["message"]


# -- soft-deleted users ---------------------------------------------------------------------------------------


def test_a_deleted_users_sign_in_name_is_freed_and_given_back_on_restore(api: SyncGraph) -> None:
    upn = USERS["Kari Nordmann"]["userPrincipalName"]
    assert api.delete(f"users/{KARI}").status_code == 204
    deleted = api.get(f"directory/deletedItems/{KARI}").json()
    assert deleted["userPrincipalName"] == KARI.replace("-", "") + upn
    assert api.post(f"directory/deletedItems/{KARI}/restore").status_code == 200
    assert api.get(f"users/{KARI}?$select=userPrincipalName").json()["userPrincipalName"] == upn


def test_a_restore_while_another_user_holds_the_name_is_refused_unless_renamed(api: SyncGraph) -> None:
    upn = USERS["Lars Haugen"]["userPrincipalName"]
    api.delete(f"users/{LARS}")
    newcomer = {"displayName": "Lars H.", "userPrincipalName": upn, "accountEnabled": True, "mailNickname": "lars.h"}
    newcomer |= PASSWORD_PROFILE
    assert api.post("users", newcomer).status_code == 201
    refused = api.post(f"directory/deletedItems/{LARS}/restore")
    assert_graph_error(refused, 400, "Request_MultipleObjectsWithSameKeyValue")
    renamed = api.post(f"directory/deletedItems/{LARS}/restore", {"newUserPrincipalName": "lars.old@contoso.com"})
    assert renamed.status_code == 200, renamed.text
    assert api.get(f"users/{LARS}?$select=userPrincipalName").json()["userPrincipalName"] == "lars.old@contoso.com"


def test_restore_parameters_are_for_users_only(api: SyncGraph) -> None:
    group = next(d for d in SEED["directory/deletedItems"] if d["@odata.type"] == "#microsoft.graph.group")
    response = api.post(f"directory/deletedItems/{group['id']}/restore", {"autoReconcileProxyConflict": True})
    assert_graph_error(response, 400, "Request_BadRequest")


# -- relationships that exist once -----------------------------------------------------------------------------


def test_the_same_app_role_assignment_twice_and_an_undefined_role_are_refused(api: SyncGraph) -> None:
    role = HR_SP["appRoles"][0]["id"]
    path = f"servicePrincipals/{HR_SP['id']}/appRoleAssignedTo"
    body = {"principalId": KARI, "resourceId": HR_SP["id"], "appRoleId": role}
    assert api.post(path, body).status_code == 201
    duplicate = assert_graph_error(api.post(path, body), 400, "Request_BadRequest")
    assert duplicate["message"] == "Permission being assigned already exists on the object."
    undefined = {**body, "principalId": LARS, "appRoleId": MISSING}
    assert "was not found on application" in assert_graph_error(api.post(path, undefined), 400)["message"]


def test_a_second_admin_grant_for_the_same_client_and_resource_is_a_conflict(api: SyncGraph) -> None:
    body = {k: ADMIN_GRANT[k] for k in ("clientId", "consentType", "resourceId")} | {"scope": "User.Read"}
    error = assert_graph_error(api.post("oauth2PermissionGrants", body), 409, "Request_MultipleObjectsWithSameKeyValue")
    assert error["message"] == "Permission entry already exists."
    assert api.delete(f"oauth2PermissionGrants/{ADMIN_GRANT['id']}").status_code == 204
    again = api.post("oauth2PermissionGrants", body)
    assert again.status_code == 201 and again.json()["id"] == ADMIN_GRANT["id"]  # the id follows from the pair


# -- Conditional Access references ---------------------------------------------------------------------------------


def _conditions(**users: Any) -> dict[str, Any]:
    return {
        "conditions": {
            "applications": {"includeApplications": ["All"]},
            "users": {"includeUsers": ["All"], **users},
            "locations": {"includeLocations": ["All"], "excludeLocations": [TRUSTED_IPS, "AllTrusted"]},
        }
    }


def test_a_policy_write_naming_a_missing_object_is_refused(api: SyncGraph) -> None:
    assert api.patch(policy_path(), _conditions(excludeUsers=[SIRI], excludeGroups=[FINANCE])).status_code == 204
    for kind, users in (("user", {"excludeUsers": [MISSING]}), ("group", {"excludeGroups": [MISSING]})):
        error = assert_graph_error(api.patch(policy_path(), _conditions(**users)), 400, "BadRequest")
        assert error["message"] == f"1054: Invalid {kind} value: {MISSING}."
    location = {"conditions": {**_conditions()["conditions"], "locations": {"includeLocations": [MISSING]}}}
    assert "Invalid location value" in assert_graph_error(api.patch(policy_path(), location), 400)["message"]
    strength = {"grantControls": {"operator": "OR", "authenticationStrength": {"id": MISSING}}}
    assert "authentication strength" in assert_graph_error(api.patch(policy_path(), strength), 400)["message"]


def test_a_tenant_whose_policy_names_a_deleted_group_still_serves_it() -> None:
    seed = demo_seed()
    seed["identity/conditionalAccess/policies"][0]["conditions"]["users"]["excludeGroups"] = [MISSING]
    app = Emulator(SeedLoader(REGISTRY, seed, "stale").load())
    api = SyncGraph(app)
    policy = seed["identity/conditionalAccess/policies"][0]["id"]
    assert api.get(policy_path(policy)).json()["conditions"]["users"]["excludeGroups"] == [MISSING]
    assert api.patch(policy_path(policy), {"state": "disabled"}).status_code == 204  # untouched references stay


def test_a_named_location_in_use_or_trusted_is_not_deleted(api: SyncGraph) -> None:
    used = next(
        loc["id"]
        for loc in LOCATIONS.values()
        if any(loc["id"] in str(p.get("conditions")) for p in SEED["identity/conditionalAccess/policies"])
    )
    error = assert_graph_error(api.delete(f"identity/conditionalAccess/namedLocations/{used}"), 400, "BadRequest")
    assert "is used by Conditional Access policies" in error["message"]
    trusted = next((loc for loc in LOCATIONS.values() if loc.get("isTrusted")), None)
    if trusted is not None and trusted["id"] != used:
        assert_graph_error(api.delete(f"identity/conditionalAccess/namedLocations/{trusted['id']}"), 400)


# -- protocol --------------------------------------------------------------------------------------------------------


def test_an_expired_delta_token_says_so_and_where_to_start_again(emulator: Emulator, api: SyncGraph) -> None:
    link = api.get("users/delta?$deltatoken=latest").json()["@odata.deltaLink"]
    emulator.delta_ttl = -1
    response = api.get(link)
    assert_graph_error(response, 410, "syncStateNotFound")
    assert response.headers["location"].endswith("/v1.0/users/delta")


def _batch(api: SyncGraph, requests: list[dict[str, Any]]) -> Any:
    return api.post("$batch", {"requests": requests})


def test_a_batch_with_a_body_but_no_content_type_or_ids_that_differ_in_case_is_refused(api: SyncGraph) -> None:
    body = {"id": "1", "method": "PATCH", "url": f"/users/{KARI}", "body": {"jobTitle": "Never"}}
    assert_graph_error(_batch(api, [body]), 400, "BadRequest")
    twins = [
        {"id": "a", "method": "GET", "url": f"/users/{KARI}"},
        {"id": "A", "method": "GET", "url": f"/users/{LARS}"},
    ]
    assert_graph_error(_batch(api, twins), 400, "BadRequest")
    assert api.get(f"users/{KARI}?$select=jobTitle").json().get("jobTitle") != "Never"
    ok = _batch(api, [{**body, "headers": {"content-type": "application/json"}}])
    assert ok.status_code == 200 and ok.json()["responses"][0]["status"] == 204
