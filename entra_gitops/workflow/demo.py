"""The demo's story: its repository's settings, and realistic drift made through Graph, as mistakes arrive."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from entra_gitops.graph.client import GraphClient
from entra_gitops.model.registry import ThrottleScope
from entra_gitops.model.settings import DEFAULT_CONFIG_TEXT

CA = ThrottleScope.CONDITIONAL_ACCESS


class DriftStep(NamedTuple):
    """One change the demo made, in words, with the object it touched."""

    description: str
    object_id: str


def _pick(objects: list[dict[str, Any]], **wanted: Any) -> dict[str, Any]:
    """The first object (by display name) whose properties have the wanted values."""
    for obj in sorted(objects, key=lambda o: str(o.get("displayName"))):
        if all(obj.get(k) == v for k, v in wanted.items()):
            return obj
    raise LookupError(f"the demo tenant has no object with {wanted}")


async def make_drift(client: GraphClient) -> list[DriftStep]:
    """Disable a CA policy, change a department, soft-delete a user, add a member, create an app."""
    policies = await client.list_all("identity/conditionalAccess/policies", scope=CA)
    users = await client.list_all("users", {"$select": "id,displayName,department,onPremisesSyncEnabled,userType"})
    groups = await client.list_all("groups", {"$select": "id,displayName,groupTypes,onPremisesSyncEnabled"})
    steps: list[DriftStep] = []

    policy = _pick(policies, state="enabled")
    await client.send(
        "PATCH", f"identity/conditionalAccess/policies/{policy['id']}", body={"state": "disabled"}, scope=CA
    )
    steps.append(DriftStep(f"Disabled the Conditional Access policy {policy['displayName']!r}", policy["id"]))

    members = [
        u for u in users if u.get("userType") == "Member" and not u.get("onPremisesSyncEnabled") and u.get("department")
    ]
    mover = members[0]
    await client.send("PATCH", f"users/{mover['id']}", body={"department": "Procurement"})
    steps.append(
        DriftStep(
            f"Changed {mover['displayName']}'s department from {mover['department']!r} to 'Procurement'", mover["id"]
        )
    )

    leaver = members[-1]
    await client.send("DELETE", f"users/{leaver['id']}")
    steps.append(
        DriftStep(f"Deleted the user {leaver['displayName']} (soft delete: restorable for 30 days)", leaver["id"])
    )

    group = _pick(groups, groupTypes=[], onPremisesSyncEnabled=None)
    current = {m["id"] for m in await client.list_all(f"groups/{group['id']}/members", {"$select": "id"})}
    newcomer = next(u for u in members[1:-1] if u["id"] not in current)
    reference = {"@odata.id": f"{client.base_url}/directoryObjects/{newcomer['id']}"}
    await client.send("POST", f"groups/{group['id']}/members/$ref", body=reference)
    steps.append(DriftStep(f"Added {newcomer['displayName']} to the group {group['displayName']!r}", group["id"]))

    app = {"displayName": "Quarterly Report Exporter", "signInAudience": "AzureADMyOrg", "tags": ["demo"]}
    created = (await client.send("POST", "applications", body=app)).json()
    steps.append(DriftStep(f"Created the application {app['displayName']!r}", created["id"]))
    return steps


def demo_settings(users: Iterable[Mapping[str, Any]]) -> str:
    """The demo repository's settings: the defaults, with the demo tenant's break-glass accounts named."""
    accounts = sorted(
        str(user.get("userPrincipalName"))
        for user in users
        if str(user.get("displayName", "")).startswith("Break Glass")
    )
    if not accounts:
        return DEFAULT_CONFIG_TEXT
    listed = "".join(f"  - {account}\n" for account in accounts)
    return DEFAULT_CONFIG_TEXT + f"# The demo tenant's emergency access accounts.\nbreakGlass:\n{listed}"
