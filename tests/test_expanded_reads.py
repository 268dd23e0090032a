"""Children read through their parent's list with $expand: Graph's limits in the emulator, and the same objects
as one read per parent, including parents whose children fill the expansion or more than one page."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import SyncGraph, assert_graph_error, graph_client, run, with_graph

from entra_gitops.emulator import Emulator
from entra_gitops.graph.client import GraphClient
from entra_gitops.graph.reader import EXPAND_CAP, _Reader, read_tenant
from entra_gitops.model.progress import watched
from entra_gitops.model.registry import default_registry

REGISTRY = default_registry()
ASSIGNMENT = REGISTRY.get("appRoleAssignment")
SP = REGISTRY.get("servicePrincipal")
USER = REGISTRY.get("user")


def grant(app: Emulator, resource: str, count: int) -> None:
    """`count` default-role assignments to users on the service principal `resource`."""
    users = list(app.tenant.objects(USER).values())
    for n in range(count):
        principal = users[n % len(users)]
        app.tenant.create(
            ASSIGNMENT,
            {
                "appRoleId": "00000000-0000-0000-0000-000000000000",
                "principalId": principal["id"],
                "principalType": "User",
                "principalDisplayName": principal["displayName"],
                "resourceId": resource,
            },
            resource,
        )


def more_service_principals(app: Emulator, count: int) -> list[str]:
    """`count` more service principals, so the expanded list needs more than one page."""
    made = []
    for n in range(count):
        obj = app.tenant.create(
            SP,
            {
                "appId": f"00000000-0000-4000-9000-{n:012d}",
                "displayName": f"Extra {n}",
                "servicePrincipalType": "Application",
            },
        )
        made.append(obj["id"])
    return made


def per_parent(client: GraphClient, parents: list[str]) -> list[dict[str, Any]]:
    """The assignments of `parents` read the way a child collection is read without expansion: one list each."""

    async def go() -> list[dict[str, Any]]:
        reader = _Reader(client, watched(None))
        paths = {p: f"servicePrincipals/{p}/appRoleAssignedTo" for p in parents}
        found = await reader.per_parent(ASSIGNMENT, paths, ASSIGNMENT.select, "appRoleAssignment")
        return [obj for items in found.values() for obj in items]

    return run(go())


def by_id(objects: Any) -> dict[str, Any]:
    return {o["id"]: o for o in objects}


def test_the_expanded_read_gives_what_one_read_per_parent_gives(emulator: Emulator) -> None:
    parents = list(emulator.tenant.objects(SP))
    grant(emulator, parents[0], EXPAND_CAP)  # exactly a full expansion: it may have been cut, so read again
    grant(emulator, parents[1], 1_050)  # more than one page of its own list
    more_service_principals(emulator, 230)  # three pages of 100 parents
    parents = list(emulator.tenant.objects(SP))
    client = graph_client(emulator)
    expanded = with_graph(emulator, lambda c: read_tenant(c, REGISTRY, (ASSIGNMENT,)))
    truth = per_parent(client, parents)
    assert by_id(expanded.objects["appRoleAssignment"]) == by_id(truth)
    assert len(truth) > 1_070
    assert "servicePrincipal" not in expanded.objects  # the expansion names the parents: they are not read again


def test_the_expanded_read_costs_a_page_per_hundred_parents(emulator: Emulator) -> None:
    more_service_principals(emulator, 230)
    parents = len(emulator.tenant.objects(SP))
    before = emulator.request_count
    with_graph(emulator, lambda c: read_tenant(c, REGISTRY, (ASSIGNMENT,)))
    assert emulator.request_count - before == -(-parents // 100)  # no parent was read one by one


def test_the_emulator_cuts_an_expansion_at_twenty_and_pages_a_hundred(emulator: Emulator, api: SyncGraph) -> None:
    sp = next(iter(emulator.tenant.objects(SP)))
    grant(emulator, sp, 45)
    more_service_principals(emulator, 150)
    page = api.get("servicePrincipals?$select=id&$expand=appRoleAssignedTo($select=id,principalId)&$top=999").json()
    assert len(page["value"]) == 100
    row = next(r for r in page["value"] if r["id"] == sp)
    assert len(row["appRoleAssignedTo"]) == EXPAND_CAP
    assert set(row["appRoleAssignedTo"][0]) == {"id", "principalId"}
    assert "appRoleAssignedTo@odata.nextLink" not in row
    # The next page keeps the expansion.
    follow = api.get(page["@odata.nextLink"]).json()
    assert all("appRoleAssignedTo" in r for r in follow["value"])


def test_a_link_expands_to_the_objects_it_points_at(api: SyncGraph) -> None:
    rows = api.get("groups?$select=id&$expand=members($select=id)").json()["value"]
    assert any(r["members"] for r in rows)
    member = next(m for r in rows for m in r["members"])
    assert member["@odata.type"].startswith("#microsoft.graph.") and set(member) == {"@odata.type", "id"}


@pytest.mark.parametrize(
    "path",
    [
        "servicePrincipals?$expand=nothingHere",
        "users?$expand=sponsors,manager",
        "users?$expand=sponsors($top=3)",
        "users/delta?$expand=sponsors",
        "groups/delta?$expand=members",
    ],
)
def test_the_emulator_refuses_an_expansion_it_does_not_serve(api: SyncGraph, path: str) -> None:
    assert_graph_error(api.get(path), 400)


def guests(app: Emulator, count: int) -> list[str]:
    """`count` more guests, each sponsored by one member (the first by 25, more than an expansion holds)."""
    members = [u for u in app.tenant.objects(USER).values() if u.get("userType") == "Member"]
    made = []
    for n in range(count):
        guest = app.tenant.create(
            USER,
            {
                "displayName": f"Guest {n}",
                "userPrincipalName": f"guest{n}_partner.example#EXT#@contoso.onmicrosoft.com",
                "userType": "Guest",
                "accountEnabled": True,
            },
        )
        for sponsor in members[: 25 if n == 0 else 1]:
            app.tenant.add_link(("user", "sponsors"), guest["id"], sponsor["id"])
        made.append(guest["id"])
    return made


def test_sponsors_come_with_the_guest_and_agent_user_lists_as_per_user_reads_give_them(emulator: Emulator) -> None:
    made = guests(emulator, 150)
    users = list(emulator.tenant.objects(USER).values())
    sponsors = USER.prop("sponsors")
    assert sponsors is not None and sponsors.link is not None
    read_for = [u["id"] for u in users if sponsors.link.is_read_for(u)]
    assert any(u.get("@odata.type") == "#microsoft.graph.agentUser" for u in users if u["id"] in read_for)
    before = emulator.request_count
    expanded = with_graph(emulator, lambda c: read_tenant(c, REGISTRY, (USER,)))
    listing_requests = emulator.request_count - before

    async def one_by_one(client: GraphClient) -> dict[str, Any]:
        found = await _Reader(client, watched(None)).per_parent(
            USER, {u: f"users/{u}/sponsors" for u in read_for}, ("id",), "user.sponsors"
        )
        return {u: tuple(m["id"] for m in found.get(u, ())) for u in read_for}

    truth = with_graph(emulator, one_by_one)
    links = expanded.links[("user", "sponsors")]
    assert {u: ids for u, ids in links.items() if u in read_for} == truth
    assert len(links[made[0]]) == 25  # cut at 20 in the list, read again in full
    assert not any(links[u["id"]] for u in users if u["id"] not in read_for)
    # The users' list, its deleted items, then 100 guests a page, the agent users, and the one guest again.
    assert listing_requests < 12


def test_a_page_token_that_expires_midway_starts_the_expanded_list_over(emulator: Emulator) -> None:
    from entra_gitops.emulator.limits import Faults, parse_faults

    more_service_principals(emulator, 230)
    grant(emulator, next(iter(emulator.tenant.objects(SP))), 3)
    clean = with_graph(emulator, lambda c: read_tenant(c, REGISTRY, (ASSIGNMENT,)))
    emulator.faults = Faults(parse_faults("expire-token,first=1,path=servicePrincipals"))
    before = emulator.request_count
    again = with_graph(emulator, lambda c: read_tenant(c, REGISTRY, (ASSIGNMENT,)))
    assert by_id(again.objects["appRoleAssignment"]) == by_id(clean.objects["appRoleAssignment"])
    assert emulator.request_count - before > -(-len(emulator.tenant.objects(SP)) // 100)  # it read pages again
