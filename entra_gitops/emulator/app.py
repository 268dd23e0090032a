"""The emulated Microsoft Graph v1.0 as an ASGI app: routing, access checks, throttling and faults, dispatch."""

from __future__ import annotations

import asyncio
import contextvars
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl

from entra_gitops.emulator import hooks
from entra_gitops.emulator.audit import AuditLogs, Auditor
from entra_gitops.emulator.auth import check_access
from entra_gitops.emulator.batch import Batch
from entra_gitops.emulator.deleted import Deleted
from entra_gitops.emulator.delta import DELTA_TOKEN_TTL_SECONDS, Delta
from entra_gitops.emulator.handlers import Handler
from entra_gitops.emulator.items import Items
from entra_gitops.emulator.limits import FaultRule, Faults, Throttle, request_cost, sync_state_not_found
from entra_gitops.emulator.links import Links
from entra_gitops.emulator.odata import Query, parse_query
from entra_gitops.emulator.paging import Pager, invalid_skiptoken
from entra_gitops.emulator.properties import Properties
from entra_gitops.emulator.protocol import (
    JSON_CONTENT_TYPE,
    GraphFault,
    Reply,
    Request,
    bad_request,
    error_reply,
    method_not_allowed,
    new_request_id,
    no_route,
)
from entra_gitops.emulator.routes import Op, Route, RouteTable
from entra_gitops.emulator.singletons import Singletons
from entra_gitops.emulator.store import Tenant
from entra_gitops.model.registry import ThrottleScope

__all__ = ["WRITE_METHODS", "Emulator", "Request"]

API_PREFIX = "/v1.0/"
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
PAGED_OPS = frozenset({Op.COLLECTION, Op.LINKS, Op.DELETED_LIST, Op.DELTA})

# Seconds the answer to the current ASGI request must still wait: injected delays, $batch sub-requests' included.
_PENDING_DELAY: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("pending_delay", default=None)


@dataclass
class Served:
    """What the emulator has answered, counted on its side: the figures a benchmark checks the client's against."""

    requests: int = 0
    resource_units: int = 0
    throttled: int = 0
    bytes_sent: int = 0
    paced: int = 0  # answered in Conditional Access's scope, one a second at most: a read's time floor


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
        self.request_count = 0
        self.served = Served()
        self.pager = Pager()
        properties = Properties(tenant)
        items = Items(tenant, properties, self.pager)
        singletons = Singletons(tenant, properties)
        links = Links(tenant, properties, self.pager)
        deleted = Deleted(tenant, properties, self.pager)
        self._delta = Delta(tenant, properties, self.pager, delta_ttl_seconds)
        self.auditor = Auditor(tenant)
        audit_logs = AuditLogs(tenant, properties, self.pager)
        # Looked up on every sub-request, so a subclass's or an instance's own `handle` sees those too.
        batch = Batch(lambda request: self.handle(request))
        self._handlers: dict[tuple[Op, str], Handler] = {
            (Op.COLLECTION, "GET"): items.list_collection,
            (Op.COLLECTION, "POST"): items.create,
            (Op.COUNT, "GET"): items.count,
            (Op.ITEM, "GET"): items.get_item,
            (Op.ITEM, "PATCH"): items.patch_item,
            (Op.ITEM, "DELETE"): items.delete_item,
            (Op.ALTERNATE_ITEM, "GET"): items.get_item,
            (Op.ALTERNATE_ITEM, "PATCH"): items.patch_item,
            (Op.ALTERNATE_ITEM, "DELETE"): items.delete_item,
            (Op.ACTION, "POST"): items.action,
            (Op.SINGLETON, "GET"): singletons.get_singleton,
            (Op.SINGLETON, "PATCH"): singletons.patch_singleton,
            (Op.SINGLETON_ITEMS, "GET"): singletons.list_singleton_items,
            (Op.SINGLETON_ITEM, "GET"): singletons.get_singleton_item,
            (Op.SINGLETON_ITEM, "PATCH"): singletons.patch_singleton_item,
            (Op.LINKS, "GET"): links.list_links,
            (Op.LINK_ADD, "POST"): links.add_link,
            (Op.LINK_REMOVE, "DELETE"): links.remove_link,
            (Op.DIRECTORY_OBJECT, "GET"): links.directory_object,
            (Op.DELETED_LIST, "GET"): deleted.list_deleted,
            (Op.DELETED_ITEM, "GET"): deleted.get_deleted,
            (Op.DELETED_ITEM, "DELETE"): deleted.purge_deleted,
            (Op.RESTORE, "POST"): deleted.restore,
            (Op.DELTA, "GET"): self._delta.delta,
            (Op.BATCH, "POST"): batch.batch,
            (Op.AUDIT_LIST, "GET"): audit_logs.list_audits,
            (Op.AUDIT_ITEM, "GET"): audit_logs.get_audit,
        }

    @property
    def delta_ttl(self) -> int:
        """Seconds a deltaLink stays usable; Graph's tokens last about a week."""
        return self._delta.ttl_seconds

    @delta_ttl.setter
    def delta_ttl(self, seconds: int) -> None:
        self._delta.ttl_seconds = seconds

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
            reply = error_reply(
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
        self.served.requests += 1
        self.served.bytes_sent += await _send_reply(send, reply, request_id, client_request_id)

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
            hooks.check_method(route, request.method)
            caller = check_access(self.tenant, route, params, request)
            # The audit log's $filter is its own (audit.py): the directory collections' parser would refuse it.
            query = parse_query(request.params if route.op is not Op.AUDIT_LIST else {})
            if query.expand is not None and route.op is not Op.COLLECTION:
                # Served where this project reads with it (a list); refused elsewhere, never silently ignored.
                raise bad_request(f"The emulator serves $expand on collection lists only, not on {request.path}.")
            if route.op is not Op.BATCH:
                scope = self._scope(route)
                # throttling-limits.md: every regular identity response says its cost in x-ms-resource-unit, with
                # or without a limit enforced; a $batch envelope costs nothing of its own, its requests do.
                cost = self._cost(route, request, query)
                charge_headers = (
                    {"x-ms-resource-unit": str(cost)}
                    if self.throttle is None
                    else self.throttle.charge(scope, cost, request.method in WRITE_METHODS).headers
                )
                if scope is ThrottleScope.CONDITIONAL_ACCESS:
                    self.served.paced += 1
            rule = self._pick_fault(route, request, query)
            if rule is not None:
                request = self._inject(rule, route, request, query)
            pending = self.auditor.before(route, params, request, caller, request_id)
            reply = self._dispatch(route, params, request, query)
            # Recorded before an after-commit fault: the write happened, whatever the client is told.
            self.auditor.after(pending, reply)
            if rule is not None and rule.after_commit:
                raise self._fault(rule, route, request)
        except GraphFault as fault:
            reply = error_reply(fault, request.headers.get("client-request-id"), request_id)
        if reply.status == 429:
            # A throttled answer carries the throttle's headers, not a cost (throttling-limits.md).
            self.served.throttled += 1
            charge_headers = {}
        self.served.resource_units += int(charge_headers.get("x-ms-resource-unit", 0))
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
        """Apply a fault rule before the handler: delay, fail, or hand a paging fault to the pager on the request."""
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
                self.pager.forget(query.skiptoken)
                raise invalid_skiptoken()
            raise sync_state_not_found(f"{request.base_url}/{route.rtype.delta}")
        return replace(request, fault=rule) if rule.truncate or rule.repeat_skiptoken else request

    @staticmethod
    def _fault(rule: FaultRule, route: Route, request: Request) -> GraphFault:
        location = f"{request.base_url}/{route.rtype.delta}" if route.op is Op.DELTA else None
        return Faults.fault(rule, request.path, location)

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
        handler = self._handlers.get((route.op, request.method))
        if handler is None:
            raise method_not_allowed(request.method)
        return handler(route, params, request, query)


_INVALID_JSON = object()


async def _send_reply(send: Callable, reply: Reply, request_id: str, client_request_id: str | None) -> int:
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
    return len(payload)
