"""Relationships: members, owners and the like through their $ref endpoints, and directoryObjects by id."""

from __future__ import annotations

from entra_gitops.emulator import hooks
from entra_gitops.emulator.handlers import Reader
from entra_gitops.emulator.odata import Query
from entra_gitops.emulator.paging import listing
from entra_gitops.emulator.protocol import (
    Reply,
    Request,
    bad_request,
    context_url,
    not_found,
    object_body,
    typed_entity,
)
from entra_gitops.emulator.routes import Route


class Links(Reader):
    """The handlers that list, add and remove the directory objects a relationship points at."""

    def list_links(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype, prop = route.rtype, route.prop
        assert prop is not None
        owner = self.tenant.get(rtype, params["id"])
        members = self.tenant.members((rtype.name, prop.name), owner["id"])
        page, cursor, next_link = self.pager.page(request, query, lambda: tuple(members))
        value = []
        for member_id in page:
            found = self.tenant.directory_object(member_id)
            if found is None:
                continue
            member_type, member = found
            shaped = self.properties.shape(member_type, member, cursor.select)
            value.append({"@odata.type": f"#{member_type.odata_type}", **shaped})
        return Reply(200, listing(context_url(request, "directoryObjects"), value, next_link))

    def _writable(self, route: Route, params: dict[str, str]) -> tuple[tuple[str, str], str]:
        """The relationship and its owner's id, once the owner's type allows writing it."""
        rtype, prop = route.rtype, route.prop
        assert prop is not None
        owner = self.tenant.get(rtype, params["id"])
        hooks.before_link_write(rtype, prop.name, owner)
        return (rtype.name, prop.name), owner["id"]

    def add_link(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        link, owner_id = self._writable(route, params)
        reference = object_body(request.body).get("@odata.id")
        if not isinstance(reference, str) or "/" not in reference:
            raise bad_request("The request body must contain '@odata.id' with the URL of a directory object.")
        member_id = reference.rstrip("/").rsplit("/", 1)[-1]
        found = self.tenant.directory_object(member_id)
        if found is None:
            raise not_found(member_id)
        hooks.before_member_add(route.rtype, link[1], self.tenant.get(route.rtype, owner_id), *found)
        self.tenant.add_link(link, owner_id, found[1]["id"])
        return Reply(204)

    def remove_link(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        link, owner_id = self._writable(route, params)
        member_id = params["linkId"]
        found = self.tenant.directory_object(member_id)
        self.tenant.remove_link(link, owner_id, found[1]["id"] if found else member_id)
        return Reply(204)

    def directory_object(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        found = self.tenant.directory_object(params["id"])
        if found is None:
            raise not_found(params["id"])
        rtype, obj = found
        shaped = self.properties.shape(rtype, obj, query.select)
        return Reply(200, typed_entity(request, "directoryObjects/$entity", rtype.odata_type, shaped))
