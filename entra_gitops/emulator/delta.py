"""Delta queries: a full read or the changes since a token, each page ending in a nextLink or a deltaLink."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from entra_gitops.emulator.handlers import Reader
from entra_gitops.emulator.limits import sync_state_not_found
from entra_gitops.emulator.odata import Query
from entra_gitops.emulator.paging import listing
from entra_gitops.emulator.properties import is_link
from entra_gitops.emulator.protocol import Reply, Request, bad_request, context_url
from entra_gitops.emulator.routes import Route
from entra_gitops.model.registry import PropertySpec, ResourceType

DELTA_TOKEN_TTL_SECONDS = 7 * 24 * 3600


@dataclass
class Delta(Reader):
    """The delta handler; its tokens carry the change sequence they stop at and expire after `ttl_seconds`."""

    ttl_seconds: int

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
            # A token of another history (this emulator restarted, or another one) is one Graph no longer holds.
            if self.tenant.clock() - state["at"] > self.ttl_seconds or state.get("g") != self.tenant.generation:
                raise sync_state_not_found(f"{request.base_url}/{rtype.delta}")
            since, select = state["s"], tuple(state["sel"]) if state.get("sel") is not None else None
        self.properties.check_select(rtype, tuple(n for n in select or () if not is_link(rtype, n)))
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
        page, cursor, next_link = self.pager.page(request, effective, rows, {"since": since, "upto": upto})
        value = [
            self._delta_row(rtype, i, cursor.select, links, cursor.extra["since"], cursor.extra["upto"]) for i in page
        ]
        ended = None
        if not next_link:
            ended = {"@odata.deltaLink": self._delta_link(rtype, request, cursor.select, cursor.extra["upto"])}
        return Reply(200, listing(context_url(request, request.path), value, next_link, ended))

    def _delta_link(self, rtype: ResourceType, request: Request, select: tuple[str, ...] | None, seq: int) -> str:
        token = _encode_token(
            {
                "t": rtype.name,
                "s": seq,
                "at": self.tenant.clock(),
                "g": self.tenant.generation,
                "sel": list(select) if select is not None else None,
            }
        )
        return f"{request.base_url}/{rtype.delta}?$deltatoken={token}"

    def _delta_link_only(self, rtype: ResourceType, request: Request, select: tuple[str, ...] | None) -> Reply:
        link = {"@odata.deltaLink": self._delta_link(rtype, request, select, self.tenant.seq)}
        return Reply(200, listing(context_url(request, request.path), [], None, link))

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
        row = self.properties.shape(rtype, obj, select)
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
        return f"#{self.tenant.registry.get(name).odata_type}" if name else "#microsoft.graph.directoryObject"


def _encode_token(state: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_token(token: str) -> dict[str, Any] | None:
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        return None
    return state if isinstance(state, dict) and {"t", "s", "at"} <= state.keys() else None
