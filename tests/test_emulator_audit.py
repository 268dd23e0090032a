"""The emulator's directory audit log: an event per accepted write, naming who made it, and its list API.

Writes go through the tool's own GraphClient (msgraph-sdk's adapter) and, for other callers' tokens, raw
httpx with an unsigned JWT; the log is read back as a Graph client would, and parsed with msgraph-sdk's
typed DirectoryAudit model.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import FakeClock, SyncGraph, assert_graph_error, demo_seed, demo_tenant, with_graph
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from msgraph.generated.models.directory_audit import DirectoryAudit
from msgraph.generated.models.directory_audit_collection_response import DirectoryAuditCollectionResponse
from tokens import bearer
from tokens import role_jwt as jwt

from entra_gitops.emulator import Emulator
from entra_gitops.emulator.auth import LOCAL_ADMIN_ID, LOCAL_ADMIN_NAME
from entra_gitops.emulator.seed import SeedLoader
from entra_gitops.graph.client import BatchRequest, GraphClient
from entra_gitops.model.errors import SeedError
from entra_gitops.model.registry import default_registry

pytestmark = [
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning"),
]

SEED = demo_seed()
USERS = {u["displayName"]: u for u in SEED["users"]}
INGRID = "612d7050-db34-4834-96a9-fc94a9c226a7"  # a cloud user in no group of the tests below
KARI = USERS["Kari Nordmann"]["id"]
SG_FINANCE = "47469706-55e1-4537-a7f8-5bf63e58ff06"
GRAPH_SP = next(s for s in SEED["servicePrincipals"] if s["displayName"] == "Microsoft Graph")
AUDITS = "auditLogs/directoryAudits"
READER = ("AuditLog.Read.All", "Directory.Read.All")


def events(api: SyncGraph, **params: str) -> list[dict[str, Any]]:
    return api.list_all(AUDITS, params=params or None)


def only(api: SyncGraph) -> dict[str, Any]:
    listed = events(api)
    assert len(listed) == 1, [e["activityDisplayName"] for e in listed]
    return listed[0]


async def patch_department(client: GraphClient, user_id: str, value: str) -> None:
    response = await client.send("PATCH", f"users/{user_id}", body={"department": value})
    assert response.status == 204


# ---------------------------------------------------------------------------- who made the write


def test_a_write_with_the_local_token_is_the_emulator_administrator(emulator: Emulator, api: SyncGraph):
    assert events(api) == []
    with_graph(emulator, lambda client: patch_department(client, KARI, "Audit"))
    event = only(api)
    assert event["activityDisplayName"] == "Update user"
    assert event["category"] == "UserManagement" and event["operationType"] == "Update"
    assert event["result"] == "success" and event["loggedByService"] == "Core Directory"
    assert event["initiatedBy"] == {
        "user": {"id": LOCAL_ADMIN_ID, "displayName": LOCAL_ADMIN_NAME, "userPrincipalName": "admin@contoso.com"},
        "app": None,
    }
    assert event["activityDateTime"].endswith("Z")


def test_a_write_by_a_user_token_names_the_user(api: SyncGraph):
    token = jwt(
        scp="User.ReadWrite.All",
        upn="anna@contoso.com",
        oid="11111111-2222-4333-8444-555555555555",
        name="Anna Admin",
    )
    assert api.patch(f"users/{KARI}", {"jobTitle": "Controller"}, headers=bearer(token)).status_code == 204
    assert only(api)["initiatedBy"] == {
        "user": {
            "id": "11111111-2222-4333-8444-555555555555",
            "displayName": "Anna Admin",
            "userPrincipalName": "anna@contoso.com",
        },
        "app": None,
    }


def test_a_write_by_an_app_token_names_the_app_and_its_service_principal(api: SyncGraph):
    token = jwt("User.ReadWrite.All", appid=GRAPH_SP["appId"], app_displayname="Recovery job")
    assert api.patch(f"users/{KARI}", {"jobTitle": "Controller"}, headers=bearer(token)).status_code == 204
    # No oid claim: the service principal is the tenant's one whose appId the token names.
    assert only(api)["initiatedBy"] == {
        "user": None,
        "app": {"appId": GRAPH_SP["appId"], "displayName": "Recovery job", "servicePrincipalId": GRAPH_SP["id"]},
    }
    with_oid = jwt("User.ReadWrite.All", appid="a-client", app_displayname="Other", oid="99999999-0000-4000-8000-1")
    assert api.patch(f"users/{KARI}", {"jobTitle": "CFO"}, headers=bearer(with_oid)).status_code == 204
    assert events(api)[0]["initiatedBy"]["app"]["servicePrincipalId"] == "99999999-0000-4000-8000-1"


def test_the_client_request_id_is_the_correlation_id(api: SyncGraph):
    sent = "0f0e0d0c-0b0a-4908-8706-050403020100"
    assert api.patch(f"users/{KARI}", {"jobTitle": "X"}, headers={"client-request-id": sent}).status_code == 204
    assert only(api)["correlationId"] == sent


# ---------------------------------------------------------------------------- what the event says


def test_an_update_records_each_changed_property_old_and_new(api: SyncGraph):
    old = USERS["Kari Nordmann"]["displayName"]
    assert (
        api.patch(f"users/{KARI}", {"displayName": "Kari N.", "city": USERS["Kari Nordmann"].get("city")}).status_code
        == 204
    )
    (target,) = only(api)["targetResources"]
    assert target["id"] == KARI and target["type"] == "User" and target["displayName"] == "Kari N."
    assert target["userPrincipalName"] == USERS["Kari Nordmann"]["userPrincipalName"]
    # Only what changed: the city was sent as it already was.
    assert target["modifiedProperties"] == [
        {"displayName": "DisplayName", "oldValue": json.dumps([old]), "newValue": '["Kari N."]'},
        {"displayName": "Included Updated Properties", "oldValue": None, "newValue": '"DisplayName"'},
    ]


def test_a_password_never_reaches_the_log(api: SyncGraph):
    body = {"passwordProfile": {"password": "Sup3r-secret!", "forceChangePasswordNextSignIn": True}}
    assert api.patch(f"users/{KARI}", body).status_code == 204
    assert "Sup3r-secret!" not in json.dumps(events(api))


def test_member_add_and_remove_name_the_member_and_the_group(api: SyncGraph):
    reference = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{INGRID}"}
    assert api.post(f"groups/{SG_FINANCE}/members/$ref", reference).status_code == 204
    assert api.delete(f"groups/{SG_FINANCE}/members/{INGRID}/$ref").status_code == 204
    removed, added = events(api)
    assert added["activityDisplayName"] == "Add member to group" and added["category"] == "GroupManagement"
    assert removed["activityDisplayName"] == "Remove member from group"
    member, group = added["targetResources"]
    assert (member["id"], member["type"], group["id"], group["type"]) == (INGRID, "User", SG_FINANCE, "Group")
    assert {"displayName": "Group.ObjectID", "oldValue": None, "newValue": f'"{SG_FINANCE}"'} in member[
        "modifiedProperties"
    ]
    assert [t["id"] for t in removed["targetResources"]] == [INGRID, SG_FINANCE]


def test_create_delete_and_restore_are_each_an_event(api: SyncGraph):
    created = api.post(
        "users",
        {
            "accountEnabled": True,
            "displayName": "Audit Person",
            "mailNickname": "audit.person",
            "userPrincipalName": "audit.person@contoso.com",
            "passwordProfile": {"password": "Another-s3cret", "forceChangePasswordNextSignIn": True},
        },
    )
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    assert api.delete(f"users/{user_id}").status_code == 204
    assert api.post(f"directory/deletedItems/{user_id}/restore").status_code == 200
    listed = events(api)
    assert [e["activityDisplayName"] for e in listed] == ["Restore user", "Delete user", "Add user"]
    assert all(e["targetResources"][0]["id"] == user_id for e in listed)
    assert "Another-s3cret" not in json.dumps(listed)
    assert {"displayName": "DisplayName", "oldValue": None, "newValue": '["Audit Person"]'} in listed[2][
        "targetResources"
    ][0]["modifiedProperties"]


def test_policies_and_singletons_are_logged_by_their_service(api: SyncGraph):
    policy = next(p for p in SEED["identity/conditionalAccess/policies"] if p["state"] == "enabled")
    assert api.patch(f"identity/conditionalAccess/policies/{policy['id']}", {"state": "disabled"}).status_code == 204
    assert api.patch("policies/authorizationPolicy", {"allowInvitesFrom": "adminsAndGuestInviters"}).status_code == 204
    authorization, conditional = events(api)
    assert conditional["activityDisplayName"] == "Update conditional access policy"
    assert (conditional["category"], conditional["loggedByService"]) == ("Policy", "Conditional Access")
    assert conditional["targetResources"][0]["modifiedProperties"][0] == {
        "displayName": "State",
        "oldValue": '["enabled"]',
        "newValue": '["disabled"]',
    }
    assert authorization["activityDisplayName"] == "Update authorization policy"


# ---------------------------------------------------------------------------- refused writes and $batch


def test_a_refused_write_records_nothing(api: SyncGraph):
    reader = jwt("User.Read.All", upn="reader@contoso.com", scp="User.Read.All")
    assert_graph_error(api.patch(f"users/{KARI}", {"jobTitle": "X"}, headers=bearer(reader)), 403)
    assert_graph_error(api.patch(f"users/{KARI}", {"noSuchProperty": 1}), 400)
    assert_graph_error(api.post(f"groups/{SG_FINANCE}/members/$ref", {"nothing": 1}), 400)
    assert events(api) == []


def test_a_batch_records_one_event_per_accepted_sub_request(emulator: Emulator, api: SyncGraph):
    async def go(client: GraphClient) -> None:
        answers = await client.batch(
            [
                BatchRequest("1", "PATCH", f"users/{KARI}", {"jobTitle": "One"}),
                BatchRequest("2", "PATCH", f"users/{INGRID}", {"jobTitle": "Two"}),
                BatchRequest("3", "PATCH", f"users/{KARI}", {"noSuchProperty": True}),
            ]
        )
        assert sorted(a.status for a in answers.values()) == [204, 204, 400]

    with_graph(emulator, go)
    listed = events(api)
    assert sorted(e["targetResources"][0]["id"] for e in listed) == sorted([KARI, INGRID])
    assert len({e["correlationId"] for e in listed}) == 2


# ---------------------------------------------------------------------------- the list API


def clocked() -> tuple[SyncGraph, FakeClock]:
    tenant = demo_tenant()
    clock = FakeClock()
    tenant.clock = clock
    return SyncGraph(Emulator(tenant)), clock


def test_filter_by_activity_time_gives_the_slice(api: SyncGraph):
    api, clock = clocked()
    stamps = []
    for n in range(4):
        assert api.patch(f"users/{KARI}", {"jobTitle": f"T{n}"}).status_code == 204
        stamps.append(events(api)[0]["activityDateTime"])
        clock.advance(60)
    sliced = events(api, **{"$filter": f"activityDateTime ge {stamps[1]} and activityDateTime lt {stamps[3]}"})
    assert [e["activityDateTime"] for e in sliced] == [stamps[2], stamps[1]]  # newest first
    after = events(api, **{"$filter": f"activityDateTime gt {stamps[2]}"})
    assert [e["activityDateTime"] for e in after] == [stamps[3]]
    oldest_first = events(api, **{"$orderby": "activityDateTime asc", "$filter": f"activityDateTime le {stamps[1]}"})
    assert [e["activityDateTime"] for e in oldest_first] == stamps[:2]


def test_filter_by_target_initiator_category_and_correlation(api: SyncGraph):
    assert api.patch(f"users/{KARI}", {"jobTitle": "A"}).status_code == 204
    assert api.patch(f"users/{INGRID}", {"jobTitle": "B"}).status_code == 204
    assert api.patch(f"groups/{SG_FINANCE}", {"description": "C"}).status_code == 204
    scoped = events(api, **{"$filter": f"targetResources/any(t: t/id eq '{KARI}')"})
    assert [e["targetResources"][0]["id"] for e in scoped] == [KARI]
    groups = events(api, **{"$filter": "category eq 'GroupManagement' and activityDisplayName eq 'Update group'"})
    assert [e["targetResources"][0]["id"] for e in groups] == [SG_FINANCE]
    mine = events(api, **{"$filter": f"initiatedBy/user/id eq '{LOCAL_ADMIN_ID}'"})
    assert len(mine) == 3
    one = mine[1]
    assert events(api, **{"$filter": f"correlationId eq '{one['correlationId']}'"}) == [one]
    assert api.get(f"{AUDITS}/{one['id']}").json()["id"] == one["id"]


@pytest.mark.parametrize(
    "clause",
    ["displayName eq 'x'", "activityDateTime ge 'not a time'", "category eq 'A' or category eq 'B'", "result ne 'x'"],
)
def test_an_unsupported_filter_is_400(api: SyncGraph, clause: str):
    assert_graph_error(api.get(AUDITS, params={"$filter": clause}), 400)


def test_the_log_pages_with_absolute_next_links(api: SyncGraph):
    for n in range(7):
        assert api.patch(f"users/{KARI}", {"jobTitle": f"T{n}"}).status_code == 204
    first = api.get(AUDITS, params={"$top": "3"}).json()
    assert len(first["value"]) == 3 and first["@odata.nextLink"].startswith("http://127.0.0.1/v1.0/auditLogs")
    listed = events(api, **{"$top": "3"})
    assert len(listed) == 7 and len({e["id"] for e in listed}) == 7
    assert [e["activityDateTime"] for e in listed] == sorted((e["activityDateTime"] for e in listed), reverse=True)


def test_reading_the_log_needs_audit_log_and_directory_read(api: SyncGraph):
    assert api.patch(f"users/{KARI}", {"jobTitle": "A"}).status_code == 204
    assert_graph_error(api.get(AUDITS, headers=bearer(jwt("Directory.Read.All"))), 403, "Authorization_RequestDenied")
    assert_graph_error(api.get(AUDITS, headers=bearer(jwt("AuditLog.Read.All"))), 403, "Authorization_RequestDenied")
    assert len(api.get(AUDITS, headers=bearer(jwt(*READER))).json()["value"]) == 1


def test_retention_and_the_cap_bound_what_is_served():
    api, clock = clocked()
    assert api.patch(f"users/{KARI}", {"jobTitle": "Old"}).status_code == 204
    clock.advance(31 * 86400)
    assert api.patch(f"users/{KARI}", {"jobTitle": "New"}).status_code == 204
    assert [e["targetResources"][0]["modifiedProperties"][0]["newValue"] for e in events(api)] == ['["New"]']
    api.app.tenant.audit.cap = 2
    for n in range(3):
        assert api.patch(f"users/{KARI}", {"jobTitle": f"T{n}"}).status_code == 204
    assert [e["targetResources"][0]["modifiedProperties"][0]["newValue"] for e in events(api)] == ['["T2"]', '["T1"]']


def test_a_seed_may_hold_older_events():
    seed = demo_seed()
    seed[AUDITS] = [
        {
            "id": "Directory_seeded_1",
            "activityDateTime": "2026-11-01T08:00:00Z",
            "activityDisplayName": "Update user",
            "category": "UserManagement",
        }
    ]
    tenant = SeedLoader(default_registry(), seed, "seed.json").load()
    tenant.clock = FakeClock(1_793_606_400.0)  # 2026-11-02
    assert [e["id"] for e in SyncGraph(Emulator(tenant)).list_all(AUDITS)] == ["Directory_seeded_1"]
    seed[AUDITS] = [{"id": "x"}]
    with pytest.raises(SeedError, match="activityDateTime"):
        SeedLoader(default_registry(), seed, "seed.json").load()


# ---------------------------------------------------------------------------- msgraph-sdk's typed model


def test_msgraph_sdk_parses_the_events(emulator: Emulator, api: SyncGraph):
    reference = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{INGRID}"}
    assert api.post(f"groups/{SG_FINANCE}/members/$ref", reference).status_code == 204
    assert (
        api.patch(
            f"users/{KARI}", {"jobTitle": "Typed"}, headers=bearer(jwt("User.ReadWrite.All", appid="x"))
        ).status_code
        == 204
    )

    async def go(client: GraphClient) -> DirectoryAuditCollectionResponse | None:
        return await client.sdk.audit_logs.directory_audits.get()

    page = with_graph(emulator, go)
    assert page is not None and page.value is not None and len(page.value) == 2
    app_write, member_add = page.value
    assert member_add.activity_display_name == "Add member to group"
    assert member_add.initiated_by.user.id == LOCAL_ADMIN_ID and member_add.initiated_by.app is None
    assert app_write.initiated_by.app.app_id == "x"
    assert [t.id for t in member_add.target_resources] == [INGRID, SG_FINANCE]
    assert app_write.target_resources[0].modified_properties[0].new_value == '["Typed"]'
    assert str(member_add.correlation_id) == events(api)[1]["correlationId"]
    for raw in events(api):
        parsed = JsonParseNodeFactory().get_root_parse_node("application/json", json.dumps(raw).encode())
        typed = parsed.get_object_value(DirectoryAudit)
        assert typed.activity_date_time is not None and not typed.additional_data


# ---------------------------------------------------------------------------- groups/delta and owners


def test_group_delta_tracks_owners_when_selected(api: SyncGraph):
    first = api.get("groups/delta", params={"$select": "id,owners"}).json()
    while "@odata.nextLink" in first:
        first = api.get(first["@odata.nextLink"]).json()
    delta_link = first["@odata.deltaLink"]
    owners = [o["id"] for o in api.list_all(f"groups/{SG_FINANCE}/owners")]
    reference = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{INGRID}"}
    assert api.post(f"groups/{SG_FINANCE}/owners/$ref", reference).status_code == 204
    assert api.delete(f"groups/{SG_FINANCE}/owners/{owners[0]}/$ref").status_code == 204
    changed = api.get(delta_link).json()
    row = next(r for r in changed["value"] if r["id"] == SG_FINANCE)
    assert {"@odata.type": "#microsoft.graph.user", "id": INGRID} in row["owners@delta"]
    assert any(o["id"] == owners[0] and o["@removed"] == {"reason": "deleted"} for o in row["owners@delta"])
    assert "@odata.deltaLink" in changed


def test_a_foreign_or_garbage_delta_token_is_invalid_delta_token(api: SyncGraph):
    assert_graph_error(api.get("groups/delta", params={"$deltatoken": "garbage"}), 400, "Request_InvalidDeltaToken")
    users = api.get("users/delta", params={"$deltatoken": "latest"}).json()["@odata.deltaLink"]
    token = users.split("$deltatoken=", 1)[1]
    assert_graph_error(api.get("groups/delta", params={"$deltatoken": token}), 400, "Request_InvalidDeltaToken")


def test_audit_reads_work_through_the_tool_client(emulator: Emulator):
    async def go(client: GraphClient) -> list[dict[str, Any]]:
        await patch_department(client, KARI, "Read back")
        return await client.list_all(AUDITS, {"$filter": f"targetResources/any(t:t/id eq '{KARI}')"})

    listed = with_graph(emulator, go)
    assert [e["activityDisplayName"] for e in listed] == ["Update user"]
