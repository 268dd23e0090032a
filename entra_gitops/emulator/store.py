"""The emulator's in-memory tenant: live and soft-deleted objects, links, a change log for delta, the audit log."""

from __future__ import annotations

import base64
import collections
import datetime as dt
import secrets
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from entra_gitops.emulator.protocol import GraphFault, bad_request, not_found, utc_now_text
from entra_gitops.model.ids import GUID
from entra_gitops.model.registry import Registry, ResourceType

TOP = ""  # parent key of top-level collections

LinkKey = tuple[str, str]  # (type name, link property)


@dataclass
class Deleted:
    """A soft-deleted object and the memberships it held, given back on restore."""

    obj: dict[str, Any]
    parent: str
    memberships: list[tuple[LinkKey, str]] = field(default_factory=list)
    own_links: dict[str, dict[str, None]] = field(default_factory=dict)
    dependents: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (type, parent, object)


# Graph keeps directory audit events 30 days for Entra ID P1/P2 tenants (7 for free ones); in memory, the newest
# 100,000 are enough for any test or demo, and bound what a long-running emulator holds.
AUDIT_RETENTION_DAYS = 30
AUDIT_CAP = 100_000


class AuditEntry(NamedTuple):
    """One directoryAudit event and when it happened (epoch seconds), in the order it was recorded."""

    at: float
    seq: int
    event: Mapping[str, Any]


class AuditTrail:
    """The directory audit log: bounded, oldest dropped first, and served only within its retention."""

    def __init__(self, cap: int = AUDIT_CAP, retention_days: float = AUDIT_RETENTION_DAYS) -> None:
        self.cap = cap
        self.retention_days = retention_days
        self.entries: collections.deque[AuditEntry] = collections.deque()
        self._seq = 0

    def add(self, at: float, event: Mapping[str, Any]) -> None:
        self._seq += 1
        self.entries.append(AuditEntry(at, self._seq, event))
        while len(self.entries) > max(0, self.cap):
            self.entries.popleft()

    def served(self, now: float) -> list[AuditEntry]:
        """The events within retention at `now`, newest first (Graph's order for directoryAudits)."""
        oldest = now - self.retention_days * 86400
        return sorted((e for e in self.entries if e.at >= oldest), key=lambda e: (e.at, e.seq), reverse=True)


def opaque_id() -> str:
    """An id shaped like Graph's app role assignment and grant ids: 43 base64url characters."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


class Tenant:
    """All state of one emulated tenant; every mutation goes through here and is logged for delta."""

    def __init__(self, registry: Registry, tenant_id: str, clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.tenant_id = tenant_id
        self.clock = clock
        # The history delta tokens count in: another emulator, even of the same seed, has another one.
        self.generation = secrets.token_hex(8)
        self.live: dict[str, dict[str, dict[str, dict[str, Any]]]] = {t.name: {} for t in registry}
        self.deleted: dict[str, dict[str, Deleted]] = {t.name: {} for t in registry}
        self.singletons: dict[str, dict[str, Any]] = {}
        self.links: dict[LinkKey, dict[str, dict[str, None]]] = {
            (t.name, p.name): {} for t in registry for p in t.links
        }
        self.directory: dict[str, str] = {}
        # The password each user was last given, as Graph keeps it: never served, but a test can then prove that
        # nothing else (a plan, a journal, a log) holds it.
        self.passwords: dict[str, str] = {}
        # Applications registered in other tenants (Microsoft's, a vendor's) that this tenant has a service
        # principal of: appId -> that principal's app fields. Graph can make a principal of one again by appId.
        self.external_apps: dict[str, dict[str, Any]] = {}
        self.seq = 0
        self.changes: dict[str, dict[str, int]] = {t.name: {} for t in registry}
        self.link_changes: dict[LinkKey, dict[str, dict[str, tuple[int, bool]]]] = {k: {} for k in self.links}
        self.audit = AuditTrail()

    # -- reading ------------------------------------------------------------------------------

    def now_text(self) -> str:
        return utc_now_text(dt.datetime.fromtimestamp(self.clock(), dt.UTC))

    def objects(self, rtype: ResourceType, parent: str = TOP) -> dict[str, dict[str, Any]]:
        return self.live[rtype.name].setdefault(parent, {})

    def all_objects(self, rtype: ResourceType) -> Iterator[dict[str, Any]]:
        for bucket in self.live[rtype.name].values():
            yield from bucket.values()

    def count(self, rtype: ResourceType) -> int:
        return sum(len(b) for b in self.live[rtype.name].values())

    def find(self, rtype: ResourceType, object_id: str, parent: str = TOP) -> dict[str, Any] | None:
        bucket = self.objects(rtype, parent)
        found = bucket.get(object_id)
        if found is None and GUID.match(object_id):
            found = bucket.get(object_id.lower())
        return found

    def get(self, rtype: ResourceType, object_id: str, parent: str = TOP) -> dict[str, Any]:
        found = self.find(rtype, object_id, parent)
        if found is None:
            raise not_found(object_id)
        return found

    def find_by(self, rtype: ResourceType, key: str, value: str) -> dict[str, Any] | None:
        folded = value.lower()
        return next((o for o in self.all_objects(rtype) if str(o.get(key, "")).lower() == folded), None)

    def directory_object(self, object_id: str) -> tuple[ResourceType, dict[str, Any]] | None:
        name = self.directory.get(object_id) or self.directory.get(object_id.lower())
        if name is None:
            return None
        rtype = self.registry.get(name)
        return rtype, self.get(rtype, object_id)

    def members(self, key: LinkKey, parent_id: str) -> dict[str, None]:
        return self.links[key].setdefault(parent_id, {})

    # -- change log ---------------------------------------------------------------------------

    def _touch(self, rtype: ResourceType, object_id: str) -> None:
        self.seq += 1
        self.changes[rtype.name][object_id] = self.seq

    def _touch_link(self, key: LinkKey, parent_id: str, member_id: str, present: bool) -> None:
        self.seq += 1
        self.link_changes[key].setdefault(parent_id, {})[member_id] = (self.seq, present)

    # -- writing ------------------------------------------------------------------------------

    def _generate(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        for name, kind in rtype.server_generated.items():
            if name == "id" and obj.get("id") and kind == "opaque":
                continue  # a hook derived it, as Graph derives relationship ids (graph_ids.py)
            if kind == "uuid":
                obj[name] = str(uuid.uuid4())
            elif kind == "opaque":
                obj[name] = opaque_id()
            elif kind == "now":
                obj[name] = self.now_text()
        if "id" not in rtype.server_generated:
            obj.setdefault("id", str(uuid.uuid4()))

    def insert(self, rtype: ResourceType, obj: dict[str, Any], parent: str = TOP) -> dict[str, Any]:
        """Store an object as given (seeding); its id must be new."""
        object_id = obj.get("id")
        if not isinstance(object_id, str) or not object_id:
            raise bad_request(f"a {rtype.name} needs a string id")
        bucket = self.objects(rtype, parent)
        if object_id in bucket or object_id in self.deleted[rtype.name]:
            raise GraphFault(
                400, "Request_MultipleObjectsWithSameKeyValue", f"Another object with id '{object_id}' already exists."
            )
        bucket[object_id] = obj
        if rtype.is_directory_object:
            self.directory[object_id] = rtype.name
        owner = obj.get("appOwnerOrganizationId")
        if rtype.name == "servicePrincipal" and isinstance(owner, str) and owner.lower() != self.tenant_id.lower():
            fields = ("appDisplayName", "appOwnerOrganizationId", "displayName", "signInAudience")
            self.external_apps.setdefault(str(obj.get("appId", "")).lower(), {k: obj[k] for k in fields if k in obj})
        self._touch(rtype, object_id)
        return obj

    def create(self, rtype: ResourceType, body: Mapping[str, Any], parent: str = TOP) -> dict[str, Any]:
        """Create an object the way Graph does: server-owned fields are the server's."""
        obj = {k: v for k, v in body.items() if k != "passwordProfile"}  # write-only: never served back
        self._generate(rtype, obj)
        made = self.insert(rtype, obj, parent)
        profile = body.get("passwordProfile")
        if isinstance(profile, Mapping) and isinstance(profile.get("password"), str):
            self.passwords[made["id"]] = profile["password"]
        return made

    def last_password(self, object_id: str) -> str | None:
        """The password a user was last created with (for tests: Graph never serves it)."""
        return self.passwords.get(object_id)

    def update(self, rtype: ResourceType, obj: dict[str, Any], changes: Mapping[str, Any]) -> None:
        for name, value in changes.items():
            if name == "passwordProfile":
                continue
            obj[name] = value
        self._touch(rtype, obj["id"])

    def set_singleton(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        self.singletons[rtype.name] = obj
        self._touch(rtype, obj.get("id", rtype.name))

    def delete(self, rtype: ResourceType, object_id: str, parent: str = TOP) -> None:
        """DELETE on an item: soft delete where the type has it, otherwise gone for good."""
        obj = self.get(rtype, object_id, parent)
        object_id = obj["id"]
        del self.objects(rtype, parent)[object_id]
        self.directory.pop(object_id, None)
        if rtype.soft_delete is not None:
            record = Deleted(obj=obj, parent=parent)
            obj["deletedDateTime"] = self.now_text()
            for name, how in rtype.soft_delete.renames.items():
                # Graph frees a deleted user's sign-in name by prefixing its id (no dashes); restore undoes it.
                if how == "idPrefix" and isinstance(obj.get(name), str):
                    prefix = object_id.replace("-", "")
                    if not obj[name].lower().startswith(prefix.lower()):
                        obj[name] = prefix + obj[name]
            for key, groups in self.links.items():
                for group_id, members in groups.items():
                    if object_id in members:
                        del members[object_id]
                        self._touch_link(key, group_id, object_id, present=False)
                        record.memberships.append((key, group_id))
            for prop in rtype.links:
                record.own_links[prop.name] = self.links[(rtype.name, prop.name)].pop(object_id, {})
            record.dependents = self._take_dependents(rtype, object_id)
            self.deleted[rtype.name][object_id] = record
        else:
            for prop in rtype.links:
                self.links[(rtype.name, prop.name)].pop(object_id, None)
        self._touch(rtype, object_id)

    def find_deleted(self, rtypes: tuple[ResourceType, ...], object_id: str) -> tuple[ResourceType, Deleted]:
        for rtype in rtypes:
            bucket = self.deleted[rtype.name]
            record = bucket.get(object_id) or (bucket.get(object_id.lower()) if GUID.match(object_id) else None)
            if record is not None:
                return rtype, record
        raise not_found(object_id)

    def restore(self, rtype: ResourceType, object_id: str, changes: Mapping[str, Any] | None = None) -> dict[str, Any]:
        record = self.deleted[rtype.name].pop(object_id)
        obj = record.obj
        obj.pop("deletedDateTime", None)
        if rtype.soft_delete is not None:
            for name in rtype.soft_delete.renames:
                obj[name] = rtype.soft_delete.original(name, object_id, obj.get(name))
        obj.update(changes or {})
        self.objects(rtype, record.parent)[object_id] = obj
        if rtype.is_directory_object:
            self.directory[object_id] = rtype.name
        for key, group_id in record.memberships:
            if self.directory.get(group_id) or self._is_live_parent(key, group_id):
                self.members(key, group_id)[object_id] = None
                self._touch_link(key, group_id, object_id, present=True)
        for name, members in record.own_links.items():
            live = {m: None for m in members if m in self.directory}
            self.links[(rtype.name, name)][object_id] = live
        for type_name, parent, dependent in record.dependents:
            dependent_type = self.registry.get(type_name)
            self.objects(dependent_type, parent).setdefault(dependent["id"], dependent)
            self._touch(dependent_type, dependent["id"])
        self._touch(rtype, object_id)
        return obj

    def _take_dependents(self, rtype: ResourceType, object_id: str) -> list[tuple[str, str, dict[str, Any]]]:
        """The relationships that leave with a deleted object (softDelete.takesWith: a service principal's app role
        assignments and grants, which Microsoft documents as recovered with it): out of the tenant, kept for its
        restore."""
        assert rtype.soft_delete is not None
        taken: list[tuple[str, str, dict[str, Any]]] = []
        for name in rtype.soft_delete.takes_with:
            dependent_type = self.registry.get(name)
            fields = [p.name for p in dependent_type.references if p.link is None]
            if dependent_type.parent is not None:
                fields.append(dependent_type.parent.param)
            for parent, bucket in self.live[name].items():
                for dependent_id, dependent in list(bucket.items()):
                    if parent == object_id or any(dependent.get(f) == object_id for f in fields):
                        del bucket[dependent_id]
                        self._touch(dependent_type, dependent_id)
                        taken.append((name, parent, dependent))
        return taken

    def _is_live_parent(self, key: LinkKey, parent_id: str) -> bool:
        rtype = self.registry.get(key[0])
        return self.find(rtype, parent_id) is not None

    def purge(self, rtype: ResourceType, object_id: str) -> None:
        del self.deleted[rtype.name][object_id]
        self._touch(rtype, object_id)

    def add_link(self, key: LinkKey, parent_id: str, member_id: str) -> None:
        members = self.members(key, parent_id)
        if member_id in members:
            raise bad_request(
                f"One or more added object references already exist for the following modified properties: '{key[1]}'."
            )
        members[member_id] = None
        self._touch_link(key, parent_id, member_id, present=True)

    def remove_link(self, key: LinkKey, parent_id: str, member_id: str) -> None:
        members = self.members(key, parent_id)
        if member_id not in members:
            raise not_found(member_id)
        del members[member_id]
        self._touch_link(key, parent_id, member_id, present=False)
