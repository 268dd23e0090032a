"""Ids the way Graph makes them for relationships: derived from the GUIDs they join, base64url without padding.

Not documented by Microsoft; read off real ids (Azure/azure-cli#20974 shows grant ids, Microsoft's own
serviceprincipal-post-approleassignedto example an assignment id): a grant's id is its client's and
resource's GUID bytes (and, for one user's consent, the principal's); an app role assignment's id
starts with its principal's GUID bytes. Either way a second grant for the same client and resource
collides on its id, which is why Graph answers it with 409.

A directory role assignment's id is its role's template GUID bytes and its principal's, then "-1" for the
whole tenant: rbacapplication-list-roleassignments.md's examples read that way (lAPpYvVpN0KRkAEhdxReE... is
Global Administrator, 62e90394-...), and an eligibility instance adds "-e"
(rbacapplication-list-roleeligibilityscheduleinstances.md: 8MYkhImh... is role 8424c6f0-... and principal
071cc716-..., then "-1-e"). Graph's examples of a unit-scoped assignment end in "-1" too, with bytes that are
neither GUID's; the emulator ends such an id with the unit's bytes instead, so the same principal and role at two
scopes have two ids.
"""

from __future__ import annotations

import base64
import secrets


def guid_bytes_le(guid: str) -> bytes:
    """The bytes .NET gives for a GUID (the first three groups little-endian), as Graph uses in opaque ids."""
    raw = bytes.fromhex(guid.replace("-", ""))
    return raw[3::-1] + raw[5:3:-1] + raw[7:5:-1] + raw[8:]


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def grant_id(client_id: str, resource_id: str, principal_id: str | None) -> str:
    """An oauth2PermissionGrant's id: 43 characters for admin consent, 64 for one user's."""
    raw = guid_bytes_le(client_id) + guid_bytes_le(resource_id)
    if principal_id is not None:
        raw += guid_bytes_le(principal_id)
    return b64url(raw)


def assignment_id(principal_id: str, tail: bytes | None = None) -> str:
    """An appRoleAssignment's id: the principal's GUID bytes, then 16 opaque ones."""
    return b64url(guid_bytes_le(principal_id) + (tail if tail is not None else secrets.token_bytes(16)))


def role_assignment_id(role_template_id: str, principal_id: str, directory_scope_id: str) -> str:
    """A unifiedRoleAssignment's id: role and principal GUID bytes, then "-1" at "/" or the unit's bytes."""
    base = b64url(guid_bytes_le(role_template_id) + guid_bytes_le(principal_id))
    if directory_scope_id == "/":
        return f"{base}-1"
    return f"{base}-{b64url(guid_bytes_le(directory_scope_id.rsplit('/', 1)[-1]))[:11]}"


def role_eligibility_id(role_template_id: str, principal_id: str, directory_scope_id: str) -> str:
    """A unifiedRoleEligibilityScheduleInstance's id: the assignment id of the same triple, then "-e"."""
    return f"{role_assignment_id(role_template_id, principal_id, directory_scope_id)}-e"
