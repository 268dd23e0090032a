"""The directory audit log: a directoryAudit event for every write the emulator accepts, and its list API.

Sources (microsoft-graph-docs-contrib, api-reference/v1.0): resources/directoryaudit.md (the event's shape;
activityDateTime supports eq, ge, le; correlationId, id, loggedByService eq; initiatedBy/user/id,
/displayName, /userPrincipalName, initiatedBy/app/appId, /displayName eq; targetResources' id and
displayName eq), resources/targetresource.md and resources/modifiedproperty.md (targets, old and new values
as JSON text), api/directoryaudit-list.md ($filter, $top, $orderby, $skiptoken; its permissions table:
AuditLog.Read.All and Directory.Read.All) and api/directoryaudit-get.md. Activity names and categories are
those of Microsoft Entra's audit activity reference (MicrosoftDocs/entra-docs,
docs/identity/monitoring-health/reference-audit-activities.md: the Core Directory, Conditional Access and
Authentication Methods tables), which also says which service logs each; where it names no activity the
emulator says "Verb noun" as its neighbours do. Graph lists newest first, and keeps events 30 days for
P1/P2 tenants (store.AuditTrail).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from entra_gitops.emulator.auth import LOCAL_ADMIN_ALIAS, Caller
from entra_gitops.emulator.handlers import Reader
from entra_gitops.emulator.odata import Query, parse_query
from entra_gitops.emulator.paging import listing
from entra_gitops.emulator.protocol import GraphFault, Reply, Request, bad_request, context_url, not_found
from entra_gitops.emulator.routes import Op, Route
from entra_gitops.emulator.store import AuditEntry, Tenant
from entra_gitops.model.ids import GUID
from entra_gitops.model.registry import ResourceType

CORE_DIRECTORY = "Core Directory"
CONDITIONAL_ACCESS = "Conditional Access"
AUTHENTICATION_METHODS = "Authentication Methods"
FALLBACK_DOMAIN = "emulator.local"  # the local administrator's domain when a tenant has no default domain

# Properties whose values never reach the log: Graph does not audit a password, nor a credential's secret.
_SECRET_PROPERTIES = frozenset({"passwordProfile"})
_SECRET_KEYS = frozenset({"secretText", "key", "password"})

_VERBS = MappingProxyType({"create": "Add", "update": "Update", "delete": "Delete", "restore": "Restore"})
_OPERATION_TYPES = MappingProxyType(
    {"create": "Add", "update": "Update", "delete": "Delete", "restore": "Update", "purge": "Delete"}
)


@dataclass(frozen=True)
class Subject:
    """How the log names writes to one type: category, target type, noun, service, and names that differ."""

    category: str
    target_type: str
    noun: str
    service: str = CORE_DIRECTORY
    names: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def activity(self, doing: str) -> str:
        if doing in self.names:
            return self.names[doing]
        if doing == "purge":
            return f"Hard Delete {self.noun}"
        return f"{_VERBS.get(doing, 'Update')} {self.noun}"


_STRENGTH = "Authentication Strength Policy"
# By the registry's type name; reference-audit-activities.md's tables, per service.
SUBJECTS: Mapping[str, Subject] = MappingProxyType(
    {
        "user": Subject("UserManagement", "User", "user"),
        "group": Subject("GroupManagement", "Group", "group"),
        "application": Subject("ApplicationManagement", "Application", "application"),
        "servicePrincipal": Subject(
            "ApplicationManagement",
            "ServicePrincipal",
            "service principal",
            names=MappingProxyType({"delete": "Remove service principal", "purge": "Hard delete service principal"}),
        ),
        "oauth2PermissionGrant": Subject(
            "ApplicationManagement",
            "ServicePrincipal",
            "delegated permission grant",
            names=MappingProxyType({"delete": "Remove delegated permission grant"}),
        ),
        # The reference capitalises "Conditional Access policy"; the log itself writes it in lower case.
        "conditionalAccessPolicy": Subject("Policy", "Policy", "conditional access policy", CONDITIONAL_ACCESS),
        "namedLocation": Subject("Policy", "Policy", "named location", CONDITIONAL_ACCESS),
        "authenticationStrengthPolicy": Subject(
            "ApplicationManagement",
            "Policy",
            "authentication strength policy",
            AUTHENTICATION_METHODS,
            MappingProxyType(
                {
                    "create": f"{_STRENGTH} Create",
                    "update": f"{_STRENGTH} Update",
                    "delete": f"{_STRENGTH} Delete",
                }
            ),
        ),
        "authenticationMethodsPolicy": Subject(
            "ApplicationManagement",
            "Policy",
            "authentication methods policy",
            AUTHENTICATION_METHODS,
            MappingProxyType({"update": "Authentication Methods Policy Update"}),
        ),
        "authorizationPolicy": Subject("AuthorizationPolicy", "Policy", "authorization policy"),
        "organization": Subject("DirectoryManagement", "Other", "company"),
    }
)

# App role assignments are named by who receives the role: (category, added, removed) per principalType.
_ASSIGNMENTS = MappingProxyType(
    {
        "User": ("UserManagement", "Add app role assignment grant to user", "Remove app role assignment from user"),
        "Group": ("GroupManagement", "Add app role assignment to group", "Remove app role assignment from group"),
        "ServicePrincipal": (
            "ApplicationManagement",
            "Add app role assignment to service principal",
            "Remove app role assignment from service principal",
        ),
    }
)
_TARGET_TYPES = MappingProxyType({"User": "User", "Group": "Group", "ServicePrincipal": "ServicePrincipal"})


def subject(rtype: ResourceType) -> Subject:
    """How the log names a type's writes; a type the reference does not list gets a "Verb noun" of its name."""
    found = SUBJECTS.get(rtype.name)
    if found is not None:
        return found
    noun = re.sub(r"(?<!^)([A-Z])", r" \1", rtype.name).lower()
    return Subject("Other", "Other", noun)


def json_text(value: Any) -> str:
    """A value as modifiedProperties carry it: JSON text of an array (`["Old name"]`), `[]` for none."""
    if value is None:
        return "[]"
    return json.dumps(value if isinstance(value, list) else [value], ensure_ascii=False, separators=(",", ":"))


def _scrub(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _scrub(v) for k, v in value.items() if k not in _SECRET_KEYS}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _pascal(name: str) -> str:
    return name[:1].upper() + name[1:]


def modified(name: str, old: Any, new: Any, *, added: bool = False) -> dict[str, Any]:
    return {
        "displayName": name,
        "oldValue": None if added else json_text(_scrub(old)),
        "newValue": json_text(_scrub(new)),
    }


def _written(body: Mapping[str, Any]) -> list[str]:
    return [k for k in body if not k.startswith("@") and "@" not in k and k not in _SECRET_PROPERTIES]


def changed_properties(old: Mapping[str, Any], new: Mapping[str, Any], names: list[str]) -> list[dict[str, Any]]:
    """One entry per property whose value changed, then Graph's "Included Updated Properties" summary."""
    entries = [modified(_pascal(n), old.get(n), new.get(n)) for n in names if old.get(n) != new.get(n)]
    if entries:
        listed = ", ".join(e["displayName"] for e in entries)
        entries.append({"displayName": "Included Updated Properties", "oldValue": None, "newValue": f'"{listed}"'})
    return entries


@dataclass(frozen=True)
class Pending:
    """A write about to run: what it addresses and, for updates and removals, how that looked before."""

    route: Route
    params: Mapping[str, str]
    request: Request
    caller: Caller
    correlation_id: str
    before: Mapping[str, Any] | None = None
    rtype: ResourceType | None = None


def _snapshot(value: Any) -> Any:
    return copy.deepcopy(value) if value is not None else None


@dataclass(frozen=True)
class Auditor:
    """Records a directoryAudit event for every write the emulator accepted; refused writes leave none."""

    tenant: Tenant

    def before(
        self, route: Route, params: Mapping[str, str], request: Request, caller: Caller, request_id: str
    ) -> Pending | None:
        """The write a request would make, seen before it runs; None for reads and $batch envelopes."""
        if request.method not in ("POST", "PATCH", "PUT", "DELETE") or route.op in (Op.BATCH, Op.AUDIT_LIST):
            return None
        sent = str(request.headers.get("client-request-id") or "")
        correlation = sent.lower() if GUID.fullmatch(sent) else request_id
        pending = Pending(route, params, request, caller, correlation)
        try:
            found = self._addressed(route, params)
        except GraphFault:
            found = None  # the handler answers the error; nothing will be recorded
        if found is None:
            return pending
        rtype, obj = found
        return Pending(route, params, request, caller, correlation, _snapshot(obj), rtype)

    def _addressed(self, route: Route, params: Mapping[str, str]) -> tuple[ResourceType, Any] | None:
        tenant = self.tenant
        if route.op in (Op.DELETED_ITEM, Op.RESTORE):
            rtype, record = tenant.find_deleted(route.types, params["id"])
            return rtype, record.obj
        if not route.types:
            return None
        rtype = route.rtype
        if rtype.singleton_path:
            return rtype, tenant.singletons.get(rtype.name)
        if route.op is Op.COLLECTION:
            return None
        if route.alternate_key:
            return rtype, tenant.find_by(rtype, route.alternate_key, params.get("key", ""))
        parent = ""
        if rtype.parent is not None:
            owner = tenant.find(tenant.registry.get(rtype.parent.type_name), params.get(rtype.parent.param, ""))
            if owner is None:
                return None
            parent = owner["id"]
        return rtype, tenant.find(rtype, params.get("id", ""), parent) if "id" in params else None

    def after(self, pending: Pending | None, reply: Reply) -> None:
        """Record the event of a write that succeeded."""
        if pending is None or reply.status >= 400:
            return
        op = pending.route.op
        if op in (Op.LINK_ADD, Op.LINK_REMOVE):
            event = self._link(pending)
        elif op is Op.COLLECTION:
            event = self._created(pending, reply)
        elif op in (Op.DELETED_ITEM, Op.RESTORE):
            event = self._deleted_item(pending, reply)
        else:
            event = self._item(pending)
        if event is not None:
            self.record(pending, *event)

    # -- one event per kind of write ----------------------------------------------------------

    def _created(self, pending: Pending, reply: Reply) -> tuple[str, str, str, str, list] | None:
        rtype = pending.route.rtype
        obj = {k: v for k, v in (reply.body or {}).items() if not k.startswith("@odata.context")}
        if not obj.get("id"):
            return None
        sent = pending.request.body if isinstance(pending.request.body, Mapping) else {}
        written = [n for n in _written(sent) if n in obj] or _written(obj)
        properties = [modified(_pascal(n), None, obj.get(n), added=True) for n in written]
        if rtype.name == "appRoleAssignment":
            category, added, _ = _ASSIGNMENTS.get(str(obj.get("principalType")), _ASSIGNMENTS["ServicePrincipal"])
            return category, added, CORE_DIRECTORY, "Assign", self._assignment_targets(obj, properties)
        if rtype.name == "oauth2PermissionGrant":
            about = subject(rtype)
            return about.category, about.activity("create"), about.service, "Add", self._grant_targets(obj, properties)
        about = subject(rtype)
        target = self._target(rtype, obj, properties)
        return about.category, about.activity("create"), about.service, "Add", [target]

    def _item(self, pending: Pending) -> tuple[str, str, str, str, list] | None:
        rtype, before = pending.rtype, pending.before
        if rtype is None or before is None:
            return None
        method, about = pending.request.method, subject(rtype)
        if method == "DELETE":
            if rtype.name == "appRoleAssignment":
                category, _, removed = _ASSIGNMENTS.get(
                    str(before.get("principalType")), _ASSIGNMENTS["ServicePrincipal"]
                )
                return category, removed, CORE_DIRECTORY, "Unassign", self._assignment_targets(before, [])
            targets = self._grant_targets(before, []) if rtype.name == "oauth2PermissionGrant" else None
            return (
                about.category,
                about.activity("delete"),
                about.service,
                "Delete",
                targets or [self._target(rtype, before, [])],
            )
        after = self._addressed(pending.route, pending.params)
        now = after[1] if after else None
        if now is None:
            return None
        if pending.route.op is Op.SINGLETON_ITEM:
            # A method configuration inside the policy: the policy is the target, the configuration the property.
            prop = pending.route.prop
            assert prop is not None
            properties = changed_properties(before, now, [prop.name])
        else:
            sent = pending.request.body if isinstance(pending.request.body, Mapping) else {}
            properties = changed_properties(before, now, _written(sent))
        if rtype.name == "oauth2PermissionGrant":
            targets = self._grant_targets(now, properties)
        else:
            targets = [self._target(rtype, now, properties)]
        return about.category, about.activity("update"), about.service, "Update", targets

    def _deleted_item(self, pending: Pending, reply: Reply) -> tuple[str, str, str, str, list] | None:
        rtype, before = pending.rtype, pending.before
        if rtype is None or before is None:
            return None
        about = subject(rtype)
        if pending.route.op is Op.RESTORE:
            restored = self.tenant.find(rtype, before["id"]) or before
            doing, obj = "restore", restored
        else:
            doing, obj = "purge", before
        return (
            about.category,
            about.activity(doing),
            about.service,
            _OPERATION_TYPES[doing],
            [self._target(rtype, obj, [])],
        )

    def _link(self, pending: Pending) -> tuple[str, str, str, str, list] | None:
        route, rtype, owner = pending.route, pending.rtype, pending.before
        if rtype is None or owner is None or route.prop is None:
            return None
        if route.op is Op.LINK_ADD:
            reference = str((pending.request.body or {}).get("@odata.id", ""))
            member_id = reference.rstrip("/").rsplit("/", 1)[-1]
        else:
            member_id = pending.params.get("linkId", "")
        about = subject(rtype)
        role = route.prop.name[:-1] if route.prop.name.endswith("s") else route.prop.name
        adding = route.op is Op.LINK_ADD
        activity = f"Add {role} to {about.noun}" if adding else f"Remove {role} from {about.noun}"
        # As Graph logs it: the member first, naming the group in its modified properties, then the group.
        noun = about.target_type if about.target_type != "Other" else _pascal(rtype.name)
        names = [(f"{noun}.ObjectID", owner.get("id")), (f"{noun}.DisplayName", owner.get("displayName"))]
        properties = [
            {
                "displayName": name,
                "oldValue": None if adding else json.dumps(value),
                "newValue": json.dumps(value) if adding else None,
            }
            for name, value in names
        ]
        found = self.tenant.directory_object(member_id)
        if found is None:
            deleted = next(
                (
                    (t, self.tenant.deleted[t.name][member_id].obj)
                    for t in self.tenant.registry
                    if member_id in self.tenant.deleted.get(t.name, {})
                ),
                None,
            )
            found = deleted
        member = (
            self._target(found[0], found[1], properties)
            if found
            else {
                "id": member_id,
                "displayName": None,
                "type": "Other",
                "userPrincipalName": None,
                "modifiedProperties": properties,
            }
        )
        return (
            about.category,
            activity,
            about.service,
            "Add" if adding else "Delete",
            [
                member,
                self._target(rtype, owner, []),
            ],
        )

    # -- targets ------------------------------------------------------------------------------

    def _target(self, rtype: ResourceType, obj: Mapping[str, Any], properties: list) -> dict[str, Any]:
        return {
            "id": str(obj.get("id") or rtype.name),
            "displayName": obj.get("displayName"),
            "type": subject(rtype).target_type,
            "userPrincipalName": obj.get("userPrincipalName") if rtype.name == "user" else None,
            "modifiedProperties": properties,
        }

    def _principal(self, object_id: str, type_hint: str | None, properties: list) -> dict[str, Any]:
        found = self.tenant.directory_object(object_id) if object_id else None
        if found is not None:
            return self._target(found[0], found[1], properties)
        return {
            "id": object_id,
            "displayName": None,
            "type": _TARGET_TYPES.get(type_hint or "", "Other"),
            "userPrincipalName": None,
            "modifiedProperties": properties,
        }

    def _assignment_targets(self, obj: Mapping[str, Any], properties: list) -> list[dict[str, Any]]:
        # The resource first, carrying the assignment's properties (its id among them), then the principal.
        resource = self._principal(str(obj.get("resourceId", "")), "ServicePrincipal", properties)
        return [resource, self._principal(str(obj.get("principalId", "")), str(obj.get("principalType")), [])]

    def _grant_targets(self, obj: Mapping[str, Any], properties: list) -> list[dict[str, Any]]:
        # The client the permission is granted to, carrying the grant's properties, then the resource it is for.
        client = self._principal(str(obj.get("clientId", "")), "ServicePrincipal", properties)
        return [client, self._principal(str(obj.get("resourceId", "")), "ServicePrincipal", [])]

    # -- the event ----------------------------------------------------------------------------

    def initiator(self, caller: Caller) -> dict[str, Any]:
        """initiatedBy (auditActivityInitiator): the user, or the application, the request's token names."""
        if caller.kind == "app":
            sp_id = caller.service_principal_id
            if sp_id is None and caller.app_id:
                principals = (
                    self.tenant.registry.get("servicePrincipal") if "servicePrincipal" in self.tenant.registry else None
                )
                found = self.tenant.find_by(principals, "appId", caller.app_id) if principals else None
                sp_id = found["id"] if found else None
            app = {"appId": caller.app_id, "displayName": caller.name, "servicePrincipalId": sp_id}
            return {"user": None, "app": app}
        upn = caller.upn
        if caller.is_local:
            upn = f"{LOCAL_ADMIN_ALIAS}@{self.default_domain()}"
        return {"user": {"id": caller.id, "displayName": caller.name, "userPrincipalName": upn}, "app": None}

    def default_domain(self) -> str:
        for rtype in self.tenant.registry:
            if rtype.tenant_identity:
                for org in self.tenant.all_objects(rtype):
                    for domain in org.get("verifiedDomains") or ():
                        if isinstance(domain, Mapping) and domain.get("isDefault") and domain.get("name"):
                            return str(domain["name"])
        return FALLBACK_DOMAIN

    def record(
        self, pending: Pending, category: str, activity: str, service: str, operation: str, targets: list
    ) -> None:
        at = self.tenant.clock()
        event = {
            "id": f"Directory_{pending.correlation_id}_{uuid.uuid4().hex[:8].upper()}",
            "category": category,
            "correlationId": pending.correlation_id,
            "result": "success",
            "resultReason": "",
            "activityDisplayName": activity,
            "activityDateTime": activity_time(at),
            "loggedByService": service,
            "operationType": operation,
            "initiatedBy": self.initiator(pending.caller),
            "targetResources": targets,
            "additionalDetails": [],
        }
        self.tenant.audit.add(at, event)


def activity_time(at: float) -> str:
    """ISO 8601 in UTC with Z, to the microsecond (Graph writes seven digits; Python reads six)."""
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> dt.datetime:
    """A DateTimeOffset as $filter and seeds write it; ValueError when it is none."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# -- $filter --------------------------------------------------------------------------------------

Test = Callable[[AuditEntry], bool]

_COMPARE: Mapping[str, Callable[[Any, Any], bool]] = MappingProxyType(
    {
        "eq": lambda a, b: a == b,
        "ge": lambda a, b: a >= b,
        "gt": lambda a, b: a > b,
        "le": lambda a, b: a <= b,
        "lt": lambda a, b: a < b,
    }
)
# The string properties directoryaudit.md says `eq` filters (and `startswith` where it says so).
_EQ_PATHS = {
    p.lower(): p
    for p in (
        "id",
        "category",
        "correlationId",
        "activityDisplayName",
        "loggedByService",
        "operationType",
        "result",
        "initiatedBy/user/id",
        "initiatedBy/user/displayName",
        "initiatedBy/user/userPrincipalName",
        "initiatedBy/app/appId",
        "initiatedBy/app/displayName",
    )
}
_STARTSWITH_PATHS = {p.lower(): p for p in ("activityDisplayName", "initiatedBy/user/userPrincipalName")}
_STRING = r"'((?:[^']|'')*)'"
_TIME_CLAUSE = re.compile(r"activityDateTime\s+(eq|ge|gt|le|lt)\s+(\S+)", re.IGNORECASE)
_EQ_CLAUSE = re.compile(r"([A-Za-z/]+)\s+eq\s+(?:" + _STRING + r"|([0-9A-Fa-f-]{36}))", re.IGNORECASE)
_STARTSWITH_CLAUSE = re.compile(r"startswith\(\s*([A-Za-z/]+)\s*,\s*" + _STRING + r"\s*\)", re.IGNORECASE)
_ANY_CLAUSE = re.compile(
    r"targetResources/any\(\s*(\w+)\s*:\s*(?:\1/(id|displayName)\s+eq\s+"
    + _STRING
    + r"|startswith\(\s*\1/(displayName)\s*,\s*"
    + _STRING
    + r"\s*\))\s*\)",
    re.IGNORECASE,
)


def _unsupported(clause: str) -> GraphFault:
    return bad_request(f"Unsupported or invalid query filter clause specified: '{clause}'.", "Request_UnsupportedQuery")


def _split_and(text: str) -> list[str]:
    """The clauses of `a and b and c`, outside quotes and parentheses."""
    parts, depth, quoted, start, i = [], 0, False, 0, 0
    while i < len(text):
        char = text[i]
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0:
            found = re.match(r"\s+and\s+", text[i:], re.IGNORECASE)
            if found:
                parts.append(text[start:i])
                i += found.end()
                start = i
                continue
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _path(event: Mapping[str, Any], path: str) -> Any:
    value: Any = event
    for part in path.split("/"):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _fold(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _clause(text: str) -> Test:
    found = _TIME_CLAUSE.fullmatch(text)
    if found:
        try:
            bound = parse_time(found.group(2)).timestamp()
        except ValueError:
            raise bad_request(f"Invalid filter clause: '{found.group(2)}' is not a DateTimeOffset.") from None
        compare = _COMPARE[found.group(1).lower()]
        return lambda e: compare(e.at, bound)
    found = _EQ_CLAUSE.fullmatch(text)
    if found and found.group(1).lower() in _EQ_PATHS:
        path = _EQ_PATHS[found.group(1).lower()]
        wanted = _fold(found.group(2).replace("''", "'") if found.group(2) is not None else found.group(3))
        return lambda e: _fold(_path(e.event, path)) == wanted
    found = _STARTSWITH_CLAUSE.fullmatch(text)
    if found and found.group(1).lower() in _STARTSWITH_PATHS:
        path = _STARTSWITH_PATHS[found.group(1).lower()]
        prefix = found.group(2).replace("''", "'").lower()
        return lambda e: str(_path(e.event, path) or "").lower().startswith(prefix)
    found = _ANY_CLAUSE.fullmatch(text)
    if found:
        if found.group(2):
            key, wanted, exact = found.group(2), found.group(3).replace("''", "'").lower(), True
        else:
            key, wanted, exact = "displayName", found.group(5).replace("''", "'").lower(), False
        key = "id" if key.lower() == "id" else "displayName"

        def hit(e: AuditEntry) -> bool:
            for target in e.event.get("targetResources") or ():
                value = str(target.get(key) or "").lower()
                if value == wanted if exact else value.startswith(wanted):
                    return True
            return False

        return hit
    raise _unsupported(text)


def compile_audit_filter(text: str) -> Test:
    """The events a directoryAudits $filter keeps; 400 for a clause the API does not support."""
    if not text.strip():
        raise _unsupported(text)
    tests = [_clause(part) for part in _split_and(text)]
    return lambda e: all(t(e) for t in tests)


# -- the list API ---------------------------------------------------------------------------------

_PROPERTIES = (
    "id",
    "category",
    "correlationId",
    "result",
    "resultReason",
    "activityDisplayName",
    "activityDateTime",
    "loggedByService",
    "operationType",
    "initiatedBy",
    "targetResources",
    "additionalDetails",
)
_ORDERBY = re.compile(r"activityDateTime(?:\s+(asc|desc))?", re.IGNORECASE)


class AuditLogs(Reader):
    """GET auditLogs/directoryAudits (paged, $filter, $top, $orderby, $select) and one event by id."""

    def _query(self, request: Request) -> tuple[Query, Test | None, bool]:
        options = {k.lstrip("$").lower(): (k, v) for k, v in request.params.items()}
        rest = {k: v for k, v in request.params.items() if k.lstrip("$").lower() not in ("filter", "orderby")}
        query = parse_query(rest)
        if query.select is not None:
            unknown = [n for n in query.select if n not in _PROPERTIES]
            if unknown:
                raise bad_request(
                    f"Could not find a property named '{unknown[0]}' on type 'microsoft.graph.directoryAudit'."
                )
        where = compile_audit_filter(options["filter"][1]) if "filter" in options else None
        newest_first = True
        if "orderby" in options:
            found = _ORDERBY.fullmatch(options["orderby"][1].strip())
            if not found:
                raise bad_request(f"Unsupported $orderby: '{options['orderby'][1]}'.", "Request_UnsupportedQuery")
            newest_first = (found.group(1) or "asc").lower() == "desc"
        return query, where, newest_first

    def list_audits(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        query, where, newest_first = self._query(request)

        def events() -> tuple[Mapping[str, Any], ...]:
            served = self.tenant.audit.served(self.tenant.clock())
            if not newest_first:
                served.reverse()
            return tuple(e.event for e in served if where is None or where(e))

        page, cursor, next_link = self.pager.page(request, query, events)
        value = [_shape(e, cursor.select) for e in page]
        return Reply(200, listing(context_url(request, "auditLogs/directoryAudits"), value, next_link))

    def get_audit(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        query, _, _ = self._query(request)
        for entry in self.tenant.audit.served(self.tenant.clock()):
            if entry.event.get("id") == params["id"]:
                shaped = _shape(entry.event, query.select)
                return Reply(
                    200, {"@odata.context": context_url(request, "auditLogs/directoryAudits/$entity"), **shaped}
                )
        raise not_found(params["id"])


def _shape(event: Mapping[str, Any], select: tuple[str, ...] | None) -> dict[str, Any]:
    if select is None:
        return dict(event)
    return {k: event.get(k) for k in _PROPERTIES if k in select}


def seed_events(tenant: Tenant, events: list[Mapping[str, Any]]) -> None:
    """Older events a seed holds (a change made before the emulator started); ValueError for a malformed one."""
    for index, event in enumerate(events):
        if not isinstance(event, Mapping) or not isinstance(event.get("id"), str):
            raise ValueError(f"item {index} is not an event with a string id")
        when = event.get("activityDateTime")
        if not isinstance(when, str):
            raise ValueError(f"item {index} needs an activityDateTime")
        at = parse_time(when).timestamp()
        unknown = set(event) - set(_PROPERTIES)
        if unknown:
            raise ValueError(f"item {index}: {', '.join(sorted(unknown))} is not a directoryAudit property")
        tenant.audit.add(at, {k: copy.deepcopy(event.get(k)) for k in _PROPERTIES if k in event})
