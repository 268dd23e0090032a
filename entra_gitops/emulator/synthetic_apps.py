"""Synthetic apps: registrations, service principals (Microsoft Graph's too), role assignments, grants, Agent ID."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from entra_gitops.emulator.graph_ids import grant_id
from entra_gitops.emulator.synthetic_base import (
    APPS_PER_BLUEPRINT,
    DOMAIN,
    GRAPH_APP_ID,
    MICROSOFT_TENANT_ID,
    TAG_AGENT_IDENTITY,
    TAG_AGENT_USER,
    TAG_APP_ID,
    TAG_APP_ROLE,
    TAG_APPLICATION,
    TAG_BLUEPRINT,
    TAG_BLUEPRINT_APP_ID,
    TAG_BLUEPRINT_PRINCIPAL,
    TAG_CREDENTIAL,
    TAG_FIRST_PARTY,
    TAG_SERVICE_PRINCIPAL,
    Draft,
    app_kind,
    ids,
    years_later,
)
from entra_gitops.emulator.synthetic_directory import Groups, People
from entra_gitops.emulator.synthetic_tables import GraphRole, tables


@dataclass
class Apps:
    """What grants are made from: Microsoft Graph's service principal and the apps that sign users in."""

    graph_sp: dict[str, Any]
    delegated: list[tuple[str, tuple[str, ...]]]  # (service principal id, the scopes its app requests)


def applications(draft: Draft, n: int, people: People, groups: Groups) -> Apps:
    t = tables()
    rng = draft.rng
    scope_id = {s.value: s.id for s in t.graph_scopes}
    app_object_ids = ids(TAG_APPLICATION, n)
    app_ids = ids(TAG_APP_ID, n)
    sp_ids = ids(TAG_SERVICE_PRINCIPAL, n)
    first_party = ids(TAG_FIRST_PARTY, 1)
    key_ids = iter(ids(TAG_CREDENTIAL, 3 * n))
    role_ids = iter(ids(TAG_APP_ROLE, 2 * n))
    graph_sp = _graph_service_principal(first_party[0])
    apps: list[dict[str, Any]] = []
    sps: list[dict[str, Any]] = [graph_sp]
    graph_assignments: list[dict[str, Any]] = []
    made = Apps(graph_sp, [])
    for i in range(n):
        kind = app_kind(i)
        name = t.app_names[i % len(t.app_names)]
        if i >= len(t.app_names):
            name = f"{name} {i // len(t.app_names) + 1}"
        name = f"Contoso {name}"
        host = f"app{i:04d}.{DOMAIN}"
        app_id = app_ids[i]
        created = draft.when()
        access: list[dict[str, str]] = []
        scopes: tuple[str, ...] = ()
        roles: list[GraphRole] = []
        app_roles: list[dict[str, Any]] = []
        if kind == "daemon":
            roles = rng.sample(t.graph_roles, rng.randint(1, 3))
            access = [{"id": r.id, "type": "Role"} for r in roles]
        else:
            scopes = t.sign_in_scopes + tuple(rng.sample(t.extra_scopes, rng.randint(0, 2)))
            access = [{"id": scope_id[v], "type": "Scope"} for v in scopes]
            made.delegated.append((sp_ids[i], scopes))
        if kind == "web" and rng.random() < 0.5:
            app_roles = [
                {
                    "allowedMemberTypes": ["User"],
                    "description": f"{value} of {name}.",
                    "displayName": value,
                    "id": next(role_ids),
                    "isEnabled": True,
                    "origin": "Application",
                    "value": f"App.{value}",
                }
                for value in ("Admin", "Reader")
            ]
        app: dict[str, Any] = {
            "id": app_object_ids[i],
            "appId": app_id,
            "displayName": name,
            "createdDateTime": created,
            "signInAudience": "AzureADandPersonalMicrosoftAccount" if kind == "public" else "AzureADMyOrg",
            "publisherDomain": DOMAIN,
            "identifierUris": [f"api://{app_id}"] if kind == "web" else [],
            "tags": [],
            "isFallbackPublicClient": True if kind == "public" else None,
            "appRoles": app_roles,
            "keyCredentials": [],
            "passwordCredentials": [],
            "publicClient": {"redirectUris": [f"msauth.com.contoso.app{i}://auth"] if kind == "public" else []},
            "spa": {"redirectUris": [f"https://{host}/"] if kind == "spa" else []},
            "web": {
                "homePageUrl": f"https://{host}/" if kind == "web" else None,
                "logoutUrl": None,
                "redirectUris": [f"https://{host}/signin-oidc"] if kind == "web" else [],
                "implicitGrantSettings": {"enableAccessTokenIssuance": False, "enableIdTokenIssuance": False},
            },
            "requiredResourceAccess": [{"resourceAppId": GRAPH_APP_ID, "resourceAccess": access}],
        }
        if kind in ("web", "daemon"):
            # Credential metadata only: Graph never lists secretText or key.
            for _ in range(rng.randint(0, 2)):
                start = draft.when()
                app["passwordCredentials"].append(
                    {
                        "customKeyIdentifier": None,
                        "displayName": "client secret",
                        "hint": f"{rng.randrange(1000):03d}",
                        "keyId": next(key_ids),
                        "secretText": None,
                        "startDateTime": start,
                        "endDateTime": years_later(start, 2),
                    }
                )
        if kind == "daemon" and rng.random() < 0.5:
            start = draft.when()
            app["keyCredentials"].append(
                {
                    "customKeyIdentifier": None,
                    "displayName": f"CN={name}",
                    "key": None,
                    "keyId": next(key_ids),
                    "startDateTime": start,
                    "endDateTime": years_later(start, 1),
                    "type": "AsymmetricX509Cert",
                    "usage": "Verify",
                }
            )
        apps.append(app)
        sp = {
            **_own_principal(sp_ids[i], app_id, name, draft.tenant_id),
            "appRoleAssignmentRequired": bool(app_roles),
            "servicePrincipalNames": list(app["identifierUris"]) + [app_id],
            "tags": ["WindowsAzureActiveDirectoryIntegratedApp"],
            "signInAudience": app["signInAudience"],
            "appRoles": [dict(r, allowedMemberTypes=["User"]) for r in app_roles],
            "oauth2PermissionScopes": [],
            "keyCredentials": [],
            "passwordCredentials": [],
            "replyUrls": list(
                app["web"]["redirectUris"] or app["spa"]["redirectUris"] or app["publicClient"]["redirectUris"]
            ),
        }
        sps.append(sp)
        for role in roles:
            graph_assignments.append(_assignment(draft, graph_sp, sp, "ServicePrincipal", role.id, created))
        if app_roles:
            assigned = _app_assignments(draft, sp, app_roles, people, groups)
            draft.seed[f"servicePrincipals/{sp['id']}/appRoleAssignedTo"] = assigned
    draft.seed["applications"] = apps
    draft.seed["servicePrincipals"] = sps
    if graph_assignments:
        draft.seed[f"servicePrincipals/{graph_sp['id']}/appRoleAssignedTo"] = graph_assignments
    return made


def _own_principal(sp_id: str, app_id: str, name: str, tenant_id: str) -> dict[str, Any]:
    """The properties every service principal of an app registered in this tenant starts with."""
    return {
        "id": sp_id,
        "appId": app_id,
        "displayName": name,
        "appDisplayName": name,
        "appOwnerOrganizationId": tenant_id,
        "servicePrincipalType": "Application",
        "accountEnabled": True,
    }


def _graph_service_principal(sp_id: str) -> dict[str, Any]:
    t = tables()
    return {
        "id": sp_id,
        "appId": GRAPH_APP_ID,
        "displayName": "Microsoft Graph",
        "appDisplayName": "Microsoft Graph",
        "appOwnerOrganizationId": MICROSOFT_TENANT_ID,
        "servicePrincipalType": "Application",
        "accountEnabled": True,
        "appRoleAssignmentRequired": False,
        "signInAudience": "AzureADMultipleOrgs",
        "servicePrincipalNames": [GRAPH_APP_ID, "https://graph.microsoft.com", "https://graph.microsoft.com/"],
        "tags": [],
        "keyCredentials": [],
        "passwordCredentials": [],
        "replyUrls": [],
        "appRoles": [
            {
                "allowedMemberTypes": ["Application"],
                "description": role.description,
                "displayName": role.display_name,
                "id": role.id,
                "isEnabled": True,
                "origin": "Application",
                "value": role.value,
            }
            for role in t.graph_roles
        ],
        "oauth2PermissionScopes": [
            {
                "adminConsentDescription": scope.description,
                "adminConsentDisplayName": scope.display_name,
                "id": scope.id,
                "isEnabled": True,
                "type": scope.type,
                "userConsentDescription": scope.description,
                "userConsentDisplayName": scope.display_name,
                "value": scope.value,
            }
            for scope in t.graph_scopes
        ],
    }


def _assignment(
    draft: Draft,
    resource: dict[str, Any],
    principal: dict[str, Any],
    principal_type: str,
    role_id: str,
    created: str,
) -> dict[str, Any]:
    return {
        "id": draft.assignment_id(principal["id"]),
        "appRoleId": role_id,
        "createdDateTime": created,
        "principalDisplayName": principal["displayName"],
        "principalId": principal["id"],
        "principalType": principal_type,
        "resourceDisplayName": resource["displayName"],
        "resourceId": resource["id"],
    }


def _app_assignments(
    draft: Draft, sp: dict[str, Any], roles: list[dict[str, Any]], people: People, groups: Groups
) -> list[dict[str, Any]]:
    rng = draft.rng
    out = []
    seen: set[tuple[str, str]] = set()
    for _ in range(rng.randint(1, 5)):
        role = roles[rng.randrange(len(roles))]["id"]
        if groups.objects and rng.random() < 0.4:
            principal, ptype = groups.objects[rng.randrange(len(groups.objects))], "Group"
        else:
            principal, ptype = people.objects[rng.randrange(len(people.objects))], "User"
        if (principal["id"], role) in seen:
            continue
        seen.add((principal["id"], role))
        out.append(_assignment(draft, sp, principal, ptype, role, draft.when()))
    return out


def grants(draft: Draft, total: int, apps: Apps, people: People) -> None:
    """An admin grant per app that signs users in, then user grants on distinct (app, user) pairs."""
    rng = draft.rng
    resource = apps.graph_sp["id"]
    delegated = apps.delegated
    out: list[dict[str, Any]] = []
    for client, scopes in delegated[:total]:
        out.append(
            {
                "id": grant_id(client, resource, None),
                "clientId": client,
                "consentType": "AllPrincipals",
                "principalId": None,
                "resourceId": resource,
                "scope": " ".join(scopes),
            }
        )
    wanted = total - len(out)
    if wanted > 0:
        n_users = len(people.ids)
        space = len(delegated) * n_users
        if wanted * 2 > space:
            # Nearly every pair is wanted: drawing at random would keep hitting duplicates.
            pairs = [divmod(k, n_users) for k in rng.sample(range(space), wanted)]
        else:
            chosen: set[tuple[int, int]] = set()
            pairs = []
            while len(pairs) < wanted:
                pair = (rng.randrange(len(delegated)), rng.randrange(n_users))
                if pair not in chosen:
                    chosen.add(pair)
                    pairs.append(pair)
        for a, u in pairs:
            client, scopes = delegated[a]
            principal = people.ids[u]
            out.append(
                {
                    "id": grant_id(client, resource, principal),
                    "clientId": client,
                    "consentType": "Principal",
                    "principalId": principal,
                    "resourceId": resource,
                    "scope": " ".join(scopes[: rng.randint(1, len(scopes))]),
                }
            )
    draft.seed["oauth2PermissionGrants"] = out


def agents(draft: Draft, apps: int, people: People) -> None:
    """Microsoft Entra Agent ID objects, in the plain collections with their @odata.type as Graph lists them.

    Made last and without the random generator, so every other object is the same with or without them.
    """
    n = apps // APPS_PER_BLUEPRINT
    if not n:
        return
    seed = draft.seed
    blueprints, app_ids = ids(TAG_BLUEPRINT, n), ids(TAG_BLUEPRINT_APP_ID, n)
    principals, identities = ids(TAG_BLUEPRINT_PRINCIPAL, n), ids(TAG_AGENT_IDENTITY, n)
    agent_users = ids(TAG_AGENT_USER, n)
    humans = people.ids[2:] or people.ids  # not the break-glass accounts, where there are others
    for i in range(n):
        name, app_id = f"Contoso Agent {i + 1:03d}", app_ids[i]
        created = draft.created[(i * 97) % len(draft.created)]
        seed["applications"].append(
            {
                "@odata.type": "#microsoft.graph.agentIdentityBlueprint",
                "id": blueprints[i],
                "appId": app_id,
                "displayName": name,
                "createdDateTime": created,
                "signInAudience": "AzureADMyOrg",
                "publisherDomain": DOMAIN,
                "identifierUris": [f"api://{app_id}"],
                "tags": [],
                "appRoles": [],
                "keyCredentials": [],
                "passwordCredentials": [],
                "requiredResourceAccess": [],
            }
        )
        seed["servicePrincipals"] += [
            {
                "@odata.type": "#microsoft.graph.agentIdentityBlueprintPrincipal",
                **_own_principal(principals[i], app_id, name, draft.tenant_id),
                "appRoleAssignmentRequired": False,
                "tags": [],
                "appRoles": [],
                "oauth2PermissionScopes": [],
            },
            {
                "@odata.type": "#microsoft.graph.agentIdentity",
                "id": identities[i],
                "displayName": f"{name} identity",
                "agentIdentityBlueprintId": app_id,
                "createdByAppId": app_id,
                "servicePrincipalType": "ServiceIdentity",
                "accountEnabled": True,
                "tags": [],
            },
        ]
        nick = f"agent{i + 1:03d}"
        seed["users"].append(
            {
                "@odata.type": "#microsoft.graph.agentUser",
                "id": agent_users[i],
                "displayName": f"{name} user",
                "userPrincipalName": f"{nick}@{DOMAIN}",
                "mail": f"{nick}@{DOMAIN}",
                "mailNickname": nick,
                "identityParentId": identities[i],
                "accountEnabled": True,
                "userType": "Member",
                "businessPhones": [],
                "otherMails": [],
                "createdDateTime": created,
            }
        )
        seed[f"users/{agent_users[i]}/sponsors"] = [humans[(i * 7) % len(humans)]]
