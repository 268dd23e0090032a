"""Singletons (the tenant-wide policies) and the keyed items inside them, such as a method's configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from entra_gitops.emulator.odata import Query
from entra_gitops.emulator.properties import Properties
from entra_gitops.emulator.protocol import Reply, Request, bad_request, context_url, not_found, object_body
from entra_gitops.emulator.routes import Route
from entra_gitops.emulator.store import Tenant
from entra_gitops.model.registry import ResourceType


@dataclass(frozen=True)
class Singletons:
    """The handlers of objects that exist once per tenant: read and update, never create or delete."""

    tenant: Tenant
    properties: Properties

    def _singleton(self, rtype: ResourceType) -> dict[str, Any]:
        obj = self.tenant.singletons.get(rtype.name)
        if obj is None:
            raise not_found(rtype.singleton_path or rtype.name)
        return obj

    def get_singleton(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype = route.rtype
        self.properties.check_select(rtype, query.select)
        shaped = self.properties.shape(rtype, self._singleton(rtype), query.select)
        return Reply(200, {"@odata.context": context_url(request, request.path + "/$entity"), **shaped})

    def patch_singleton(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype = route.rtype
        obj = self._singleton(rtype)
        changes = self.properties.check_writable(rtype, object_body(request.body), current=obj)
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
        return Reply(200, {"@odata.context": context_url(request, request.path), "value": list(items)})

    def get_singleton_item(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        _, _, item = self._singleton_item(route, params)
        return Reply(200, {"@odata.context": context_url(request, request.path + "/$entity"), **item})

    def patch_singleton_item(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype, owner, item = self._singleton_item(route, params)
        changes = object_body(request.body)
        if changes.get("@odata.type", item.get("@odata.type")) != item.get("@odata.type"):
            raise bad_request(f"The @odata.type '{changes['@odata.type']}' does not match the object's type.")
        for name in changes:
            if name not in item and name != "@odata.type":
                raise bad_request(f"Property '{name}' does not exist as a declared property or extension property.")
        item.update({k: v for k, v in changes.items() if k not in ("id", "@odata.type")})
        self.tenant.update(rtype, owner, {})
        return Reply(204)
