"""The emulated Microsoft Graph v1.0: request handling over the in-memory tenant, as an ASGI app."""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextvars
import itertools
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, quote

from entra_gitops.emulator import hooks, values
from entra_gitops.emulator.auth import check_access
from entra_gitops.emulator.limits import FaultRule, Faults, Throttle, request_cost, sync_state_not_found
from entra_gitops.emulator.odata import MAX_PAGE_SIZE, Query, parse_query, project
from entra_gitops.emulator.protocol import (
    JSON_CONTENT_TYPE,
    GraphFault,
    Reply,
    bad_request,
    method_not_allowed,
    new_request_id,
    no_route,
    not_found,
)
from entra_gitops.emulator.routes import Op, Route, RouteTable
from entra_gitops.emulator.store import TOP, Tenant
from entra_gitops.model.registry import PropertySpec, ResourceType, ThrottleScope

API_PREFIX = "/v1.0/"
MAX_BATCH = 20
MAX_CURSORS = 512
DELTA_TOKEN_TTL_SECONDS = 7 * 24 * 3600
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
PAGED_OPS = frozenset({Op.COLLECTION, Op.LINKS, Op.DELETED_LIST, Op.DELTA})

# Seconds the answer to the current ASGI request must still wait: injected delays, $batch sub-requests' included.
_PENDING_DELAY: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("pending_delay", default=None)


@dataclass(frozen=True)
class Request:
    """One Graph request as the handlers see it (also a `$batch` sub-request)."""

    method: str
    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    body: Any
    base_url: str
    fault: FaultRule | None = None  # a paging fault (truncate, repeat-skiptoken) for `_page` to apply


@dataclass(frozen=True)
class _Cursor:
    """A paged result: the ids (or delta rows) fixed at the first page, so any page can be re-read."""

    items: tuple[Any, ...]
    select: tuple[str, ...] | None
    top: int
    extra: Mapping[str, Any]


class Emulator:
    """Microsoft Graph v1.0 over a Tenant, with optional throttling, faults and latency."""

    def __init__(
        self,
        tenant: Tenant,
        *,
        throttle: Throttle | None = None,
        faults: Faults | None = None,
        latency_ms: int = 0,
        delta_ttl_seconds: int = DELTA_TOKEN_TTL_SECONDS,
    ) -> None:
        self.tenant = tenant
        self.registry = tenant.registry
        self.routes = RouteTable(self.registry)
        self.throttle = throttle
        self.faults = faults
        self.latency = latency_ms / 1000.0
        self.delta_ttl = delta_ttl_seconds
        self.cursors: collections.OrderedDict[str, _Cursor] = collections.OrderedDict()
        self.request_count = 0
        self._known: dict[str, frozenset[str]] = {}

    # -- ASGI ---------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "localhost")
        base_url = f"{scope.get('scheme', 'http')}://{host}/v1.0"
        if self.latency:
            await asyncio.sleep(self.latency)
        request_id = new_request_id()
        client_request_id = headers.get("client-request-id")
        # Route on the path as sent: a percent-encoded "/" inside an id must stay inside its segment.
        raw = scope.get("raw_path")
        path = raw.decode("latin-1").partition("?")[0] if raw else scope["path"]
        if not path.startswith(API_PREFIX):
            reply = self._error(
                GraphFault(404, "NotFound", f"Only {API_PREFIX} is served here."), client_request_id, request_id
            )
        else:
            try:
                body = json.loads(b"".join(chunks)) if any(chunks) else None
            except ValueError:
                body = _INVALID_JSON
            query = scope.get("query_string", b"").decode("latin-1")
            request = Request(
                method=scope["method"].upper(),
                path=path[len(API_PREFIX) :].rstrip("/"),
                params=dict(parse_qsl(query, keep_blank_values=True)),
                headers=headers,
                body=body,
                base_url=base_url,
            )
            pending = [0.0]
            context = _PENDING_DELAY.set(pending)
            try:
                reply = self.handle(request, request_id)
            finally:
                _PENDING_DELAY.reset(context)
            if pending[0]:
                # Waited here rather than in the handler, so other requests are answered meanwhile.
                await asyncio.sleep(pending[0])
        await _send_reply(send, reply, request_id, client_request_id)

    # -- dispatch -----------------------------------------------------------------------------

    def handle(self, request: Request, request_id: str | None = None) -> Reply:
        """Answer one request: route, throttle, inject faults, run the handler, shape errors."""
        request_id = request_id or new_request_id()
        self.request_count += 1
        charge_headers: dict[str, str] = {}
        try:
            if request.body is _INVALID_JSON:
                raise bad_request(
                    "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
                    "BadRequest",
                )
            matched = self.routes.match(request.path)
            if matched is None:
                raise no_route(request.path)
            route, params = matched
            check_access(self.tenant, route, params, request)
            query = parse_query(request.params)
            if route.op is not Op.BATCH and self.throttle is not None:
                charge = self.throttle.charge(
                    self._scope(route), self._cost(route, request, query), request.method in WRITE_METHODS
                )
                charge_headers = charge.headers
            rule = self._pick_fault(route, request, query)
            if rule is not None:
                request = self._inject(rule, route, request, query)
            reply = self._dispatch(route, params, request, query)
            if rule is not None and rule.after_commit:
                raise self._fault(rule, route, request)
        except GraphFault as fault:
            reply = self._error(fault, request.headers.get("client-request-id"), request_id)
        return Reply(reply.status, reply.body, {**charge_headers, **reply.headers}, reply.text)

    def _pick_fault(self, route: Route, request: Request, query: Query) -> FaultRule | None:
        if self.faults is None:
            return None
        paged = request.method == "GET" and route.op in PAGED_OPS
        skiptoken = paged and bool(query.skiptoken)
        delta_token = paged and route.op is Op.DELTA and query.deltatoken not in (None, "", "latest")
        return self.faults.pick(
            request.method, request.path, paged=paged, skiptoken=skiptoken, token=skiptoken or delta_token
        )

    def _inject(self, rule: FaultRule, route: Route, request: Request, query: Query) -> Request:
        """Apply a fault rule before the handler: delay, fail, or hand a paging fault to `_page` on the request."""
        if rule.delay:
            pending = _PENDING_DELAY.get()
            if pending is None:
                time.sleep(rule.delay)  # called directly, not through ASGI: nothing else to serve meanwhile
            else:
                pending[0] += rule.delay
        if rule.status is not None and not rule.after_commit:
            raise self._fault(rule, route, request)
        if rule.expire_token:
            if query.skiptoken:
                # Forgotten, as an expired cursor is: the client has to start the read again.
                self.cursors.pop(query.skiptoken.partition(".")[0], None)
                raise _invalid_skiptoken()
            raise sync_state_not_found(f"{request.base_url}/{route.rtype.delta}")
        return replace(request, fault=rule) if rule.truncate or rule.repeat_skiptoken else request

    @staticmethod
    def _fault(rule: FaultRule, route: Route, request: Request) -> GraphFault:
        location = f"{request.base_url}/{route.rtype.delta}" if route.op is Op.DELTA else None
        return Faults.fault(rule, request.path, location)

    @staticmethod
    def _error(fault: GraphFault, client_request_id: str | None, request_id: str) -> Reply:
        return Reply(fault.status, fault.body(client_request_id, request_id), dict(fault.headers))

    @staticmethod
    def _scope(route: Route) -> ThrottleScope:
        return route.types[0].throttle_scope if route.types else ThrottleScope.IDENTITY

    @staticmethod
    def _cost(route: Route, request: Request, query: Query) -> int:
        if request.method != "GET":
            return 1
        if route.op in (Op.COLLECTION, Op.DELTA, Op.DELETED_LIST):
            base = route.rtype.read_cost
        elif route.op is Op.LINKS and route.prop and route.prop.link:
            base = route.prop.link.read_cost
        else:
            return 1
        top = query.top if any(k.lstrip("$").lower() == "top" for k in request.params) else None
        expanded = any(k.lstrip("$").lower() == "expand" for k in request.params)
        return request_cost(base, selected=query.select is not None, expanded=expanded, top=top)

    def _dispatch(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        handler = _HANDLERS.get((route.op, request.method))
        if handler is None:
            raise method_not_allowed(request.method)
        return handler(self, route, params, request, query)

    # -- shared pieces ------------------------------------------------------------------------

    def _known_properties(self, rtype: ResourceType) -> frozenset[str]:
        """Names Graph would accept in $select for this type: the schema's and any the seed served."""
        if rtype.name not in self._known:
            names = {p.name for p in rtype.properties} | set(rtype.default_select or ())
            objects = [self.tenant.singletons[rtype.name]] if rtype.name in self.tenant.singletons else []
            objects.extend(itertools.islice(self.tenant.all_objects(rtype), 200))
            for obj in objects:
                names.update(obj)
            self._known[rtype.name] = frozenset(names)
        return self._known[rtype.name]

    def _check_select(self, rtype: ResourceType, select: tuple[str, ...] | None) -> None:
        for name in select or ():
            if name not in self._known_properties(rtype):
                raise bad_request(f"Could not find a property named '{name}' on type '{rtype.odata_type}'.")

    def _shape(self, rtype: ResourceType, obj: Mapping[str, Any], select: tuple[str, ...] | None) -> dict[str, Any]:
        if select is None and rtype.default_select is not None:
            select = rtype.default_select
        arrays = frozenset(p.name for p in rtype.properties if p.is_array)
        return project(obj, tuple(n for n in select if not _is_link(rtype, n)) if select else None, arrays)

    def _parent(self, route: Route, params: Mapping[str, str]) -> str:
        parent = route.rtype.parent
        if parent is None:
            return TOP
        parent_type = self.registry.get(parent.type_name)
        return self.tenant.get(parent_type, params[parent.param])["id"]

    def _context(self, request: Request, fragment: str) -> str:
        return f"{request.base_url}/$metadata#{fragment}"

    def _remember(self, cursor: _Cursor) -> str:
        token = secrets.token_urlsafe(12)
        self.cursors[token] = cursor
        while len(self.cursors) > MAX_CURSORS:
            self.cursors.popitem(last=False)
        return token

    def _page(
        self,
        request: Request,
        query: Query,
        build: Callable[[], tuple[Any, ...]],
        extra: Mapping[str, Any] | None = None,
    ) -> tuple[list[Any], _Cursor, str | None]:
        """The page a request asks for; a nextLink when more follow. Rereading a page gives the same page."""
        if query.skiptoken:
            cursor_id, _, offset_text = query.skiptoken.partition(".")
            cursor = self.cursors.get(cursor_id)
            if cursor is None or not offset_text.isdigit():
                raise _invalid_skiptoken()
            self.cursors.move_to_end(cursor_id)
            offset = int(offset_text)
        else:
            top = query.top
            # A preference Graph cannot honour is ignored, never an error.
            prefer = re.search(r"odata\.maxpagesize=(\d+)", request.headers.get("prefer", ""))
            if prefer:
                top = min(MAX_PAGE_SIZE, max(1, int(prefer.group(1))))
            cursor = _Cursor(build(), query.select, top, extra or {})
            # Only results that need a next page are kept, so small lists never evict a long read's cursor.
            cursor_id = self._remember(cursor) if len(cursor.items) > top else ""
            offset = 0
        end = offset + cursor.top
        page = list(cursor.items[offset:end])
        rule = request.fault
        if rule is not None and rule.truncate:
            # Items lost without a sign: the page keeps its usual nextLink (or none), as a dropped page would.
            page = page[: max(0, len(page) - rule.truncate)]
        # repeat-skiptoken: the nextLink names the page just served, as a server stuck on its cursor would.
        repeat = rule is not None and rule.repeat_skiptoken
        next_link = None
        if end < len(cursor.items) or repeat:
            params = [("$skiptoken", f"{cursor_id}.{offset if repeat else end}")]
            if cursor.select is not None:
                params.insert(0, ("$select", ",".join(cursor.select)))
            params.insert(len(params) - 1, ("$top", str(cursor.top)))
            next_link = f"{request.base_url}/{request.path}?" + "&".join(f"{k}={quote(v, safe=',')}" for k, v in params)
        return page, cursor, next_link

    # -- collections --------------------------------------------------------------------------

    def list_collection(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype = route.rtype
        parent = self._parent(route, params)
        self._check_select(rtype, query.select)
        if query.count and request.headers.get("consistencylevel", "").lower() != "eventual":
            raise bad_request("$count is not currently supported without the header ConsistencyLevel: eventual.")
        bucket = self.tenant.objects(rtype, parent)

        def ids() -> tuple[str, ...]:
            # agentidentity-list: a cast "does not return other types of service principal objects".
            wanted = (
                bucket
                if route.kind is None
                else {k: o for k, o in bucket.items() if rtype.kind_of(o) == _short(route.kind)}
            )
            if query.filter is None:
                return tuple(wanted)
            return tuple(k for k, o in wanted.items() if query.filter(o))

        page, cursor, next_link = self._page(request, query, ids)
        value = [self._shape(rtype, bucket[i], cursor.select) for i in page if i in bucket]
        body: dict[str, Any] = {"@odata.context": self._context(request, request.path)}
        if query.count:
            body["@odata.count"] = len(cursor.items)
        if next_link:
            body["@odata.nextLink"] = next_link
        body["value"] = value
        return Reply(200, body)

    def count(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        if request.headers.get("consistencylevel", "").lower() != "eventual":
            raise bad_request("Count is not currently supported without the header ConsistencyLevel: eventual.")
        bucket = self.tenant.objects(route.rtype, self._parent(route, params))
        total = sum(1 for o in bucket.values() if query.filter(o)) if query.filter else len(bucket)
        return Reply(200, text=str(total))

    def create(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype = route.rtype
        if rtype.singleton:
            raise method_not_allowed(request.method)
        body = _object_body(request.body)
        if route.kind is not None:
            # POST to the cast (agentidentity-post) creates that kind, whatever else the body says.
            if _short(str(body.get("@odata.type", route.kind))) != _short(route.kind):
                raise bad_request(f"The @odata.type '{body['@odata.type']}' does not match '{route.kind}'.")
            body = {**body, "@odata.type": f"#{route.kind}"}
        parent = self._parent(route, params)
        body = self._check_writable(rtype, body, creating=True)
        hooks.check_references(self.tenant, rtype, body)
        prepared = hooks.before_create(self.tenant, rtype, dict(body), parent)
        if not rtype.subtypes and rtype.kind_of(prepared) is None:
            # Typed SDK models send their base type's @odata.type; Graph neither stores nor echoes it.
            prepared.pop("@odata.type", None)
        obj = self.tenant.create(rtype, prepared, parent)
        return Reply(201, {"@odata.context": self._context(request, f"{request.path}/$entity"), **obj})

    # -- items --------------------------------------------------------------------------------

    def _item(self, route: Route, params: dict[str, str]) -> tuple[ResourceType, dict[str, Any], str]:
        rtype = route.rtype
        parent = self._parent(route, params)
        if route.alternate_key:
            obj = self.tenant.find_by(rtype, route.alternate_key, params["key"])
            if obj is None:
                raise not_found(params["key"])
            return rtype, obj, parent
        obj = self.tenant.get(rtype, params["id"], parent)
        if route.kind is not None and rtype.kind_of(obj) != _short(route.kind):
            raise not_found(params["id"])
        return rtype, obj, parent

    def get_item(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype, obj, _ = self._item(route, params)
        self._check_select(rtype, query.select)
        shaped = self._shape(rtype, obj, query.select)
        where = f"{rtype.collection}/{route.kind}" if route.kind else request.path.rpartition("/")[0] or rtype.name
        return Reply(200, {"@odata.context": self._context(request, f"{where}/$entity"), **shaped})

    def patch_item(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype, obj, _ = self._item(route, params)
        changes = self._check_writable(rtype, _object_body(request.body), current=obj)
        hooks.check_references(self.tenant, rtype, changes)
        hooks.before_update(self.tenant, rtype, obj, changes)
        self.tenant.update(rtype, obj, {k: v for k, v in changes.items() if k != "@odata.type"})
        return Reply(204)

    def delete_item(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype, obj, parent = self._item(route, params)
        if rtype.singleton:
            raise method_not_allowed(request.method)
        if rtype.is_read_only(obj):
            raise bad_request(f"Built-in {rtype.name} '{obj['id']}' cannot be deleted.")
        if rtype.is_synchronized(obj):
            raise bad_request("Unable to delete an object that is mastered on-premises by directory synchronization.")
        hooks.before_delete(self.tenant, rtype, obj)
        self.tenant.delete(rtype, obj["id"], parent)
        return Reply(204)

    def _check_writable(
        self,
        rtype: ResourceType,
        body: Mapping[str, Any],
        *,
        current: Mapping[str, Any] | None = None,
        creating: bool = False,
    ) -> dict[str, Any]:
        """Refuse what Graph refuses: read-only, unknown and action-only properties, values of the wrong type or
        outside an enum, built-in and synced objects. Returns the body as stored (OData's "true" read as true)."""
        if current is not None and rtype.is_read_only(current):
            raise bad_request(f"Built-in {rtype.name} '{current.get('id')}' cannot be modified.")
        if current is not None and rtype.is_synchronized(current):
            raise bad_request(
                "Unable to update the specified properties for on-premises mastered Directory Sync objects "
                "or objects currently undergoing migration."
            )
        if (
            rtype.subtypes
            and not creating
            and current is not None
            and body.get("@odata.type", current.get("@odata.type")) != current.get("@odata.type")
        ):
            raise bad_request(f"The @odata.type '{body['@odata.type']}' does not match the object's type.")
        if rtype.subtypes and "@odata.type" not in body:
            raise bad_request(f"The request body for a {rtype.name} must state its '@odata.type'.")
        if rtype.kinds and "@odata.type" in body:
            body = self._stated_kind(rtype, body, current)
        known = self._known_properties(rtype)
        for name in body:
            if name == "@odata.type" or name == "passwordProfile" or name.endswith("@odata.bind"):
                continue
            prop = rtype.prop(name)
            if prop is None and name not in known:
                raise bad_request(f"Property '{name}' does not exist as a declared property or extension property.")
            if creating and name in rtype.server_generated:
                continue
            if prop is not None and prop.read_only and not creating:
                raise bad_request(f"Property '{name}' is read-only and cannot be set.")
            if prop is not None and prop.write_action and not creating:
                raise bad_request(
                    f"Property '{name}' can only be changed through {prop.write_action.rsplit('/', 1)[-1]}."
                )
            if prop is not None and prop.link is not None:
                raise bad_request(f"Property '{name}' is a relationship: use its $ref endpoint.")
        return values.checked(rtype, body)

    @staticmethod
    def _stated_kind(rtype: ResourceType, body: Mapping[str, Any], current: Mapping[str, Any] | None) -> dict[str, Any]:
        """The body with its @odata.type as stored: a kind as `#microsoft.graph.…`, the base type left out.

        An object's type never changes: a PATCH may state the base type or the object's own kind, nothing else.
        """
        stated = str(body["@odata.type"]).removeprefix("#")
        if stated.startswith("graph."):
            stated = f"microsoft.{stated}"
        if stated != rtype.odata_type and stated not in rtype.kinds:
            raise bad_request(f"The @odata.type '{body['@odata.type']}' is not a {rtype.odata_type}.")
        kind = f"#{stated}" if stated in rtype.kinds else None
        if current is not None and kind is not None and kind != current.get("@odata.type"):
            raise bad_request(f"The @odata.type '{body['@odata.type']}' does not match the object's type.")
        rest = {k: v for k, v in body.items() if k != "@odata.type"}
        return {"@odata.type": kind, **rest} if kind else rest

    # -- singletons ---------------------------------------------------------------------------

    def _singleton(self, rtype: ResourceType) -> dict[str, Any]:
        obj = self.tenant.singletons.get(rtype.name)
        if obj is None:
            raise not_found(rtype.singleton_path or rtype.name)
        return obj

    def get_singleton(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype = route.rtype
        self._check_select(rtype, query.select)
        shaped = self._shape(rtype, self._singleton(rtype), query.select)
        return Reply(200, {"@odata.context": self._context(request, request.path + "/$entity"), **shaped})

    def patch_singleton(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype = route.rtype
        obj = self._singleton(rtype)
        changes = self._check_writable(rtype, _object_body(request.body), current=obj)
        self.tenant.update(rtype, obj, changes)
        return Reply(204)

    def _singleton_item(
        self, route: Route, params: dict[str, str]
    ) -> tuple[ResourceType, dict[str, Any], dict[str, Any]]:
        rtype, prop = route.rtype, route.prop
        assert prop is not None and prop.item_key
        owner = self._singleton(rtype)
        for item in owner.get(prop.name) or []:
            if str(item.get(prop.item_key, "")).lower() == params["key"].lower():
                return rtype, owner, item
        raise not_found(params["key"])

    def list_singleton_items(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        assert route.prop is not None
        items = self._singleton(route.rtype).get(route.prop.name) or []
        return Reply(200, {"@odata.context": self._context(request, request.path), "value": list(items)})

    def get_singleton_item(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        _, _, item = self._singleton_item(route, params)
        return Reply(200, {"@odata.context": self._context(request, request.path + "/$entity"), **item})

    def patch_singleton_item(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype, owner, item = self._singleton_item(route, params)
        changes = _object_body(request.body)
        if changes.get("@odata.type", item.get("@odata.type")) != item.get("@odata.type"):
            raise bad_request(f"The @odata.type '{changes['@odata.type']}' does not match the object's type.")
        for name in changes:
            if name not in item and name != "@odata.type":
                raise bad_request(f"Property '{name}' does not exist as a declared property or extension property.")
        item.update({k: v for k, v in changes.items() if k not in ("id", "@odata.type")})
        self.tenant.update(rtype, owner, {})
        return Reply(204)

    # -- actions ------------------------------------------------------------------------------

    def action(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype, prop = route.rtype, route.prop
        assert prop is not None
        obj = self.tenant.get(rtype, params["id"])
        if rtype.is_read_only(obj):
            raise bad_request(f"Built-in {rtype.name} '{obj['id']}' cannot be modified.")
        body = _object_body(request.body)
        if set(body) != {prop.name}:
            raise bad_request(f"The action takes exactly one parameter, '{prop.name}'.")
        previous = obj.get(prop.name)
        self.tenant.update(rtype, obj, {prop.name: body[prop.name]})
        result = hooks.action_result(previous, body[prop.name])
        return Reply(200, {"@odata.context": self._context(request, f"microsoft.graph.{prop.name}Result"), **result})

    # -- links --------------------------------------------------------------------------------

    def list_links(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype, prop = route.rtype, route.prop
        assert prop is not None
        owner = self.tenant.get(rtype, params["id"])
        members = self.tenant.members((rtype.name, prop.name), owner["id"])
        page, cursor, next_link = self._page(request, query, lambda: tuple(members))
        value = []
        for member_id in page:
            found = self.tenant.directory_object(member_id)
            if found is None:
                continue
            member_type, member = found
            shaped = self._shape(member_type, member, cursor.select)
            value.append({"@odata.type": f"#{member_type.odata_type}", **shaped})
        body: dict[str, Any] = {"@odata.context": self._context(request, "directoryObjects")}
        if next_link:
            body["@odata.nextLink"] = next_link
        body["value"] = value
        return Reply(200, body)

    def add_link(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype, prop = route.rtype, route.prop
        assert prop is not None
        owner = self.tenant.get(rtype, params["id"])
        hooks.before_link_write(rtype, prop.name, owner)
        reference = _object_body(request.body).get("@odata.id")
        if not isinstance(reference, str) or "/" not in reference:
            raise bad_request("The request body must contain '@odata.id' with the URL of a directory object.")
        member_id = reference.rstrip("/").rsplit("/", 1)[-1]
        found = self.tenant.directory_object(member_id)
        if found is None:
            raise not_found(member_id)
        self.tenant.add_link((rtype.name, prop.name), owner["id"], found[1]["id"])
        return Reply(204)

    def remove_link(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype, prop = route.rtype, route.prop
        assert prop is not None
        owner = self.tenant.get(rtype, params["id"])
        hooks.before_link_write(rtype, prop.name, owner)
        member_id = params["linkId"]
        found = self.tenant.directory_object(member_id)
        self.tenant.remove_link((rtype.name, prop.name), owner["id"], found[1]["id"] if found else member_id)
        return Reply(204)

    def directory_object(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        found = self.tenant.directory_object(params["id"])
        if found is None:
            raise not_found(params["id"])
        rtype, obj = found
        shaped = self._shape(rtype, obj, query.select)
        return Reply(
            200,
            {
                "@odata.context": self._context(request, "directoryObjects/$entity"),
                "@odata.type": f"#{rtype.odata_type}",
                **shaped,
            },
        )

    # -- soft delete --------------------------------------------------------------------------

    def list_deleted(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype = route.rtype
        bucket = self.tenant.deleted[rtype.name]
        self._check_select(rtype, tuple(n for n in query.select or () if n != "deletedDateTime"))

        def ids() -> tuple[str, ...]:
            return tuple(k for k, r in bucket.items() if query.filter is None or query.filter(r.obj))

        page, cursor, next_link = self._page(request, query, ids)
        value = []
        for object_id in page:
            if object_id in bucket:
                obj = bucket[object_id].obj
                shaped = self._shape(rtype, obj, cursor.select)
                if cursor.select is None:
                    shaped["deletedDateTime"] = obj.get("deletedDateTime")
                value.append({"@odata.type": f"#{rtype.odata_type}", **shaped})
        body: dict[str, Any] = {"@odata.context": self._context(request, request.path)}
        if next_link:
            body["@odata.nextLink"] = next_link
        body["value"] = value
        return Reply(200, body)

    def get_deleted(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype, record = self.tenant.find_deleted(route.types, params["id"])
        shaped = self._shape(rtype, record.obj, query.select)
        return Reply(
            200,
            {
                "@odata.context": self._context(request, "directory/deletedItems/$entity"),
                "@odata.type": f"#{rtype.odata_type}",
                **shaped,
            },
        )

    def purge_deleted(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype, record = self.tenant.find_deleted(route.types, params["id"])
        self.tenant.purge(rtype, record.obj["id"])
        return Reply(204)

    def restore(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype, record = self.tenant.find_deleted(route.types, params["id"])
        body = _object_body(request.body) if request.body is not None else {}
        hooks.before_restore(self.tenant, rtype, record.obj, body)
        renamed = {"userPrincipalName": body["newUserPrincipalName"]} if body.get("newUserPrincipalName") else None
        obj = self.tenant.restore(rtype, record.obj["id"], renamed)
        return Reply(
            200,
            {
                "@odata.context": self._context(request, "directoryObjects/$entity"),
                "@odata.type": f"#{rtype.odata_type}",
                **obj,
            },
        )

    # -- delta --------------------------------------------------------------------------------

    def delta(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype = route.rtype
        select = query.select
        since: int | None = None
        if query.deltatoken:
            if query.deltatoken == "latest":
                return self._delta_link_only(rtype, request, select)
            state = _decode_token(query.deltatoken)
            if state is None or state.get("t") != rtype.name:
                raise bad_request("The delta token is not valid for this resource.", "Request_InvalidDeltaToken")
            if self.tenant.clock() - state["at"] > self.delta_ttl:
                raise sync_state_not_found(f"{request.base_url}/{rtype.delta}")
            since, select = state["s"], tuple(state["sel"]) if state.get("sel") is not None else None
        self._check_select(rtype, tuple(n for n in select or () if not _is_link(rtype, n)))
        links = tuple(p for p in rtype.links if select and p.name in select)
        upto = self.tenant.seq

        def rows() -> tuple[str, ...]:
            changes = self.tenant.changes[rtype.name]
            if since is None:
                return tuple(o["id"] for o in self.tenant.all_objects(rtype))
            changed = {i for i, s in changes.items() if since < s <= upto}
            for prop in links:
                for owner_id, members in self.tenant.link_changes[(rtype.name, prop.name)].items():
                    if any(since < s <= upto for s, _ in members.values()):
                        changed.add(owner_id)
            return tuple(sorted(changed, key=lambda i: changes.get(i, 0)))

        effective = Query(select, query.top, None, False, query.skiptoken, None)
        page, cursor, next_link = self._page(request, effective, rows, {"since": since, "upto": upto})
        value = [
            self._delta_row(rtype, i, cursor.select, links, cursor.extra["since"], cursor.extra["upto"]) for i in page
        ]
        body: dict[str, Any] = {"@odata.context": self._context(request, request.path)}
        if next_link:
            body["@odata.nextLink"] = next_link
        else:
            body["@odata.deltaLink"] = self._delta_link(rtype, request, cursor.select, cursor.extra["upto"])
        body["value"] = value
        return Reply(200, body)

    def _delta_link(self, rtype: ResourceType, request: Request, select: tuple[str, ...] | None, seq: int) -> str:
        token = _encode_token(
            {"t": rtype.name, "s": seq, "at": self.tenant.clock(), "sel": list(select) if select is not None else None}
        )
        return f"{request.base_url}/{rtype.delta}?$deltatoken={token}"

    def _delta_link_only(self, rtype: ResourceType, request: Request, select: tuple[str, ...] | None) -> Reply:
        body = {
            "@odata.context": self._context(request, request.path),
            "@odata.deltaLink": self._delta_link(rtype, request, select, self.tenant.seq),
            "value": [],
        }
        return Reply(200, body)

    def _delta_row(
        self,
        rtype: ResourceType,
        object_id: str,
        select: tuple[str, ...] | None,
        links: tuple[PropertySpec, ...],
        since: int | None,
        upto: int,
    ) -> dict[str, Any]:
        obj = self.tenant.find(rtype, object_id)
        if obj is None:
            reason = "changed" if object_id in self.tenant.deleted[rtype.name] else "deleted"
            return {"id": object_id, "@removed": {"reason": reason}}
        row = self._shape(rtype, obj, select)
        row.setdefault("id", object_id)
        for prop in links:
            key = (rtype.name, prop.name)
            entries = []
            if since is None:
                for member_id in self.tenant.members(key, object_id):
                    entries.append({"@odata.type": self._odata_type_of(member_id), "id": member_id})
            else:
                for member_id, (seq, present) in self.tenant.link_changes[key].get(object_id, {}).items():
                    if since < seq <= upto:
                        entry = {"@odata.type": self._odata_type_of(member_id), "id": member_id}
                        if not present:
                            entry["@removed"] = {"reason": "deleted"}
                        entries.append(entry)
            row[f"{prop.name}@delta"] = entries
        return row

    def _odata_type_of(self, object_id: str) -> str:
        found = self.tenant.directory_object(object_id)
        if found is not None and found[0].kind_of(found[1]):
            return str(found[1]["@odata.type"])  # an agent user is served as one, not as a plain user
        name = self.tenant.directory.get(object_id)
        if name is None:
            name = next((t for t, bucket in self.tenant.deleted.items() if object_id in bucket), None)
        return f"#{self.registry.get(name).odata_type}" if name else "#microsoft.graph.directoryObject"

    # -- $batch -------------------------------------------------------------------------------

    def batch(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        body = _object_body(request.body)
        items = body.get("requests")
        if not isinstance(items, list) or not items:
            raise bad_request("The batch request must contain a non-empty 'requests' array.", "BadRequest")
        if len(items) > MAX_BATCH:
            raise bad_request(f"The number of batch requests exceeds the maximum of {MAX_BATCH}.", "BadRequest")
        # json-batching.md: ids are "not case-sensitive" and must be unique, or the whole batch is 400; a body
        # needs a Content-Type header. Both are checked before any request runs, as a malformed batch is.
        for item in items:
            if not isinstance(item, dict) or not {"id", "method", "url"} <= item.keys():
                raise bad_request("Every batch request needs 'id', 'method' and 'url'.", "BadRequest")
            headers = {str(k).lower() for k in (item.get("headers") or {})}
            if item.get("body") is not None and "content-type" not in headers:
                raise bad_request(f"Batch request '{item['id']}' has a body but no Content-Type header.", "BadRequest")
        ids = [str(item["id"]).lower() for item in items]
        if len(set(ids)) != len(ids):
            raise bad_request("Batch request ids must be unique (they are not case-sensitive).", "BadRequest")
        statuses: dict[str, int] = {}
        responses = []
        for item in items:
            item_id = str(item["id"])
            depends = [str(d).lower() for d in item.get("dependsOn") or []]
            if any(d not in statuses for d in depends):
                raise bad_request(
                    f"Batch request '{item_id}' depends on a request that does not come before it.", "BadRequest"
                )
            if any(statuses[d] >= 400 for d in depends):
                fault = GraphFault(
                    424, "FailedDependency", "The request was not run because a request it depends on failed."
                )
                reply = self._error(fault, None, new_request_id())
            else:
                reply = self.handle(_sub_request(request, item))
            statuses[item_id.lower()] = reply.status
            responses.append(_batch_response(item_id, reply))
        # Graph answers sub-requests in no promised order; answering in reverse keeps clients honest.
        return Reply(200, {"responses": list(reversed(responses))})


_INVALID_JSON = object()


def _invalid_skiptoken() -> GraphFault:
    return bad_request("The $skiptoken is invalid or has expired.", "Request_InvalidSkipToken")


def _short(kind: str) -> str:
    """`microsoft.graph.agentIdentity` (or `#…`, `graph.…`) -> `agentIdentity`, as ResourceType.kind_of names kinds."""
    return kind.rsplit(".", 1)[-1]


def _is_link(rtype: ResourceType, name: str) -> bool:
    prop = rtype.prop(name)
    return prop is not None and prop.link is not None


def _object_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", "BadRequest")
    return body


def _encode_token(state: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_token(token: str) -> dict[str, Any] | None:
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        return None
    return state if isinstance(state, dict) and {"t", "s", "at"} <= state.keys() else None


def _sub_request(envelope: Request, item: Mapping[str, Any]) -> Request:
    url = str(item["url"]).lstrip("/")
    if url.startswith("v1.0/"):
        url = url[len("v1.0/") :]
    path, _, query = url.partition("?")
    headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
    # Graph authenticates a batch once: every sub-request runs as the caller of the envelope.
    headers.pop("authorization", None)
    if "authorization" in envelope.headers:
        headers["authorization"] = envelope.headers["authorization"]
    return Request(
        method=str(item["method"]).upper(),
        path=path.rstrip("/"),
        params=dict(parse_qsl(query, keep_blank_values=True)),
        headers=headers,
        body=item.get("body"),
        base_url=envelope.base_url,
    )


def _batch_response(item_id: str, reply: Reply) -> dict[str, Any]:
    response: dict[str, Any] = {"id": item_id, "status": reply.status, "headers": dict(reply.headers)}
    if reply.text is not None:
        response["headers"]["Content-Type"] = "text/plain"
        response["body"] = reply.text
    elif reply.body is not None:
        response["headers"]["Content-Type"] = "application/json"
        response["body"] = reply.body
    return response


async def _send_reply(send: Callable, reply: Reply, request_id: str, client_request_id: str | None) -> None:
    headers = [
        (b"request-id", request_id.encode()),
        (b"client-request-id", (client_request_id or request_id).encode()),
    ]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()]
    if reply.text is not None:
        payload = reply.text.encode()
        headers.append((b"content-type", b"text/plain;charset=utf-8"))
    elif reply.body is not None:
        payload = json.dumps(reply.body, ensure_ascii=False, separators=(",", ":")).encode()
        headers.append((b"content-type", JSON_CONTENT_TYPE.encode()))
    else:
        payload = b""
    headers.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


_HANDLERS: dict[tuple[Op, str], Callable[..., Reply]] = {
    (Op.COLLECTION, "GET"): Emulator.list_collection,
    (Op.COLLECTION, "POST"): Emulator.create,
    (Op.COUNT, "GET"): Emulator.count,
    (Op.ITEM, "GET"): Emulator.get_item,
    (Op.ITEM, "PATCH"): Emulator.patch_item,
    (Op.ITEM, "DELETE"): Emulator.delete_item,
    (Op.ALTERNATE_ITEM, "GET"): Emulator.get_item,
    (Op.ALTERNATE_ITEM, "PATCH"): Emulator.patch_item,
    (Op.ALTERNATE_ITEM, "DELETE"): Emulator.delete_item,
    (Op.SINGLETON, "GET"): Emulator.get_singleton,
    (Op.SINGLETON, "PATCH"): Emulator.patch_singleton,
    (Op.SINGLETON_ITEMS, "GET"): Emulator.list_singleton_items,
    (Op.SINGLETON_ITEM, "GET"): Emulator.get_singleton_item,
    (Op.SINGLETON_ITEM, "PATCH"): Emulator.patch_singleton_item,
    (Op.ACTION, "POST"): Emulator.action,
    (Op.LINKS, "GET"): Emulator.list_links,
    (Op.LINK_ADD, "POST"): Emulator.add_link,
    (Op.LINK_REMOVE, "DELETE"): Emulator.remove_link,
    (Op.DIRECTORY_OBJECT, "GET"): Emulator.directory_object,
    (Op.DELETED_LIST, "GET"): Emulator.list_deleted,
    (Op.DELETED_ITEM, "GET"): Emulator.get_deleted,
    (Op.DELETED_ITEM, "DELETE"): Emulator.purge_deleted,
    (Op.RESTORE, "POST"): Emulator.restore,
    (Op.DELTA, "GET"): Emulator.delta,
    (Op.BATCH, "POST"): Emulator.batch,
}
