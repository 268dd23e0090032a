"""The recovery plan: the ordered Graph writes that bring live objects back to a backup (pure).

A plan is bound to what was reviewed: it records, for every object it touches, a fingerprint of the
object as it was live when planned, and a checksum over the whole plan. `apply` executes exactly
these writes, refusing objects whose fingerprint moved.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from entra_gitops.diff import BLOCKER_TEXT, Action, Blocker, DifferenceReport, ObjectChange, ReportScope
from entra_gitops.normalize import REDACTED
from entra_gitops.registry import PropertySpec, Registry, ResourceType, thaw
from entra_gitops.state import ObjectState, TenantState

PLAN_FORMAT = "entra-gitops.plan/1"
ABSENT = "absent"


class Step(enum.Enum):
    """One kind of write, in the order a plan runs them: objects exist before anything links to them."""

    RESTORE = "restore"
    CREATE = "create"
    UPDATE = "update"
    ACTION = "action"
    ADD_LINK = "addLink"
    REMOVE_LINK = "removeLink"
    SOFT_DELETE = "softDelete"
    DELETE = "delete"


STEP_ORDER = {step: rank for rank, step in enumerate(Step)}


@dataclass(frozen=True)
class Write:
    """One Graph request of a plan, with the object it is for and what it changes."""

    step: Step
    type_name: str
    object_id: str
    display: str | None
    method: str
    path: str
    body: Any
    changes: tuple[tuple[str, Any, Any], ...] = ()  # (property, now, after the write)
    fingerprint: str = ABSENT


@dataclass(frozen=True)
class Skipped:
    """A difference the plan will not write, and why."""

    type_name: str
    object_id: str
    display: str | None
    reason: str


@dataclass(frozen=True)
class Plan:
    """Everything apply needs and nothing it may decide on its own."""

    tool: str
    tenant: str | None
    backup: str
    backup_commit: str
    scope: ReportScope
    writes: tuple[Write, ...]
    skipped: tuple[Skipped, ...] = ()
    created: str = ""
    checksum: str = field(default="", compare=False)

    @property
    def empty(self) -> bool:
        return not self.writes


def fingerprint(obj: ObjectState | None) -> str:
    """A digest of an object's lifecycle and in-scope data; `absent` for an object that is not there."""
    if obj is None:
        return ABSENT
    text = json.dumps({"lifecycle": obj.lifecycle.value, "data": thaw(obj.data)}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def holds_redaction(value: Any) -> bool:
    """True when a backup value is (or holds) the marker a snapshot wrote instead of a secret: never write it."""
    if isinstance(value, str):
        return value == REDACTED
    if isinstance(value, Mapping):
        return any(holds_redaction(v) for v in value.values())
    if isinstance(value, tuple | list):
        return any(holds_redaction(v) for v in value)
    return False


def _item_path(rtype: ResourceType, obj: ObjectState) -> str:
    if rtype.singleton_path:
        return rtype.singleton_path
    assert rtype.item is not None
    params = {"id": obj.id}
    if rtype.parent is not None:
        params[rtype.parent.param] = str(obj.data.get(rtype.parent.param, ""))
    return rtype.item.format(**params)


def _unset(prop: PropertySpec) -> Any:
    """What PATCH sends to clear a property the backup did not have."""
    return [] if prop.is_array else None


def _recoverable_items(prop: PropertySpec, items: Any) -> dict[str, Mapping[str, Any]]:
    keyed = {str(i.get(prop.item_key)): i for i in items or () if isinstance(i, Mapping)}
    if prop.recover_items is None:
        return keyed
    return {k: v for k, v in keyed.items() if k in prop.recover_items}


class _Planner:
    """Turns one report into writes, looking values up in the backup and current states."""

    def __init__(self, registry: Registry, backup: TenantState, current: TenantState, base_ref: str) -> None:
        self.registry = registry
        self.backup = backup
        self.current = current
        self.base_ref = base_ref
        self.writes: list[Write] = []
        self.skipped: list[Skipped] = []

    def write(
        self,
        change: ObjectChange,
        step: Step,
        method: str,
        path: str,
        body: Any = None,
        changes: tuple[tuple[str, Any, Any], ...] = (),
    ) -> None:
        live = self.current.get(change.type_name, change.id)
        self.writes.append(
            Write(
                step, change.type_name, change.id, change.display_name, method, path, body, changes, fingerprint(live)
            )
        )

    def skip(self, change: ObjectChange, reason: str) -> None:
        self.skipped.append(Skipped(change.type_name, change.id, change.display_name, reason))

    def plan(self, change: ObjectChange) -> None:
        rtype = self.registry.get(change.type_name)
        was = self.backup.get(change.type_name, change.id)
        now = self.current.get(change.type_name, change.id)
        if change.action is Action.NONE:
            if rtype.recreate and was is not None and now is None:
                self.recreate(change, rtype, was)
            else:
                self.skip(change, change_reason(change))
            return
        if change.action is Action.RESTORE:
            assert rtype.soft_delete is not None and now is not None
            self.write(change, Step.RESTORE, "POST", rtype.soft_delete.restore_path.format(id=change.id))
            self.update(change, rtype, was, now)
        elif change.action is Action.SOFT_DELETE:
            assert now is not None
            self.write(change, Step.SOFT_DELETE, "DELETE", _item_path(rtype, now))
        elif change.action is Action.DELETE:
            assert now is not None
            if rtype.recreate:
                self.write(change, Step.DELETE, "DELETE", _item_path(rtype, now))
            else:
                self.skip(
                    change,
                    "created after the backup, and this type has no soft delete: entra-gitops never "
                    "deletes permanently; delete it by hand if that is intended",
                )
        elif change.action is Action.UPDATE:
            assert was is not None and now is not None
            self.update(change, rtype, was, now)

    def recreate(self, change: ObjectChange, rtype: ResourceType, was: ObjectState) -> None:
        """App role assignments and grants have no soft delete: recovery creates them again (a new id)."""
        assert rtype.collection is not None
        params = {rtype.parent.param: str(was.data.get(rtype.parent.param))} if rtype.parent else {}
        body = {k: thaw(v) for k, v in was.data.items() if k not in rtype.server_generated and k != "id"}
        if rtype.recover_when and not all(was.data.get(k) == v for k, v in rtype.recover_when.items()):
            self.skip(change, "outside the recovery scope (for example a user-consented grant)")
            return
        self.write(change, Step.CREATE, "POST", rtype.collection.format(**params), body)

    def update(self, change: ObjectChange, rtype: ResourceType, was: ObjectState | None, now: ObjectState) -> None:
        if was is None:
            return
        path = _item_path(rtype, now)
        body: dict[str, Any] = {}
        diffs: list[tuple[str, Any, Any]] = []
        for prop in change.properties:
            spec = rtype.prop(prop.name)
            if not prop.recoverable or spec is None:
                continue
            if holds_redaction(prop.before):
                self.skip(change, f"{prop.name}: the backup holds a redacted value (it looked like a secret)")
                continue
            if spec.write_action:
                value = thaw(prop.before) if prop.before is not None else _unset(spec)
                self.write(
                    change,
                    Step.ACTION,
                    "POST",
                    spec.write_action.format(id=change.id),
                    {spec.name: value},
                    ((spec.name, thaw(prop.after), value),),
                )
            elif spec.item_key and rtype.singleton_path:
                self.keyed_items(change, rtype, spec, prop.before, prop.after)
            else:
                value = thaw(prop.before) if prop.before is not None else _unset(spec)
                body[spec.name] = value
                diffs.append((spec.name, thaw(prop.after), value))
        if body:
            if rtype.subtypes:
                body = {"@odata.type": now.data.get("@odata.type"), **body}
            self.write(change, Step.UPDATE, "PATCH", path, body, tuple(diffs))
        for link in change.links:
            spec = rtype.prop(link.name)
            if link.blocker is not None or spec is None or spec.link is None:
                continue
            for target in link.added:
                self.write(
                    change,
                    Step.REMOVE_LINK,
                    "DELETE",
                    spec.link.remove_path.format(id=change.id, linkId=target),
                    None,
                    ((link.name, target, None),),
                )
            for target in link.removed:
                reference = {"@odata.id": f"{self.base_ref}/directoryObjects/{target}"}
                self.write(
                    change,
                    Step.ADD_LINK,
                    "POST",
                    spec.link.add_path.format(id=change.id),
                    reference,
                    ((link.name, None, target),),
                )

    def keyed_items(
        self, change: ObjectChange, rtype: ResourceType, spec: PropertySpec, before: Any, after: Any
    ) -> None:
        """A singleton's keyed configurations (authentication methods) are patched one by one."""
        assert rtype.singleton_path is not None and spec.item_key is not None
        old, new = _recoverable_items(spec, before), _recoverable_items(spec, after)
        for key, item in old.items():
            if thaw(item) == thaw(new.get(key)):
                continue
            body = {k: thaw(v) for k, v in item.items() if k != spec.item_key}
            path = f"{rtype.singleton_path}/{spec.name}/{key}"
            self.write(
                change, Step.UPDATE, "PATCH", path, body, ((f"{spec.name}[{key}]", thaw(new.get(key)), thaw(item)),)
            )


def change_reason(change: ObjectChange) -> str:
    """Why an object's differences are not written, in words."""
    if change.blocker is not None:
        return BLOCKER_TEXT[change.blocker]
    blockers = {p.blocker for p in change.properties if p.blocker} | {
        link.blocker for link in change.links if link.blocker
    }
    return (
        "; ".join(sorted(BLOCKER_TEXT[b] for b in blockers if isinstance(b, Blocker))) or "nothing recoverable differs"
    )


def build_plan(
    registry: Registry,
    report: DifferenceReport,
    backup: TenantState,
    current: TenantState,
    *,
    tool: str,
    tenant: str | None,
    backup_commit: str,
    created: str,
    graph_base: str = "https://graph.microsoft.com/v1.0",
) -> Plan:
    """The writes that undo `report`'s recoverable changes, ordered restores-first, deletes-last."""
    planner = _Planner(registry, backup, current, graph_base)
    for change in report.changes:
        planner.plan(change)
    writes = tuple(sorted(planner.writes, key=lambda w: STEP_ORDER[w.step]))
    plan = Plan(tool, tenant, report.backup, backup_commit, report.scope, writes, tuple(planner.skipped), created)
    return with_checksum(plan)


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan as the JSON a plan file holds (checksum included when set)."""
    document: dict[str, Any] = {
        "format": PLAN_FORMAT,
        "tool": plan.tool,
        "tenant": plan.tenant,
        "backup": {"tag": plan.backup, "commit": plan.backup_commit},
        "scope": {"types": list(plan.scope.types), "ids": list(plan.scope.ids)},
        "created": plan.created,
        "writes": [
            {
                "step": w.step.value,
                "type": w.type_name,
                "id": w.object_id,
                "displayName": w.display,
                "method": w.method,
                "path": w.path,
                "body": w.body,
                "changes": [{"name": n, "now": a, "after": b} for n, a, b in w.changes],
                "fingerprint": w.fingerprint,
            }
            for w in plan.writes
        ],
        "skipped": [
            {"type": s.type_name, "id": s.object_id, "displayName": s.display, "reason": s.reason} for s in plan.skipped
        ],
    }
    if plan.checksum:
        document["checksum"] = plan.checksum
    return document


def compute_checksum(document: Mapping[str, Any]) -> str:
    """sha256 over the plan's canonical JSON, without its checksum."""
    content = {k: v for k, v in document.items() if k != "checksum"}
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def with_checksum(plan: Plan) -> Plan:
    return Plan(**{**plan.__dict__, "checksum": compute_checksum(plan_document(plan))})


def plan_from_document(document: Mapping[str, Any]) -> Plan:
    """A Plan back from its file's JSON (the caller verifies the checksum first)."""
    writes = tuple(
        Write(
            Step(w["step"]),
            w["type"],
            w["id"],
            w.get("displayName"),
            w["method"],
            w["path"],
            w.get("body"),
            tuple((c["name"], c.get("now"), c.get("after")) for c in w.get("changes", ())),
            w.get("fingerprint", ABSENT),
        )
        for w in document["writes"]
    )
    skipped = tuple(Skipped(s["type"], s["id"], s.get("displayName"), s["reason"]) for s in document.get("skipped", ()))
    scope = ReportScope(tuple(document["scope"]["types"]), tuple(document["scope"]["ids"]))
    return Plan(
        document["tool"],
        document.get("tenant"),
        document["backup"]["tag"],
        document["backup"]["commit"],
        scope,
        writes,
        skipped,
        document.get("created", ""),
        document.get("checksum", ""),
    )
