"""Soft delete: directory/deletedItems listed, read, purged for good or restored."""

from __future__ import annotations

from entra_gitops.emulator import hooks
from entra_gitops.emulator.handlers import Reader
from entra_gitops.emulator.odata import Query
from entra_gitops.emulator.paging import listing
from entra_gitops.emulator.protocol import Reply, Request, context_url, object_body, typed_entity
from entra_gitops.emulator.routes import Route


class Deleted(Reader):
    """The handlers of the deleted items a type keeps (users, groups, apps, ...) until they are purged."""

    def list_deleted(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype = route.rtype
        bucket = self.tenant.deleted[rtype.name]
        self.properties.check_select(rtype, tuple(n for n in query.select or () if n != "deletedDateTime"))

        def ids() -> tuple[str, ...]:
            return tuple(k for k, r in bucket.items() if query.filter is None or query.filter(r.obj))

        page, cursor, next_link = self.pager.page(request, query, ids)
        value = []
        for object_id in page:
            if object_id in bucket:
                obj = bucket[object_id].obj
                shaped = self.properties.shape(rtype, obj, cursor.select)
                if cursor.select is None:
                    shaped["deletedDateTime"] = obj.get("deletedDateTime")
                value.append({"@odata.type": f"#{rtype.odata_type}", **shaped})
        return Reply(200, listing(context_url(request, request.path), value, next_link))

    def get_deleted(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype, record = self.tenant.find_deleted(route.types, params["id"])
        shaped = self.properties.shape(rtype, record.obj, query.select)
        return Reply(200, typed_entity(request, "directory/deletedItems/$entity", rtype.odata_type, shaped))

    def purge_deleted(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype, record = self.tenant.find_deleted(route.types, params["id"])
        self.tenant.purge(rtype, record.obj["id"])
        return Reply(204)

    def restore(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        rtype, record = self.tenant.find_deleted(route.types, params["id"])
        body = object_body(request.body) if request.body is not None else {}
        hooks.before_restore(self.tenant, rtype, record.obj, body)
        renamed = {"userPrincipalName": body["newUserPrincipalName"]} if body.get("newUserPrincipalName") else None
        obj = self.tenant.restore(rtype, record.obj["id"], renamed)
        return Reply(200, typed_entity(request, "directoryObjects/$entity", rtype.odata_type, obj))
