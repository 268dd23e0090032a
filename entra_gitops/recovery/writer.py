"""Sending a plan's writes to Graph: paced below Graph's write limit, batched, and looked up when in doubt."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from entra_gitops.graph.client import BatchRequest, GraphClient, GraphResponse
from entra_gitops.model.ids import fold_id, graph_path
from entra_gitops.model.progress import SILENT, Progress
from entra_gitops.model.registry import Registry, ResourceType
from entra_gitops.recovery.errors import PlanFileError
from entra_gitops.recovery.steps import LINK_STEPS, Step, Write

WRITES_PER_SECOND = 20.0


class Pacer:
    """Spaces writes `1 / rate` seconds apart; `on_wait` is told of each wait: its seconds, and which write waits."""

    def __init__(self, rate: float, on_wait: Callable[[float, str], None] | None = None) -> None:
        self.interval = 1.0 / rate
        self.next_write = 0.0
        self.on_wait = on_wait

    async def wait(self, which: str = "") -> None:
        # Graph allows 20 writes/s per app and tenant; pacing below it beats discovering it through 429s.
        delay = self.next_write - time.monotonic()
        if delay > 0:
            if self.on_wait is not None:
                self.on_wait(delay, which)
            await asyncio.sleep(delay)
        # Carry a late wake-up over (at most one interval), so timer overshoot does not lower the rate.
        self.next_write = max(self.next_write, time.monotonic() - self.interval) + self.interval


class Writer:
    """Sends writes through one client, and tells whether a write whose answer was lost took effect."""

    def __init__(
        self,
        client: GraphClient,
        registry: Registry,
        write_rate: float = WRITES_PER_SECOND,
        progress: Progress = SILENT,
    ) -> None:
        self.client = client
        self.registry = registry
        self.pacer = Pacer(
            write_rate,
            lambda seconds, which: progress.waiting(seconds, f"the write pace, {write_rate:g}/s{which}"),
        )

    def body(self, write: Write) -> Any:
        if write.step is Step.ADD_LINK and isinstance(write.body, dict):
            target = str(write.body["@odata.id"]).rsplit("/", 1)[-1]
            return {"@odata.id": f"{self.client.base_url}/directoryObjects/{target}"}
        return write.body

    def guard(self, write: Write) -> None:
        """The last line: nothing is ever purged from deleted items, whatever a step says."""
        if write.method == "DELETE" and "deleteditems" in write.path.lower():
            raise PlanFileError(f"refused {write.method} {write.path}: entra-gitops never purges deleted items")

    async def send(self, write: Write) -> int:
        """Send one write; returns Graph's status, or raises GraphError."""
        self.guard(write)
        rtype = self.registry.get(write.type_name)
        await self.pacer.wait()
        response = await self.client.send(write.method, write.path, body=self.body(write), scope=rtype.throttle_scope)
        return response.status

    async def send_batch(self, writes: list[Write]) -> list[GraphResponse]:
        """Several independent writes in one $batch call; each still counts against the write pace."""
        for number, write in enumerate(writes, 1):
            self.guard(write)
            await self.pacer.wait(f" (write {number} of {len(writes)} in this $batch)")
        requests = [BatchRequest(str(n), w.method, w.path, self.body(w)) for n, w in enumerate(writes)]
        answers = await self.client.batch(requests)
        return [answers[str(n)] for n in range(len(writes))]

    async def applied(self, write: Write) -> bool:
        """Whether a write whose answer was lost (or refused as redundant) took effect anyway."""
        rtype = self.registry.get(write.type_name)
        if write.step in (Step.UPDATE, Step.ACTION):
            return False  # resending is harmless: PATCH and these actions are idempotent
        if write.step in (Step.RESTORE, Step.SOFT_DELETE, Step.DELETE):
            return await self._found(write, rtype) == (write.step is Step.RESTORE)
        if write.step in LINK_STEPS:
            present = await self._linked(write, rtype)
            return present is not None and present == (write.step is Step.ADD_LINK)
        if write.step is Step.CREATE and isinstance(write.body, dict):
            return await self._exists(write, write.body, rtype)
        return False

    async def _found(self, write: Write, rtype: ResourceType) -> bool:
        # A restore's own path is an action; whether it worked shows at the object's item path.
        item = _live_path(write, rtype) if write.step is Step.RESTORE else write.path
        scope = rtype.throttle_scope
        found = await self.client.send("GET", item, params={"$select": "id"}, scope=scope, accept=frozenset({404}))
        return found.status == 200

    async def _linked(self, write: Write, rtype: ResourceType) -> bool | None:
        owner_prop = rtype.prop(write.link or "")
        if owner_prop is None or owner_prop.link is None:
            return None  # a link the schema does not list: it cannot be looked up
        members = await self.client.list_all(
            graph_path(owner_prop.link.list_path, id=write.object_id), {"$select": "id"}
        )
        return any(fold_id(str(m.get("id"))) == fold_id(write.target or "") for m in members)

    async def _exists(self, write: Write, body: dict[str, Any], rtype: ResourceType) -> bool:
        # Found by the properties Graph filters on (a grant's client and resource), so a re-creation never
        # duplicates one that exists already, whoever made it.
        terms = [f"{k} eq '{body[k]}'" for k in rtype.lookup_by if isinstance(body.get(k), str)]
        params = {"$filter": " and ".join(terms)} if terms else None
        existing = await self.client.list_all(write.path, params, scope=rtype.throttle_scope)
        keys = [k for k in body if k not in ("displayName",)]
        return any(all(_same_value(e.get(k), body[k]) for k in keys) for e in existing)


def _same_value(found: Any, wanted: Any) -> bool:
    """Graph's equality for a lookup: GUIDs without regard to case, empty the same as absent."""
    if isinstance(found, str) and isinstance(wanted, str):
        return fold_id(found) == fold_id(wanted)
    return found == wanted or (not found and not wanted)


def _live_path(write: Write, rtype: ResourceType) -> str:
    """Where a restored object lives again (its item path)."""
    if rtype.singleton_path:
        return rtype.singleton_path
    return graph_path(rtype.item or "", id=write.object_id)
