"""Sending a plan's writes to Graph: paced below Graph's write limit, batched, and looked up when in doubt."""

from __future__ import annotations

import asyncio
import secrets
import string
import time
from collections.abc import Callable
from typing import Any

from entra_gitops.graph.client import BatchRequest, GraphClient, GraphResponse
from entra_gitops.model.ids import fold_id, graph_path
from entra_gitops.model.progress import SILENT, Progress
from entra_gitops.model.registry import Registry, ResourceType
from entra_gitops.recovery.errors import PlanFileError
from entra_gitops.recovery.recreate import remap_write
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
        # Objects re-created with new ids: folded backup id -> the id Graph gave it (from the journal on a rerun).
        self.ids: dict[str, str] = {}
        # The other ids a re-creation changes: folded backup id -> {property: the backup's value} (an appId).
        self.renames: dict[str, dict[str, str]] = {}
        self.pacer = Pacer(
            write_rate,
            lambda seconds, which: progress.waiting(seconds, f"the write pace, {write_rate:g}/s{which}"),
        )

    def body(self, write: Write) -> Any:
        if write.step is Step.ADD_LINK and isinstance(write.body, dict):
            target = write.target or str(write.body["@odata.id"]).rsplit("/", 1)[-1]
            return {"@odata.id": f"{self.client.base_url}/directoryObjects/{graph_path('{t}', t=target)}"}
        spec = self.registry.get(write.type_name).recreate_as_new
        if write.step is Step.CREATE and spec is not None and spec.password and isinstance(write.body, dict):
            # Made as the request is sent, held by nothing else: no plan, journal, log or history has it.
            profile = {**write.body.get("passwordProfile", {}), "password": new_password()}
            return {**write.body, "passwordProfile": profile}
        return write.body

    def outgoing(self, write: Write) -> Write:
        """The write as it is sent: the new id wherever it names an object this plan re-created."""
        return remap_write(write, self.ids)

    def learn(self, write: Write, response: GraphResponse) -> None:
        """Keep the id Graph gave an object this plan re-created, from the create's answer."""
        if write.step is Step.CREATE and self.registry.get(write.type_name).recreate_as_new is not None:
            made = response.json()
            if isinstance(made, dict) and isinstance(made.get("id"), str):
                self.ids[fold_id(write.object_id)] = made["id"]
                for name, old in self.renames.get(fold_id(write.object_id), {}).items():
                    if isinstance(made.get(name), str):
                        self.ids[fold_id(old)] = made[name]

    def guard(self, write: Write) -> None:
        """The last line: nothing is ever purged from deleted items, whatever a step says."""
        if write.method == "DELETE" and "deleteditems" in write.path.lower():
            raise PlanFileError(f"refused {write.method} {write.path}: entra-gitops never purges deleted items")

    async def send(self, write: Write) -> int:
        """Send one write; returns Graph's status, or raises GraphError."""
        planned, write = write, self.outgoing(write)
        self.guard(write)
        rtype = self.registry.get(write.type_name)
        await self.pacer.wait()
        response = await self.client.send(write.method, write.path, body=self.body(write), scope=rtype.throttle_scope)
        self.learn(planned, response)
        return response.status

    async def send_batch(self, writes: list[Write]) -> list[GraphResponse]:
        """Several independent writes in one $batch call; each still counts against the write pace."""
        planned, writes = writes, [self.outgoing(w) for w in writes]
        for number, write in enumerate(writes, 1):
            self.guard(write)
            await self.pacer.wait(f" (write {number} of {len(writes)} in this $batch)")
        requests = [BatchRequest(str(n), w.method, w.path, self.body(w)) for n, w in enumerate(writes)]
        answers = await self.client.batch(requests)
        found = [answers[str(n)] for n in range(len(writes))]
        for write, answer in zip(planned, found, strict=True):
            if answer.status < 400:
                self.learn(write, answer)
        return found

    async def applied(self, write: Write) -> bool:
        """Whether a write whose answer was lost (or refused as redundant) took effect anyway."""
        rtype = self.registry.get(write.type_name)
        if write.step is Step.CREATE and rtype.recreate_as_new is not None:
            return await self._recreated(write, rtype)
        write = self.outgoing(write)
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

    async def _recreated(self, write: Write, rtype: ResourceType) -> bool:
        """Whether an earlier attempt at this re-creation made the object: found by its key (a UPN), then kept."""
        spec = rtype.recreate_as_new
        assert spec is not None and rtype.collection is not None
        body = self.outgoing(write).body  # a service principal of a re-created application: by its new appId
        value = body.get(spec.find_by) if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            return False
        quoted = value.replace("'", "''")  # OData's escape for a quote inside a string literal
        params = {"$filter": f"{spec.find_by} eq '{quoted}'", "$select": f"id,{spec.find_by}"}
        found = await self.client.list_all(rtype.collection, params, scope=rtype.throttle_scope)
        if len(found) != 1 or not isinstance(found[0].get("id"), str):
            return False
        self.ids[fold_id(write.object_id)] = found[0]["id"]
        renames = self.renames.get(fold_id(write.object_id), {})
        if renames:
            # Its other new ids (an application's appId) are read too: what names them is sent with them.
            item = graph_path(rtype.item or "", id=found[0]["id"])
            answer = await self.client.send(
                "GET", item, params={"$select": ",".join(renames)}, scope=rtype.throttle_scope
            )
            made = answer.json() or {}
            self.ids.update(
                {fold_id(old): made[name] for name, old in renames.items() if isinstance(made.get(name), str)}
            )
        return True


def new_password() -> str:
    """A password for a re-created user: 32 characters from every class Microsoft Entra's policy counts."""
    classes = (string.ascii_lowercase, string.ascii_uppercase, string.digits, "!#%+-.:=?@_~")
    chosen = [secrets.choice(c) for c in classes] + [secrets.choice("".join(classes)) for _ in range(28)]
    secrets.SystemRandom().shuffle(chosen)
    return "".join(chosen)


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
