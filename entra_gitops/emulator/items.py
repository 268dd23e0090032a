"""Collections and their items: list, count, create, get, update and delete, and the one-parameter actions."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

from entra_gitops.emulator import hooks
from entra_gitops.emulator.handlers import Reader
from entra_gitops.emulator.odata import EXPAND_CAP, EXPANDED_PAGE_SIZE, Expansion, Query
from entra_gitops.emulator.paging import listing
from entra_gitops.emulator.properties import short
from entra_gitops.emulator.protocol import (
    Reply,
    Request,
    bad_request,
    context_url,
    method_not_allowed,
    not_found,
    object_body,
)
from entra_gitops.emulator.routes import Route
from entra_gitops.emulator.store import TOP
from entra_gitops.model.registry import ResourceType


class Items(Reader):
    """The handlers of a type's collection and of its objects, by id or by alternate key."""

    def _parent(self, route: Route, params: dict[str, str]) -> str:
        parent = route.rtype.parent
        if parent is None:
            return TOP
        parent_type = self.tenant.registry.get(parent.type_name)
        return self.tenant.get(parent_type, params[parent.param])["id"]

    def list_collection(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype = route.rtype
        parent = self._parent(route, params)
        self.properties.check_select(rtype, query.select)
        if query.count and request.headers.get("consistencylevel", "").lower() != "eventual":
            raise bad_request("$count is not currently supported without the header ConsistencyLevel: eventual.")
        bucket = self.tenant.objects(rtype, parent)

        def ids() -> tuple[str, ...]:
            # agentidentity-list: a cast "does not return other types of service principal objects".
            wanted = (
                bucket
                if route.kind is None
                else {k: o for k, o in bucket.items() if rtype.kind_of(o) == short(route.kind)}
            )
            if query.filter is None:
                return tuple(wanted)
            return tuple(k for k, o in wanted.items() if query.filter(o))

        expanded = self._expansion(rtype, query.expand)
        if expanded is not None:
            query = dataclasses.replace(query, top=min(query.top, EXPANDED_PAGE_SIZE))
        page, cursor, next_link = self.pager.page(request, query, ids)
        value = [self.properties.shape(rtype, bucket[i], cursor.select) for i in page if i in bucket]
        if expanded is not None:
            assert query.expand is not None
            for shaped in value:
                shaped[query.expand.name] = expanded(shaped["id"])
        count = {"@odata.count": len(cursor.items)} if query.count else None
        return Reply(200, listing(context_url(request, request.path), value, next_link, count))

    def _expansion(self, rtype: ResourceType, expand: Expansion | None) -> Callable[[str], list[dict[str, Any]]] | None:
        """What `$expand` adds to each listed object: its children of a type whose parent expands (appRoleAssignedTo
        of a service principal) or the objects a link points at (members, owners, sponsors), 20 at most, no
        nextLink (query-parameters.md); a property the type has not is Graph's 400."""
        if expand is None:
            return None
        child = self.tenant.registry.expanded_child(rtype, expand.name)
        if child is not None:
            self.properties.check_select(child, expand.select)
            return lambda owner: [
                self.properties.shape(child, obj, expand.select)
                for obj in itertools.islice(self.tenant.objects(child, owner).values(), EXPAND_CAP)
            ]
        prop = rtype.prop(expand.name)
        if prop is None or prop.link is None:
            raise bad_request(
                "Parsing OData Select and Expand failed: Could not find a property named "
                f"'{expand.name}' on type '{rtype.odata_type}'."
            )
        link = (rtype.name, prop.name)

        def members(owner: str) -> list[dict[str, Any]]:
            found = []
            for member_id in itertools.islice(self.tenant.members(link, owner), EXPAND_CAP):
                member = self.tenant.directory_object(member_id)
                if member is not None:
                    shaped = self.properties.shape(member[0], member[1], expand.select)
                    found.append({"@odata.type": f"#{member[0].odata_type}", **shaped})
            return found

        return members

    def count(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        # aad-advanced-queries.md: `$count` on directory objects is an advanced query; without
        # `ConsistencyLevel: eventual` Graph refuses it with 400.
        if request.headers.get("consistencylevel", "").lower() != "eventual":
            raise bad_request("Count is not currently supported without the header ConsistencyLevel: eventual.")
        bucket = self.tenant.objects(route.rtype, self._parent(route, params))
        total = sum(1 for o in bucket.values() if query.filter(o)) if query.filter else len(bucket)
        return Reply(200, text=str(total))

    def create(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype = route.rtype
        if rtype.singleton:
            raise method_not_allowed(request.method)
        body = object_body(request.body)
        if route.kind is not None:
            # POST to the cast (agentidentity-post) creates that kind, whatever else the body says.
            if short(str(body.get("@odata.type", route.kind))) != short(route.kind):
                raise bad_request(f"The @odata.type '{body['@odata.type']}' does not match '{route.kind}'.")
            body = {**body, "@odata.type": f"#{route.kind}"}
        parent = self._parent(route, params)
        body = self.properties.check_writable(rtype, body, creating=True)
        hooks.check_references(self.tenant, rtype, body)
        prepared = hooks.before_create(self.tenant, rtype, dict(body), parent)
        if not rtype.subtypes and rtype.kind_of(prepared) is None:
            # Typed SDK models send their base type's @odata.type; Graph neither stores nor echoes it.
            prepared.pop("@odata.type", None)
        obj = self.tenant.create(rtype, prepared, parent)
        return Reply(201, {"@odata.context": context_url(request, f"{request.path}/$entity"), **obj})

    def _item(self, route: Route, params: dict[str, str]) -> tuple[ResourceType, dict[str, Any], str]:
        rtype = route.rtype
        parent = self._parent(route, params)
        if route.alternate_key:
            obj = self.tenant.find_by(rtype, route.alternate_key, params["key"])
            if obj is None:
                raise not_found(params["key"])
            return rtype, obj, parent
        obj = self.tenant.get(rtype, params["id"], parent)
        if route.kind is not None and rtype.kind_of(obj) != short(route.kind):
            raise not_found(params["id"])
        return rtype, obj, parent

    def get_item(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype, obj, _ = self._item(route, params)
        self.properties.check_select(rtype, query.select)
        shaped = self.properties.shape(rtype, obj, query.select)
        where = f"{rtype.collection}/{route.kind}" if route.kind else request.path.rpartition("/")[0] or rtype.name
        return Reply(200, {"@odata.context": context_url(request, f"{where}/$entity"), **shaped})

    def patch_item(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype, obj, _ = self._item(route, params)
        changes = self.properties.check_writable(rtype, object_body(request.body), current=obj)
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

    def action(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype, prop = route.rtype, route.prop
        assert prop is not None
        obj = self.tenant.get(rtype, params["id"])
        if rtype.is_read_only(obj):
            raise bad_request(f"Built-in {rtype.name} '{obj['id']}' cannot be modified.")
        body = object_body(request.body)
        if set(body) != {prop.name}:
            raise bad_request(f"The action takes exactly one parameter, '{prop.name}'.")
        previous = obj.get(prop.name)
        self.tenant.update(rtype, obj, {prop.name: body[prop.name]})
        result = hooks.action_result(previous, body[prop.name])
        return Reply(200, {"@odata.context": context_url(request, f"microsoft.graph.{prop.name}Result"), **result})
