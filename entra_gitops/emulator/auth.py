"""Bearer tokens as Graph checks them: 401 without a usable token, 403 when a JWT lacks the permission a call needs."""

# Token rules (README, "The Graph emulator"): every request needs `Authorization: Bearer <token>`. A JWT
# (three base64url segments; never verified: the emulator listens on loopback only) grants exactly its
# `roles` claim (application permissions) and its `scp` claim (delegated scopes, space-separated); any
# other token, such as entra-gitops's local one, grants every permission. Who a JWT names (upn or unique_name,
# oid, name for a user; appid, app_displayname, oid for an application) is who the audit log says made a write.
# What a call needs comes from the schemas' x-entra-permissions, so the emulator and `entra-gitops permissions`
# read the same facts.
# Graph's documentation: concepts/errors.md (401 "Required authentication information is either missing
# or not valid for the resource", 403 "Access is denied to the requested resource"), concepts/json-batching.md
# (its example answers a sub-request without the permission with 403 Authorization_RequestDenied,
# "Insufficient privileges to complete the operation."), and each API page's permissions table.

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from entra_gitops.emulator import hooks
from entra_gitops.emulator.odata import parse_expand
from entra_gitops.emulator.protocol import GraphFault, Request
from entra_gitops.emulator.routes import Op, Route
from entra_gitops.emulator.store import Tenant
from entra_gitops.model.registry import ResourceType

# directoryobject-get's permissions table: Directory.Read.All, nothing narrower, for any directory object;
# the object's own type's read permission reads it too (user-get, group-get, ...).
DIRECTORY_OBJECT_READ = "Directory.Read.All"

# What Graph sends with a 401 (seen on real Graph; concepts/errors.md names no header).
_CHALLENGE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    'client_id="00000003-0000-0000-c000-000000000000"'
)
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# The operation (x-entra-permissions vocabulary) each route answers per method; links add the property name.
_OPERATIONS: Mapping[tuple[Op, str], str] = {
    (Op.COLLECTION, "GET"): "list",
    (Op.COUNT, "GET"): "list",
    (Op.COLLECTION, "POST"): "create",
    (Op.ITEM, "GET"): "get",
    (Op.ITEM, "PATCH"): "update",
    (Op.ITEM, "DELETE"): "delete",
    (Op.ALTERNATE_ITEM, "GET"): "get",
    (Op.ALTERNATE_ITEM, "PATCH"): "update",
    (Op.ALTERNATE_ITEM, "DELETE"): "delete",
    (Op.SINGLETON, "GET"): "get",
    (Op.SINGLETON, "PATCH"): "update",
    (Op.SINGLETON_ITEMS, "GET"): "get",
    (Op.SINGLETON_ITEM, "GET"): "get",
    (Op.SINGLETON_ITEM, "PATCH"): "update",
    (Op.DELTA, "GET"): "delta",
    (Op.LINKS, "GET"): "list",
    (Op.LINK_ADD, "POST"): "add",
    (Op.LINK_REMOVE, "DELETE"): "remove",
    (Op.DELETED_LIST, "GET"): "deletedList",
    (Op.DELETED_ITEM, "GET"): "deletedGet",
    (Op.DELETED_ITEM, "DELETE"): "purge",
    (Op.RESTORE, "POST"): "restore",
    (Op.ACTION, "POST"): "action",
    (Op.DIRECTORY_OBJECT, "GET"): "get",
}
_LINK_OPS = frozenset({Op.LINKS, Op.LINK_ADD, Op.LINK_REMOVE})
_READS = frozenset({"list", "get", "delta", "deletedList", "deletedGet"})


def operation(route: Route, method: str) -> str | None:
    """The x-entra-permissions operation a request makes (`list`, `members.add`); None for $batch and 405s."""
    found = _OPERATIONS.get((route.op, method))
    if found is not None and hooks.lacks_method(route, method):
        return None  # the type has no such method in Graph: the request is answered 405, whoever sends it
    if found is not None and route.op in _LINK_OPS:
        assert route.prop is not None
        return f"{route.prop.name}.{found}"
    return found


# Who an opaque token (entra-gitops's local one, `Bearer local`) is in the audit log: one fixed administrator.
# Its user principal name is LOCAL_ADMIN_ALIAS at the tenant's default domain (audit.py).
LOCAL_ADMIN_ID = "e0a1d000-0000-4000-8000-00000000ad01"
LOCAL_ADMIN_NAME = "Emulator Administrator"
LOCAL_ADMIN_ALIAS = "admin"

# directoryaudit-list-permissions.md: "AuditLog.Read.All and Directory.Read.All", delegated and application alike.
AUDIT_LOG_READ = frozenset({"AuditLog.Read.All", "Directory.Read.All"})
_AUDIT_OPS = frozenset({Op.AUDIT_LIST, Op.AUDIT_ITEM})


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the permissions its token grants (None for an opaque token: every one), and who it is.

    A user (`kind` "user": id, upn, name) when the token names one (upn or unique_name, or delegated scopes),
    else an application (`kind` "app": app_id, name, and service_principal_id when the token carries an oid).
    """

    granted: frozenset[str] | None
    kind: str = "user"
    id: str | None = LOCAL_ADMIN_ID
    upn: str | None = None
    name: str | None = LOCAL_ADMIN_NAME
    app_id: str | None = None
    service_principal_id: str | None = None

    @property
    def is_local(self) -> bool:
        return self.granted is None


def unauthenticated(message: str) -> GraphFault:
    """Graph's 401 (concepts/errors.md: "Required authentication information is either missing or not valid")."""
    return GraphFault(401, "InvalidAuthenticationToken", message, {"WWW-Authenticate": _CHALLENGE})


def denied() -> GraphFault:
    """Graph's 403 for a token without the permission (concepts/errors.md; json-batching's example response)."""
    return GraphFault(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def _segment(text: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


_IDENTITY_CLAIMS = ("upn", "unique_name", "oid", "name", "appid", "azp", "app_displayname")


@functools.lru_cache(maxsize=64)
def _claims(token: str) -> tuple[frozenset[str], float | None, float | None, Caller]:
    """A JWT's permissions (roles and scp), its exp and nbf, and who it names; ValueError when it cannot be read.

    Its header is read but its algorithm is not checked: `alg: none` is accepted, as nothing is ever verified.
    """
    header, payload, _signature = token.split(".")
    if not _BASE64URL.match(header) or not _BASE64URL.match(payload):
        raise ValueError("not base64url")
    try:
        head, claims = _segment(header), _segment(payload)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("not base64url JSON") from None
    if not isinstance(head, dict) or not isinstance(claims, dict):
        raise ValueError("not a JSON object")
    roles = claims.get("roles", [])
    scopes = claims.get("scp", "")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles) or not isinstance(scopes, str):
        raise ValueError("roles must be a list of strings and scp a string")
    times = [claims.get(k) for k in ("exp", "nbf")]
    if any(t is not None and (isinstance(t, bool) or not isinstance(t, int | float)) for t in times):
        raise ValueError("exp and nbf must be numbers")
    if any(claims.get(k) is not None and not isinstance(claims[k], str) for k in _IDENTITY_CLAIMS):
        raise ValueError("identity claims must be strings")
    granted = frozenset(roles) | frozenset(scopes.split())
    upn = claims.get("upn") or claims.get("unique_name")
    if upn or "scp" in claims:
        caller = Caller(granted, "user", claims.get("oid"), upn, claims.get("name"))
    else:
        # An app-only token: appid in v1.0 tokens, azp in v2.0 ones; its oid is the service principal's id.
        app_id = claims.get("appid") or claims.get("azp")
        caller = Caller(granted, "app", None, None, claims.get("app_displayname"), app_id, claims.get("oid"))
    return granted, times[0], times[1], caller


def authenticate(headers: Mapping[str, str]) -> Caller:
    """The caller a request's Authorization header names; GraphFault 401 when it names none or an unreadable JWT."""
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthenticated("Access token is empty.")
    if token.count(".") != 2:
        # An opaque token (entra-gitops's local one): every permission, so the demo and raw clients need no JWT.
        return Caller(None)
    try:
        _granted, expires, not_before, caller = _claims(token)
    except ValueError:
        raise unauthenticated("Access token validation failure.") from None
    now = time.time()
    if (expires is not None and now >= expires) or (not_before is not None and now < not_before):
        raise unauthenticated("Access token has expired or is not yet valid.")
    return caller


def _options(params: Mapping[str, str]) -> dict[str, str]:
    return {k.lstrip("$").lower(): v for k, v in params.items()}


def _touched(rtype: ResourceType, doing: str, params: Mapping[str, str], body: Any) -> frozenset[str] | None:
    """The properties a request reads ($select, $filter) or writes (its body); None when it reads them all."""
    if doing not in _READS:
        return frozenset(body) if isinstance(body, dict) else frozenset()
    options = _options(params)
    names = set(_NAME.findall(options.get("filter", "")))
    if "select" in options:
        return frozenset(names | {s.strip() for s in options["select"].split(",")})
    if rtype.default_select is not None:
        return frozenset(names | set(rtype.default_select))
    return None


def _object(tenant: Tenant, route: Route, params: Mapping[str, str], body: Any) -> Mapping[str, Any] | None:
    """The object a request addresses, for needs that hold only for some objects (role-assignable groups)."""
    rtype = route.rtype
    if route.op is Op.COLLECTION:
        return body if isinstance(body, dict) else None
    if rtype.singleton_path:
        return tenant.singletons.get(rtype.name)
    if rtype.parent is not None:
        return None  # no conditional need names a child collection's objects
    if route.alternate_key:
        return tenant.find_by(rtype, route.alternate_key, params.get("key", ""))
    return tenant.find(rtype, params["id"]) if "id" in params else None


def _allows(caller: Caller, rtype: ResourceType, doing: str, obj: Any, touched: frozenset[str] | None) -> bool:
    # An operation no need covers is one Graph's tables were not recorded for: refused, so a gap shows up in tests.
    needs = rtype.needs_for(doing, obj, touched)
    return bool(needs) and all(n.allowed_by(caller.granted or frozenset()) for n in needs)


def check_access(tenant: Tenant, route: Route, params: Mapping[str, str], request: Request) -> Caller:
    """Refuse a request as Graph would: 401 without a usable token, 403 when the token lacks what the call needs.

    Returns the caller, whom the audit log names as the initiator of what it writes.
    """
    caller = authenticate(request.headers)
    if route.op in _AUDIT_OPS:
        # The audit log is no backed-up type, so no schema records its needs: directoryaudit-list's table does.
        if caller.granted is not None and not caller.granted >= AUDIT_LOG_READ:
            raise denied()
        return caller
    doing = operation(route, request.method)
    body = request.body
    # $batch needs only a token: each sub-request is checked as its own request. Unknown methods answer 405.
    if caller.granted is None or doing is None:
        return caller
    if route.op is Op.DIRECTORY_OBJECT:
        if DIRECTORY_OBJECT_READ in caller.granted:
            return caller
        found = tenant.directory_object(params["id"])
        candidates = [found] if found else [(t, None) for t in tenant.registry if t.is_directory_object]
    elif route.op in (Op.DELETED_ITEM, Op.RESTORE):
        # directory/deletedItems/{id} serves every directory type: the deleted object's own type decides.
        try:
            rtype, record = tenant.find_deleted(route.types, params["id"])
            candidates = [(rtype, record.obj)]
        except GraphFault:
            candidates = [(t, None) for t in route.types]  # the handler answers 404 to whoever may ask
    else:
        candidates = [(route.rtype, _object(tenant, route, params, body))]
    if not any(_allows(caller, t, doing, obj, _touched(t, doing, request.params, body)) for t, obj in candidates):
        raise denied()
    if route.op is Op.COLLECTION and doing == "list" and not _may_expand(tenant, caller, route.rtype, request.params):
        raise denied()
    return caller


def _may_expand(tenant: Tenant, caller: Caller, rtype: ResourceType, params: Mapping[str, str]) -> bool:
    """An expansion reads the relationship too, so it needs what listing that relationship needs."""
    expand = _options(params).get("expand")
    if not expand:
        return True
    name = parse_expand(expand).name
    child = tenant.registry.expanded_child(rtype, name)
    if child is not None:
        return _allows(caller, child, "list", None, None)
    prop = rtype.prop(name)
    if prop is not None and prop.link is not None:
        return _allows(caller, rtype, f"{name}.list", None, None)
    return True  # no such relationship: the handler answers Graph's 400
