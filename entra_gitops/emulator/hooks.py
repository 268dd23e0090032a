"""Where Graph behaves differently for one type: small hooks named after the behaviour, each citing its source.

Sources are pages of Microsoft's Graph v1.0 documentation (microsoft-graph-docs-contrib, api-reference/v1.0)
and, where the documentation is silent, the answer real Graph was seen giving, marked as such: the
emulator then takes the most restrictive plausible answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from entra_gitops.emulator.graph_ids import assignment_id, grant_id, role_assignment_id
from entra_gitops.emulator.protocol import GraphFault, bad_request, method_not_allowed, not_found
from entra_gitops.emulator.routes import Op, Route
from entra_gitops.emulator.store import Tenant
from entra_gitops.model.references import object_references
from entra_gitops.model.registry import ResourceType, ThrottleScope

DEFAULT_ACCESS_ROLE = "00000000-0000-0000-0000-000000000000"
FORBIDDEN = "Insufficient privileges to complete the operation."
SYNCED = (
    "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects "
    "currently undergoing migration."
)
# How Conditional Access names a missing reference ("1054: Invalid group value: …", seen on real Graph:
# KelvinTegelaar/CIPP#3614); the other kinds follow by analogy.
REFERENCE_KIND = {
    "user": "user",
    "group": "group",
    "namedLocation": "location",
    "authenticationStrengthPolicy": "authentication strength",
}


def _denormalize_assignment(tenant: Tenant, body: dict[str, Any], parent: str) -> dict[str, Any]:
    """App role assignments carry their principal's and resource's display names and kinds.

    serviceprincipal-post-approleassignedto.md documents only success; real Graph answers a duplicate
    and an app role the resource does not define with 400 ("Permission being assigned already exists on
    the object." / "... was not found on application"), which many scripts match on.
    """
    if str(body.get("resourceId", parent)).lower() != parent.lower():
        raise bad_request("The resourceId in the body must be the service principal in the URL.")
    found = tenant.directory_object(str(body.get("principalId", "")))
    if found is None:
        raise not_found(str(body.get("principalId")))
    principal_type, principal = found
    resource_type = tenant.registry.get("servicePrincipal")
    resource = tenant.get(resource_type, parent)
    role = str(body.get("appRoleId", "")).lower()
    defined = {str(r.get("id", "")).lower() for r in resource.get("appRoles") or ()}
    if role != DEFAULT_ACCESS_ROLE and role not in defined:
        raise bad_request(
            f"Permission being assigned was not found on application '{resource.get('appId')}'. "
            f"Permission '{body.get('appRoleId')}' does not exist."
        )
    assignments = tenant.objects(tenant.registry.get("appRoleAssignment"), resource["id"])
    if any(
        str(a.get("principalId", "")).lower() == principal["id"].lower() and str(a.get("appRoleId", "")).lower() == role
        for a in assignments.values()
    ):
        raise bad_request("Permission being assigned already exists on the object.")
    body["resourceId"] = resource["id"]
    body["principalId"] = principal["id"]
    body["principalType"] = principal_type.name[:1].upper() + principal_type.name[1:]
    body["principalDisplayName"] = principal.get("displayName")
    body["resourceDisplayName"] = resource.get("displayName")
    body["id"] = assignment_id(principal["id"])
    return body


def _grant_for_a_pair(tenant: Tenant, body: dict[str, Any], parent: str) -> dict[str, Any]:
    """A delegated grant is one per client, resource (and, for one user's consent, principal).

    oauth2permissiongrant-delete.md: one AllPrincipals grant and one Principal grant per user can exist
    for an application; a second create is 409 Request_MultipleObjectsWithSameKeyValue "Permission entry
    already exists." (seen on real Graph, hashicorp/terraform-provider-azuread#690), because the id is
    derived from the pair (graph_ids.py).
    """
    spn = tenant.registry.get("servicePrincipal")
    for key in ("clientId", "resourceId"):
        if tenant.find(spn, str(body.get(key, ""))) is None:
            raise bad_request(f"The {key} '{body.get(key)}' is not a service principal in this tenant.")
    consent = body.get("consentType")
    principal = body.get("principalId")
    if consent == "AllPrincipals" and principal:
        raise bad_request("principalId must be null when consentType is AllPrincipals.")
    if consent == "Principal" and tenant.find(tenant.registry.get("user"), str(principal or "")) is None:
        raise bad_request("principalId must be a user when consentType is Principal.")
    object_id = grant_id(
        str(body["clientId"]).lower(), str(body["resourceId"]).lower(), str(principal).lower() if principal else None
    )
    if tenant.find(tenant.registry.get("oauth2PermissionGrant"), object_id) is not None:
        raise GraphFault(409, "Request_MultipleObjectsWithSameKeyValue", "Permission entry already exists.")
    body["id"] = object_id
    return body


# What real Graph answers a role assignment it refuses (rbacapplication-post-roleassignments.md documents only
# success): a duplicate, seen on roleManagement/directory/roleAssignments (dod-ccpo/atat#1554); a group without
# isAssignableToRole (Microsoft365DSC/Microsoft365DSC#879); a scope it cannot read (microsoftgraph/msgraph-sdk-powershell#3173).
ROLE_ASSIGNMENT_EXISTS = (
    "A conflicting object with one or more of the specified property values is present in the directory."
)
GROUP_NOT_ROLE_ASSIGNABLE = "Groups without IsAssignableToRole property set cannot be assigned to roles."
INVALID_ROLE_SCOPE = "Must specify valid property scope of entity RoleAssignment"
ROLE_PRINCIPAL_TYPES = ("user", "group", "servicePrincipal")


def _role_definition(tenant: Tenant, role_id: str) -> dict[str, Any] | None:
    """The role definition an assignment names: by its id, or by a built-in role's template id.

    rbacapplication-post-roleassignments.md: "roleDefinitionId can be either the service-wide template Id or the
    directory-specific roleDefinitionId".
    """
    definitions = tenant.registry.get("unifiedRoleDefinition")
    return tenant.find(definitions, role_id) or tenant.find_by(definitions, "templateId", role_id)


def _live_scope(tenant: Tenant, scope: str) -> bool:
    """A directory scope the emulator knows: the tenant ("/") or a live administrative unit's path."""
    if scope == "/":
        return True
    prefix, _, unit_id = scope.rpartition("/")
    if prefix != "/administrativeUnits" or not unit_id:
        return False
    return tenant.find(tenant.registry.get("administrativeUnit"), unit_id) is not None


def _role_assignment(tenant: Tenant, body: dict[str, Any], parent: str) -> dict[str, Any]:
    """A directory role is assigned to a user, group or service principal of the tenant, once per role and scope.

    rbacapplication-post-roleassignments.md: roleDefinitionId, principalId and directoryScopeId ("/" for the tenant,
    an administrative unit's path) are required. A principal or role that does not exist is Graph's 404
    Request_ResourceNotFound (microsoftgraph/microsoft-graph-docs#18218, seen on real Graph). The id is derived from
    role, principal and scope (graph_ids.py), which is why a second assignment of the same triple conflicts.
    """
    principal_id = str(body.get("principalId", ""))
    found = tenant.directory_object(principal_id)
    if found is None or found[0].name not in ROLE_PRINCIPAL_TYPES:
        raise not_found(principal_id)
    principal_type, principal = found
    if principal_type.name == "group" and principal.get("isAssignableToRole") is not True:
        raise bad_request(GROUP_NOT_ROLE_ASSIGNABLE)
    role = _role_definition(tenant, str(body.get("roleDefinitionId", "")))
    if role is None:
        raise not_found(str(body.get("roleDefinitionId")))
    scope = body.get("directoryScopeId")
    if not isinstance(scope, str) or not _live_scope(tenant, scope):
        raise bad_request(INVALID_ROLE_SCOPE)
    object_id = role_assignment_id(str(role.get("templateId") or role["id"]), principal["id"], scope)
    if tenant.find(tenant.registry.get("unifiedRoleAssignment"), object_id) is not None:
        raise bad_request(ROLE_ASSIGNMENT_EXISTS)
    body["principalId"] = principal["id"]
    body.setdefault("appScopeId", None)
    body["id"] = object_id
    return body


def _require_existing_app(tenant: Tenant, body: dict[str, Any], parent: str) -> dict[str, Any]:
    """A service principal is created for an application that exists, by its appId: one of this tenant's, or a
    multi-tenant one registered elsewhere (Microsoft's, a vendor's) that the tenant has had a principal of.

    serviceprincipal-post-serviceprincipals.md: appId is required; a multi-tenant application published by another
    organisation gets a principal in this tenant as consent makes it (the emulator knows such applications from the
    principals it was seeded with).
    """
    app = tenant.find_by(tenant.registry.get("application"), "appId", str(body.get("appId", "")))
    external = tenant.external_apps.get(str(body.get("appId", "")).lower())
    if app is None and external is not None:
        return {**external, **body}
    if app is None:
        raise bad_request(f"The appId '{body.get('appId')}' of the object referenced does not exist or is not valid.")
    body.setdefault("displayName", app.get("displayName"))
    body.setdefault("appDisplayName", app.get("displayName"))
    body.setdefault("appOwnerOrganizationId", tenant.tenant_id)
    # serviceprincipal.md: its appRoles and oauth2PermissionScopes are the application's, which assignments name.
    body.setdefault("appRoles", app.get("appRoles") or [])
    body.setdefault("oauth2PermissionScopes", (app.get("api") or {}).get("oauth2PermissionScopes") or [])
    return body


def _sponsors_bound(tenant: Tenant, body: dict[str, Any], what: str) -> None:
    """An agent identity or blueprint is created with at least one sponsor, a user or a group that exists.

    agentidentity-post.md: "The request body must contain displayName, agentIdentityBlueprintAppId, and a valid
    sponsor reference"; agentidentityblueprint-post.md: "You must specify the displayName property and sponsors
    relationship"; agentidentity-post-sponsors.md: "Sponsors can include users or groups". The emulator keeps no
    sponsors of service principals and applications (nor does entra-gitops read them), so the binding is dropped.
    """
    if not body.get("displayName"):
        raise bad_request(f"The displayName of {what} is required.")
    bound = body.pop("sponsors@odata.bind", None)
    if not isinstance(bound, list) or not bound:
        raise bad_request(f"Creating {what} needs at least one sponsor: sponsors@odata.bind naming users or groups.")
    for reference in bound:
        found = tenant.directory_object(str(reference).rstrip("/").rsplit("/", 1)[-1])
        if found is None or found[0].name not in ("user", "group") or found[0].kind_of(found[1]):
            raise bad_request(f"The sponsor '{reference}' is not a user or group of this tenant.")


def _blueprint(tenant: Tenant, app_id: str) -> dict[str, Any] | None:
    """The live agent identity blueprint whose appId is `app_id`."""
    applications = tenant.registry.get("application")
    app = tenant.find_by(applications, "appId", app_id) if app_id else None
    return app if app is not None and applications.kind_of(app) == "agentIdentityBlueprint" else None


def _agent_identity_of_a_blueprint(tenant: Tenant, body: dict[str, Any], parent: str) -> dict[str, Any]:
    """An agent identity names the appId of an existing blueprint (agentidentity-post.md; agentidentity.md:
    agentIdentityBlueprintId is "The appId of the agent identity blueprint"), and is a ServiceIdentity.

    Its agentIdentityBlueprintId is immutable (Core.V1.Immutable in Graph's metadata): the schema marks it
    readOnly, so a PATCH naming it is refused like any read-only property.
    """
    if _blueprint(tenant, str(body.get("agentIdentityBlueprintId") or "")) is None:
        raise bad_request(
            f"The agentIdentityBlueprintId '{body.get('agentIdentityBlueprintId')}' is not the appId of an agent "
            "identity blueprint in this tenant."
        )
    _sponsors_bound(tenant, body, "an agent identity")
    body["servicePrincipalType"] = "ServiceIdentity"  # agentidentity.md: "Set to ServiceIdentity for all"
    return body


def _blueprint_with_sponsors(tenant: Tenant, body: dict[str, Any], parent: str) -> dict[str, Any]:
    """An agent identity blueprint is created with its sponsors (agentidentityblueprint-post.md)."""
    _sponsors_bound(tenant, body, "an agent identity blueprint")
    return body


def _principal_of_a_blueprint(tenant: Tenant, body: dict[str, Any], parent: str) -> dict[str, Any]:
    """A blueprint principal is created for a blueprint, by its appId (agentidentityblueprintprincipal-post.md:
    the body "must contain appId of the agentIdentityBlueprint")."""
    if _blueprint(tenant, str(body.get("appId") or "")) is None:
        raise bad_request(f"The appId '{body.get('appId')}' is not the appId of an agent identity blueprint.")
    return _require_existing_app(tenant, body, parent)


def _agent_user_of_an_identity(tenant: Tenant, body: dict[str, Any], parent: str) -> dict[str, Any]:
    """An agent user names its agent identity, one agent user per identity.

    agentuser-post.md: identityParentId is required, and "Attempting to create an agentUser with an
    identityParentId already linked to another agentUser returns a 400 Bad Request error"; agentuser.md: it
    "can't be cleared during updates" (the schema marks it readOnly, so a PATCH naming it is refused).
    """
    parent_id = str(body.get("identityParentId") or "")
    principals = tenant.registry.get("servicePrincipal")
    identity = tenant.find(principals, parent_id) if parent_id else None
    if identity is None or principals.kind_of(identity) != "agentIdentity":
        raise bad_request(f"The identityParentId '{body.get('identityParentId')}' is not an agent identity.")
    users = tenant.registry.get("user")
    if any(str(u.get("identityParentId", "")).lower() == identity["id"].lower() for u in tenant.all_objects(users)):
        raise bad_request(f"The agent identity '{identity['id']}' already has an agent user.")
    return body


def _unique_keys(tenant: Tenant, rtype: ResourceType, body: Mapping[str, Any], except_id: str | None = None) -> None:
    """A unique key (a user principal name) belongs to one live object: a second one fails instead of duplicating."""
    for unique in rtype.unique_keys:
        value = unique.value_of(body)
        if value is None:
            continue
        holder = tenant.find_by(rtype, unique.name, value)
        if holder is not None and holder.get("id") != except_id:
            raise bad_request(
                f"Another object with the same value for property {unique.name} already exists.",
                "Request_MultipleObjectsWithSameKeyValue",
            )


_BEFORE_CREATE = {
    "appRoleAssignment": _denormalize_assignment,
    "servicePrincipal": _require_existing_app,
    "oauth2PermissionGrant": _grant_for_a_pair,
    "unifiedRoleAssignment": _role_assignment,
}

# The methods a type's Graph resource page does not list, by the route kind they would use: Graph answers them 405
# whatever the caller may do. unifiedroleeligibilityscheduleinstance.md (and
# rbacapplication-list-roleeligibilityscheduleinstances.md) offers List and Get only: eligibilities are made and
# ended through roleEligibilityScheduleRequests. unifiedroleassignment.md offers List, Create, Get and Delete: no
# Update, so a changed assignment is removed and created again.
_METHODS_GRAPH_LACKS: Mapping[str, frozenset[tuple[Op, str]]] = {
    "unifiedRoleEligibilityScheduleInstance": frozenset(
        {(Op.COLLECTION, "POST"), (Op.ITEM, "PATCH"), (Op.ITEM, "DELETE")}
    ),
    "unifiedRoleAssignment": frozenset({(Op.ITEM, "PATCH")}),
}


def lacks_method(route: Route, method: str) -> bool:
    """Whether the addressed type's Graph resource has no such method (a request Graph answers 405)."""
    return bool(route.types) and (route.op, method) in _METHODS_GRAPH_LACKS.get(route.rtype.name, frozenset())


def check_method(route: Route, method: str) -> None:
    """Refuse, before any permission check, a method the addressed type's Graph resource does not have."""
    if lacks_method(route, method):
        raise method_not_allowed(method)


# Kinds (x-entra-graph.kinds) whose creation Graph checks beyond their base type's; by ResourceType.kind_of's name.
_BEFORE_CREATE_KIND = {
    "agentIdentity": _agent_identity_of_a_blueprint,
    "agentIdentityBlueprint": _blueprint_with_sponsors,
    "agentIdentityBlueprintPrincipal": _principal_of_a_blueprint,
    "agentUser": _agent_user_of_an_identity,
}


def _required_on_create(rtype: ResourceType, body: Mapping[str, Any]) -> None:
    """A create names every required property (x-entra-graph createRequires: user-post-users.md,
    group-post-groups.md, application-post-applications.md, serviceprincipal-post-serviceprincipals.md,
    conditionalaccessroot-post-policies.md, conditionalaccessroot-post-namedlocations.md,
    authenticationstrengthroot-post-policies.md), and a user's password meets Microsoft Entra's complexity rule (password-policies.md: 8 to
    256 characters, three of lowercase, uppercase, digits and symbols). A kind has its own rules (an agent user
    has no password: agentuser-post.md)."""
    if rtype.kind_of(body) is not None:
        return
    for name in rtype.create_requires:
        if body.get(name) is None or body.get(name) == "":
            if name == "passwordProfile":
                raise bad_request("A password must be specified to create a new user.")
            raise bad_request(f"Invalid value specified for property '{name}' of resource '{rtype.name}'.")
    profile = body.get("passwordProfile")
    if "passwordProfile" in rtype.create_requires:
        password = profile.get("password") if isinstance(profile, Mapping) else None
        kinds = (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
        if (
            not isinstance(password, str)
            or not 8 <= len(password) <= 256
            or sum(any(map(kind, password)) for kind in kinds) < 3
        ):
            raise bad_request(
                "The specified password does not comply with password complexity requirements. "
                "Please provide a different password."
            )


def before_create(tenant: Tenant, rtype: ResourceType, body: dict[str, Any], parent: str) -> dict[str, Any]:
    """Apply the type's (or its kind's) create-time behaviour, if it has one; unique keys hold for every type."""
    _required_on_create(rtype, body)
    _unique_keys(tenant, rtype, body)
    kind = rtype.kind_of(body)
    hook = _BEFORE_CREATE_KIND.get(kind) if kind else _BEFORE_CREATE.get(rtype.name)
    return hook(tenant, body, parent) if hook else body


def before_update(tenant: Tenant, rtype: ResourceType, obj: Mapping[str, Any], changes: Mapping[str, Any]) -> None:
    """What Graph checks on a PATCH beyond the schema: unique keys stay unique; an agent user states its type.

    agentuser-update.md: "You must specify the @odata.type as #microsoft.graph.agentUser in the request body
    when updating an agentUser" (its tip, that PATCH /users/{id} works "without specifying the
    microsoft.graph.agentUser type", is read as being about the URL): the stricter reading is modelled.
    """
    _unique_keys(tenant, rtype, {**obj, **changes}, except_id=obj.get("id"))
    if rtype.kind_of(obj) == "agentUser" and changes.get("@odata.type") != obj.get("@odata.type"):
        raise bad_request("The request body for an agentUser must state '@odata.type': '#microsoft.graph.agentUser'.")


def check_references(tenant: Tenant, rtype: ResourceType, body: Mapping[str, Any]) -> None:
    """Conditional Access refuses a write naming a user, group, location or strength that does not exist.

    Not documented on conditionalaccesspolicy-update.md; real Graph answers "1054: Invalid group value: …"
    (KelvinTegelaar/CIPP#3614). Ids Graph keeps of objects deleted since may stay in a stored policy
    (staleReferences), but a write must name live objects; literals such as All, AllTrusted and the
    built-in "MFA trusted IPs" location 00000000-0000-0000-0000-000000000000 (conditionalaccesspolicy-get.md's
    own example excludes it) are not references.
    """
    if rtype.throttle_scope is not ThrottleScope.CONDITIONAL_ACCESS:
        return
    for reference in object_references(rtype, body):
        if not any(_live(tenant, name, reference.target) for name in reference.types):
            kind = REFERENCE_KIND.get(reference.types[0], reference.types[0])
            raise bad_request(f"1054: Invalid {kind} value: {reference.target}.", "BadRequest")


def _live(tenant: Tenant, type_name: str, object_id: str) -> bool:
    rtype = tenant.registry.get(type_name)
    if rtype.singleton:
        return False
    return tenant.find(rtype, object_id) is not None


def before_delete(tenant: Tenant, rtype: ResourceType, obj: Mapping[str, Any]) -> None:
    """A named location that is trusted, or that a policy names, is not deleted (undeletableWhen, keptWhileReferenced).

    Microsoft Entra's concept-assignment-network.md: "Locations marked as trusted can't be deleted without
    first removing the trusted designation." Refusing a location a policy still names is not documented:
    it is the emulator's most restrictive answer, so a recovery that deletes one first is caught.
    """
    if rtype.is_undeletable(obj):
        raise bad_request(
            "Locations marked as trusted can't be deleted without first removing the trusted designation."
        )
    if not rtype.kept_while_referenced:
        return
    naming = [
        p["id"]
        for other in tenant.registry
        if other.stale_references
        for p in tenant.all_objects(other)
        if any(r.target.lower() == str(obj["id"]).lower() for r in object_references(other, p))
    ]
    if naming:
        raise bad_request(
            f"The {rtype.name} '{obj['id']}' is used by Conditional Access policies: {', '.join(sorted(naming))}.",
            "BadRequest",
        )


def before_link_write(rtype: ResourceType, prop_name: str, owner: Mapping[str, Any]) -> None:
    """Dynamic groups' members come from their rule, and synchronised groups' from on-premises.

    group-delete-members.md: "You can't remove a member from groups with dynamic memberships"; Microsoft
    Support: "Dynamic groups can't have their membership managed via Microsoft Graph", answered with 403
    Authorization_RequestDenied. A synchronised group answers 400 (seen on real Graph).
    """
    prop = rtype.prop(prop_name)
    if prop is not None and prop.link is not None and prop.link.is_read_only(owner):
        raise GraphFault(403, "Authorization_RequestDenied", FORBIDDEN)
    if rtype.is_synchronized(owner):
        raise bad_request(SYNCED)


RESTRICTED_UNIT_GROUP = (
    "Only security groups that are not mail-enabled, not Microsoft 365 groups and not synchronised from "
    "on-premises can be added to a restricted management administrative unit."
)


def before_member_add(
    rtype: ResourceType, prop_name: str, owner: Mapping[str, Any], member_type: ResourceType, member: Mapping[str, Any]
) -> None:
    """A restricted management administrative unit takes only plain security groups.

    administrativeunit-post-members.md: for an administrative unit with isMemberManagementRestricted, a group added
    must be security-enabled, not mail-enabled, not a Microsoft 365 (unified) group and not synchronised from
    on-premises. The page names no error; Graph's 400 for a refused reference is modelled.
    """
    if (
        rtype.name != "administrativeUnit"
        or prop_name != "members"
        or owner.get("isMemberManagementRestricted") is not True
    ):
        return
    if member_type.name == "group" and (
        member.get("securityEnabled") is not True
        or member.get("mailEnabled") is True
        or "Unified" in (member.get("groupTypes") or ())
        or member.get("onPremisesSyncEnabled") is True
    ):
        raise bad_request(RESTRICTED_UNIT_GROUP)


def before_restore(tenant: Tenant, rtype: ResourceType, obj: Mapping[str, Any], body: Mapping[str, Any]) -> None:
    """Graph refuses a restore whose user principal name a live object holds meanwhile.

    directory-deleteditems-restore.md: the optional autoReconcileProxyConflict and newUserPrincipalName
    are "used only for restoring soft-deleted user objects".
    """
    extras = set(body) - {"autoReconcileProxyConflict", "newUserPrincipalName"}
    if extras or (body and rtype.name != "user"):
        raise bad_request(f"Unexpected parameters for restoring a {rtype.name}: {', '.join(sorted(body))}.")
    soft = rtype.soft_delete
    original = {k: (soft.original(k, obj["id"], v) if soft else v) for k, v in obj.items() if isinstance(k, str)}
    if body.get("newUserPrincipalName"):
        original["userPrincipalName"] = body["newUserPrincipalName"]
    for unique in rtype.unique_keys:
        value = unique.value_of(original)
        if value is not None and tenant.find_by(rtype, unique.name, value) is not None:
            raise bad_request(
                f"Another object with the same value for property {unique.name} ('{original.get(unique.name)}') "
                "already exists.",
                "Request_MultipleObjectsWithSameKeyValue",
            )


def action_result(previous: Any, current: Any) -> dict[str, Any]:
    """The body of an update action's answer (`updateAllowedCombinations`)."""
    return {
        "previousCombinations": previous or [],
        "currentCombinations": current or [],
        "additionalInformation": None,
        "conditionalAccessReferences": [],
    }
