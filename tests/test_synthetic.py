"""Synthetic tenants and the demo seed: deterministic, the size asked for, and every reference resolves."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

import pytest
from ruamel.yaml import YAML

from entra_gitops.emulator.seed import SeedLoader
from entra_gitops.emulator.synthetic import SyntheticSpec, generate, parse_spec
from entra_gitops.model.registry import default_registry

MICROSOFT_TENANT_ID = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
DEFAULT_ACCESS_ROLE = "00000000-0000-0000-0000-000000000000"
CA_USER_LITERALS = {"All", "None", "GuestsOrExternalUsers"}
CA_LOCATION_LITERALS = {"All", "AllTrusted"}
CA_APP_LITERALS = {"All", "None", "Office365", "MicrosoftAdminPortals"}
# Graph's own target names in the authentication methods policy ("nobody" is the all-zero id).
METHOD_TARGET_LITERALS = {"all_users", "00000000-0000-0000-0000-000000000000"}


def demo_text() -> str:
    return resources.files("entra_gitops.emulator").joinpath("seeds/demo.yaml").read_text(encoding="utf-8")


def by_id(items: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {item["id"]: item for item in items}


def dangling_references(seed: Mapping[str, Any]) -> list[str]:
    """Every reference in a seed that names nothing in it, as readable problems (empty when all resolve)."""
    problems: list[str] = []

    def expect(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    users = by_id(seed.get("users", []))
    groups = by_id(seed.get("groups", []))
    sps = by_id(seed.get("servicePrincipals", []))
    apps = seed.get("applications", [])
    locations = by_id(seed.get("identity/conditionalAccess/namedLocations", []))
    strengths = by_id(seed.get("policies/authenticationStrengthPolicies", []))
    deleted = seed.get("directory/deletedItems", [])
    principals = {"User": users, "Group": groups, "ServicePrincipal": sps}
    directory = {**users, **groups, **sps}
    sp_by_app_id = {sp["appId"]: sp for sp in sps.values() if "appId" in sp}

    for name in ("users", "groups", "applications", "servicePrincipals", "oauth2PermissionGrants"):
        ids = [item["id"] for item in seed.get(name, [])]
        expect(len(ids) == len(set(ids)), f"{name}: duplicate ids")
    live_and_deleted = list(directory) + [item["id"] for item in apps] + [item["id"] for item in deleted]
    expect(len(live_and_deleted) == len(set(live_and_deleted)), "directory object ids collide across types")
    expect(len(seed.get("organization", [])) == 1, "organization must hold exactly one object")

    for key, value in seed.items():
        parts = key.split("/")
        if parts[0] == "groups" and len(parts) == 3:
            expect(parts[1] in groups, f"{key}: no such group")
            allowed = directory if parts[2] == "members" else {**users, **sps}
            for member in value:
                expect(member in allowed, f"{key}: {member} does not exist")
        elif parts[0] == "users" and parts[-1] == "sponsors":
            expect(parts[1] in users, f"{key}: no such user")
            for sponsor in value:
                expect(sponsor in {**users, **groups}, f"{key}: sponsor {sponsor} is not a user or group")
        elif parts[0] == "servicePrincipals" and parts[-1] == "appRoleAssignedTo":
            resource = sps.get(parts[1])
            expect(resource is not None, f"{key}: no such service principal")
            roles = {r["id"] for r in resource["appRoles"]} | {DEFAULT_ACCESS_ROLE} if resource else set()
            for a in value:
                expect(a["resourceId"] == parts[1], f"{key}: {a['id']} has resourceId {a['resourceId']}")
                expect(
                    a["principalId"] in principals.get(a["principalType"], {}),
                    f"{key}: {a['id']}: {a['principalType']} {a['principalId']} does not exist",
                )
                expect(a["appRoleId"] in roles, f"{key}: {a['id']}: app role {a['appRoleId']} not on the resource")

    for user in users.values():
        if user.get("identityParentId"):
            parent = sps.get(user["identityParentId"], {})
            expect(
                parent.get("@odata.type") == "#microsoft.graph.agentIdentity",
                f"agent user {user['id']}: identityParentId {user['identityParentId']} is not an agent identity",
            )
    for sp in sps.values():
        if "appId" not in sp:
            # An agent identity has no app registration of its own: it names its blueprint's appId.
            expect(
                sp.get("agentIdentityBlueprintId") in {a["appId"] for a in apps},
                f"agent identity {sp['id']}: agentIdentityBlueprintId names no blueprint here",
            )
            continue
        expect(
            sp["appId"] in {a["appId"] for a in apps} or sp.get("appOwnerOrganizationId") == MICROSOFT_TENANT_ID,
            f"service principal {sp['id']}: appId {sp['appId']} is neither an app here nor Microsoft's",
        )
    for app in apps:
        expect(app["appId"] in sp_by_app_id, f"application {app['id']} has no service principal")
        for rra in app.get("requiredResourceAccess", []):
            resource = sp_by_app_id.get(rra["resourceAppId"])
            expect(resource is not None, f"application {app['id']}: resource {rra['resourceAppId']} missing")
            if resource:
                offered = {(r["id"], "Role") for r in resource["appRoles"]}
                offered |= {(s["id"], "Scope") for s in resource.get("oauth2PermissionScopes", [])}
                for access in rra["resourceAccess"]:
                    expect(
                        (access["id"], access["type"]) in offered,
                        f"application {app['id']}: {access['type']} {access['id']} not offered by the resource",
                    )

    for grant in seed.get("oauth2PermissionGrants", []):
        expect(grant["clientId"] in sps, f"grant {grant['id']}: client {grant['clientId']} missing")
        resource = sps.get(grant["resourceId"])
        expect(resource is not None, f"grant {grant['id']}: resource {grant['resourceId']} missing")
        if grant["consentType"] == "AllPrincipals":
            expect(grant["principalId"] is None, f"grant {grant['id']}: admin consent with a principal")
        else:
            expect(grant["principalId"] in users, f"grant {grant['id']}: user {grant['principalId']} missing")
        if resource:
            scopes = {s["value"] for s in resource.get("oauth2PermissionScopes", [])}
            for scope in grant["scope"].split():
                expect(scope in scopes, f"grant {grant['id']}: scope {scope} not offered by the resource")

    policies = list(seed.get("identity/conditionalAccess/policies", []))
    policies += seed.get("identity/conditionalAccess/deletedItems/policies", [])
    for policy in policies:
        where = f"CA policy {policy['id']}"
        cond = policy["conditions"]
        for field in ("includeUsers", "excludeUsers"):
            for uid in set(cond["users"][field]) - CA_USER_LITERALS:
                expect(uid in users, f"{where}: {field} {uid} missing")
        for field in ("includeGroups", "excludeGroups"):
            for gid in cond["users"][field]:
                expect(gid in groups, f"{where}: {field} {gid} missing")
        for field in ("includeApplications", "excludeApplications"):
            for app_id in set(cond["applications"][field]) - CA_APP_LITERALS:
                expect(app_id in sp_by_app_id, f"{where}: {field} {app_id} missing")
        for field in ("includeLocations", "excludeLocations"):
            for lid in set((cond.get("locations") or {}).get(field, [])) - CA_LOCATION_LITERALS:
                expect(lid in locations, f"{where}: {field} {lid} missing")
        strength = (policy.get("grantControls") or {}).get("authenticationStrength")
        if strength:
            expect(strength["id"] in strengths, f"{where}: authentication strength {strength['id']} missing")

    methods = seed.get("policies/authenticationMethodsPolicy", {})
    campaign = (methods.get("registrationEnforcement") or {}).get("authenticationMethodsRegistrationCampaign") or {}
    targets = list(campaign.get("includeTargets", [])) + list(campaign.get("excludeTargets", []))
    for config in methods.get("authenticationMethodConfigurations", []):
        targets += list(config.get("includeTargets", [])) + list(config.get("excludeTargets", []))
    for target in targets:
        if target["id"] not in METHOD_TARGET_LITERALS:
            expect(
                target["id"] in (groups if target["targetType"] == "group" else users),
                f"authentication methods policy: {target['targetType']} {target['id']} missing",
            )

    definitions = {d["id"]: d for d in seed.get("roleManagement/directory/roleDefinitions", [])}
    units = by_id(seed.get("directory/administrativeUnits", []))
    scopes = {"/"} | {f"/administrativeUnits/{unit}" for unit in units}
    for key in (
        "roleManagement/directory/roleAssignments",
        "roleManagement/directory/roleEligibilityScheduleInstances",
    ):
        triples = [(r["principalId"], r["roleDefinitionId"], r["directoryScopeId"]) for r in seed.get(key, [])]
        expect(len(triples) == len(set(triples)), f"{key}: a principal holds the same role at the same scope twice")
        for role in seed.get(key, []):
            where = f"{key} {role['id']}"
            expect(role["principalId"] in directory, f"{where}: principal {role['principalId']} missing")
            group = groups.get(role["principalId"])
            expect(group is None or group.get("isAssignableToRole") is True, f"{where}: group not role-assignable")
            expect(role["roleDefinitionId"] in definitions, f"{where}: role {role['roleDefinitionId']} missing")
            expect(role["directoryScopeId"] in scopes, f"{where}: scope {role['directoryScopeId']} missing")
    for key, value in seed.items():
        if key.startswith("directory/administrativeUnits/") and key.endswith("/members"):
            expect(key.split("/")[2] in units, f"{key}: no such administrative unit")
            for member in value:
                expect(member in {**users, **groups}, f"{key}: {member} is not a user or group")

    for item in deleted:
        expect(
            str(item.get("@odata.type", "")).startswith("#microsoft.graph."), f"deleted {item['id']}: no @odata.type"
        )
        expect(bool(item.get("deletedDateTime")), f"deleted {item['id']}: no deletedDateTime")
    return problems


def test_same_spec_gives_the_same_tenant() -> None:
    spec = parse_spec("users=400,groups=60,apps=12,seed=7")
    assert generate(spec) == generate(spec)


def test_the_generated_tenant_is_the_one_it_has_always_been() -> None:
    # The tables (seeds/synthetic-tables.yaml), the order of random draws and the order of keys are all part of
    # the output. A new digest means every synthetic tenant changed: make that change on purpose, never by a refactor.
    seed = generate(parse_spec("users=300,groups=40,apps=60,seed=5"))
    digest = hashlib.sha256(json.dumps(seed, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()
    assert digest == "0cd865d9effb903940db80b39b74d91b04a29d67f4d3174f6789bce7cb7a47e3"


def test_seed_changes_content_but_not_identities() -> None:
    # Ids depend on type and index only, so two seeds give the same objects with different properties.
    a = generate(SyntheticSpec(users=200, seed=1))
    b = generate(SyntheticSpec(users=200, seed=2))
    assert [u["id"] for u in a["users"]] == [u["id"] for u in b["users"]]
    assert [u["displayName"] for u in a["users"]] != [u["displayName"] for u in b["users"]]


def test_counts_match_the_spec() -> None:
    spec = parse_spec("users=500, groups=70, apps=12, grants=40, policies=8, locations=5, deleted=3")
    seed = generate(spec)
    assert len(seed["users"]) == 500
    assert len(seed["groups"]) == 70
    assert len(seed["applications"]) == 12
    # One service principal per app, plus Microsoft Graph itself.
    assert len(seed["servicePrincipals"]) == 13
    assert len(seed["oauth2PermissionGrants"]) == 40
    assert len(seed["identity/conditionalAccess/policies"]) == 8
    assert len(seed["identity/conditionalAccess/namedLocations"]) == 5
    assert len(seed["directory/deletedItems"]) == 3
    assert {p["policyType"] for p in seed["policies/authenticationStrengthPolicies"]} == {"builtIn"}
    assert len(seed["organization"]) == 1
    assert isinstance(seed["policies/authenticationMethodsPolicy"], dict)
    assert seed["policies/authorizationPolicy"]["id"] == "authorizationPolicy"
    assert sum(1 for key in seed if key.startswith("groups/") and key.endswith("/members")) == 70
    assert len(seed["directory/administrativeUnits"]) == 1  # at least one, then one per 2,000 users


def test_defaults_derive_from_users() -> None:
    assert parse_spec("") == SyntheticSpec()
    spec = parse_spec("users=100000")
    assert (spec.groups, spec.apps, spec.policies, spec.locations, spec.deleted) == (20000, 200, 6, 4, 100)
    assert spec.grants is not None and spec.grants > 0


def test_directory_roles_scale_with_the_users() -> None:
    seed = generate(SyntheticSpec(users=10000))
    definitions = seed["roleManagement/directory/roleDefinitions"]
    assert definitions and all(d["isBuiltIn"] and d["id"] == d["templateId"] for d in definitions)
    demo = YAML(typ="safe").load(demo_text())["roleManagement/directory/roleDefinitions"]
    assert definitions == [d for d in demo if d["isBuiltIn"]]  # the demo's built-in roles, not a copy of them
    assignments = seed["roleManagement/directory/roleAssignments"]
    global_admins = [a for a in assignments if a["roleDefinitionId"] == "62e90394-69f5-4237-9190-012177145e10"]
    assert {u["id"] for u in seed["users"][:2]} <= {a["principalId"] for a in global_admins}
    assert 2 < len(global_admins) <= 6
    assert 10000 // 500 - 2 <= len(assignments) - len(global_admins) <= 10000 // 500
    units = seed["directory/administrativeUnits"]
    assert len(units) == 5
    assert any(a["directoryScopeId"].startswith("/administrativeUnits/") for a in assignments)
    assert all(200 <= len(seed[f"directory/administrativeUnits/{u['id']}/members"]) <= 400 for u in units)
    eligible = seed["roleManagement/directory/roleEligibilityScheduleInstances"]
    assert 1 <= len(eligible) <= 10 and all(e["id"].endswith("-1-e") for e in eligible)
    # The roles load into the emulator: every reference resolves and every id is new.
    tenant = SeedLoader(default_registry(), seed, "synthetic").load()
    assert tenant.count(default_registry().get("unifiedRoleAssignment")) == len(assignments)


def test_group_sizes_are_heavy_tailed() -> None:
    seed = generate(SyntheticSpec(users=20000, groups=4000))
    sizes = sorted(len(v) for k, v in seed.items() if k.startswith("groups/") and k.endswith("/members"))
    assert sizes[len(sizes) // 2] <= 50
    assert sizes[-1] >= 1000


@pytest.mark.parametrize(
    "text",
    [
        "users=1",  # only the break-glass account
        "users=3,groups=0,apps=0,locations=0,policies=2,deleted=0",
        "users=40,groups=30,apps=25,policies=13,locations=9",
        "users=2000,groups=300,apps=20,grants=500,seed=3",
        "users=300,groups=20,apps=120",
    ],
)
def test_every_synthetic_reference_resolves(text: str) -> None:
    assert dangling_references(generate(parse_spec(text))) == []


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("users=abc", "'users=abc': 'abc' is not a whole number"),
        ("users=1e5", "not a whole number"),
        ("users=-5", "not a whole number"),
        ("colour=3", "unknown key 'colour'"),
        ("users", "'users': expected NAME=NUMBER"),
        ("users=10,users=20", "users is given twice"),
        ("users=0", "users=0"),
        ("users=99999999999", "at most"),
        ("apps=0,grants=5", "grants=5"),
    ],
)
def test_parse_spec_names_the_bad_part(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        parse_spec(text)


def test_demo_seed_references_resolve() -> None:
    seed = YAML(typ="safe").load(demo_text())
    assert dangling_references(seed) == []
    users = {u["displayName"]: u for u in seed["users"]}
    assert users["Break Glass Admin 01"]["userPrincipalName"] == "breakglass01@contoso.onmicrosoft.com"
    assert seed["organization"][0]["countryLetterCode"] == "NO"


def test_demo_seed_reads_the_same_in_yaml_1_1() -> None:
    # Other tools read YAML 1.1, where an unquoted NO, yes or on is a boolean and 0154 an octal number.
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load(demo_text()) == YAML(typ="safe").load(demo_text())
