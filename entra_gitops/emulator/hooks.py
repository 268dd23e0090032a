"""Where Graph behaves differently for one type: small hooks named after the behaviour."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from entra_gitops.emulator.protocol import bad_request, not_found
from entra_gitops.emulator.store import Tenant
from entra_gitops.registry import ResourceType


def _denormalize_assignment(tenant: Tenant, body: dict[str, Any], parent: str) -> dict[str, Any]:
    """App role assignments carry their principal's and resource's display names and kinds."""
    if str(body.get("resourceId", parent)).lower() != parent.lower():
        raise bad_request("The resourceId in the body must be the service principal in the URL.")
    found = tenant.directory_object(str(body.get("principalId", "")))
    if found is None:
        raise not_found(str(body.get("principalId")))
    principal_type, principal = found
    resource_type = tenant.registry.get("servicePrincipal")
    resource = tenant.get(resource_type, parent)
    body["resourceId"] = resource["id"]
    body["principalId"] = principal["id"]
    body["principalType"] = principal_type.name[:1].upper() + principal_type.name[1:]
    body["principalDisplayName"] = principal.get("displayName")
    body["resourceDisplayName"] = resource.get("displayName")
    return body


def _require_existing_app(tenant: Tenant, body: dict[str, Any], parent: str) -> dict[str, Any]:
    """A service principal is created for an application that exists, by its appId."""
    app = tenant.find_by(tenant.registry.get("application"), "appId", str(body.get("appId", "")))
    if app is None:
        raise bad_request(f"The appId '{body.get('appId')}' of the object referenced does not exist or is not valid.")
    body.setdefault("displayName", app.get("displayName"))
    body.setdefault("appDisplayName", app.get("displayName"))
    body.setdefault("appOwnerOrganizationId", tenant.tenant_id)
    return body


def _unique_principal_name(tenant: Tenant, body: dict[str, Any], parent: str) -> dict[str, Any]:
    """A user principal name belongs to one user: a repeated create fails instead of duplicating."""
    upn = body.get("userPrincipalName")
    if upn and tenant.find_by(tenant.registry.get("user"), "userPrincipalName", str(upn)) is not None:
        raise bad_request(
            "Another object with the same value for property userPrincipalName already exists.",
            "Request_MultipleObjectsWithSameKeyValue",
        )
    return body


_BEFORE_CREATE = {
    "user": _unique_principal_name,
    "appRoleAssignment": _denormalize_assignment,
    "servicePrincipal": _require_existing_app,
}


def before_create(tenant: Tenant, rtype: ResourceType, body: dict[str, Any], parent: str) -> dict[str, Any]:
    """Apply the type's create-time behaviour, if it has one."""
    hook = _BEFORE_CREATE.get(rtype.name)
    return hook(tenant, body, parent) if hook else body


def before_restore(tenant: Tenant, rtype: ResourceType, obj: Mapping[str, Any]) -> None:
    """Graph refuses a restore whose user principal name is taken by a live object meanwhile."""
    upn = obj.get("userPrincipalName")
    if upn and tenant.find_by(rtype, "userPrincipalName", upn) is not None:
        raise bad_request(
            f"Another object with the same value for property userPrincipalName ('{upn}') already exists.",
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
