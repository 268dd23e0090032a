"""Bearer tokens as Graph checks them: 401 without a usable token, 403 when a JWT lacks the permission a call needs."""

# Token rules (README, "The Graph emulator"): every request needs `Authorization: Bearer <token>`. A JWT
# (three base64url segments; never verified: the emulator listens on loopback only) grants exactly its
# `roles` claim (application permissions) and its `scp` claim (delegated scopes, space-separated); any
# other token, such as entra-gitops's local one, grants every permission. What a call needs comes from
# the schemas' x-entra-permissions, so the emulator and `entra-gitops permissions` read the same facts.
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
    if found is not None and route.op in _LINK_OPS:
        assert route.prop is not None
        return f"{route.prop.name}.{found}"
    return found


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the permissions its token grants, or None for an opaque token (every permission)."""

    granted: frozenset[str] | None


def unauthenticated(message: str) -> GraphFault:
    """Graph's 401 (concepts/errors.md: "Required authentication information is either missing or not valid")."""
    return GraphFault(401, "InvalidAuthenticationToken", message, {"WWW-Authenticate": _CHALLENGE})


def denied() -> GraphFault:
    """Graph's 403 for a token without the permission (concepts/errors.md; json-batching's example response)."""
    return GraphFault(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def _segment(text: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


@functools.lru_cache(maxsize=64)
def _claims(token: str) -> tuple[frozenset[str], float | None, float | None]:
    """A JWT's permissions (roles and scp) and its exp and nbf; ValueError when it cannot be read."""
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
    return frozenset(roles) | frozenset(scopes.split()), times[0], times[1]


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
        granted, expires, not_before = _claims(token)
    except ValueError:
        raise unauthenticated("Access token validation failure.") from None
    now = time.time()
    if (expires is not None and now >= expires) or (not_before is not None and now < not_before):
        raise unauthenticated("Access token has expired or is not yet valid.")
    return Caller(granted)


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


def check_access(tenant: Tenant, route: Route, params: Mapping[str, str], request: Request) -> None:
    """Refuse a request as Graph would: 401 without a usable token, 403 when the token lacks what the call needs."""
    caller = authenticate(request.headers)
    doing = operation(route, request.method)
    body = request.body
    # $batch needs only a token: each sub-request is checked as its own request. Unknown methods answer 405.
    if caller.granted is None or doing is None:
        return
    if route.op is Op.DIRECTORY_OBJECT:
        if DIRECTORY_OBJECT_READ in caller.granted:
            return
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
