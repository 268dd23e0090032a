"""The recovery plan: the ordered steps that bring live objects back to a source (a backup or reviewed files) (pure).

A plan is bound to what was reviewed: it records, for every object it touches, a fingerprint of the
object as it was live when planned, and a checksum over the whole plan. Each step names its kind,
type, object and property changes; the Graph request is derived from those (steps.py), and `apply`
derives it again and checks the step against the source before anything is sent.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from entra_gitops.model.attribution import By, by_document, by_from_document
from entra_gitops.model.frozen import thaw
from entra_gitops.model.ids import fold_id
from entra_gitops.model.references import object_references
from entra_gitops.model.registry import PropertySpec, Registry, ResourceType, Scope
from entra_gitops.model.tenant import Lifecycle, ObjectState, SourceKind, TenantState
from entra_gitops.recovery.recreate import changing_ids, dependencies_first
from entra_gitops.recovery.simulate import after_plan
from entra_gitops.recovery.steps import (
    IRREVERSIBLE,
    STEP_ORDER,
    Request,
    Step,
    StepError,
    Write,
    derive_request,
    keyed_item,
    target_value,
)
from entra_gitops.report.diff import (
    BLOCKER_TEXT,
    Action,
    Blocker,
    ChangeKind,
    DifferenceReport,
    ObjectChange,
    ReportScope,
    property_blocker,
    referenced_ids,
)
from entra_gitops.state.normalize import REDACTED

PLAN_FORMAT = "entra-gitops.plan/2"
ABSENT = "absent"


@dataclass(frozen=True)
class PlanOptions:
    """Choices made when planning that change what the plan may contain; recorded in it, shown to reviewers."""

    allow_delete: bool = False
    allow_empty: tuple[str, ...] = ()
    recreate: bool = False  # objects gone from Graph are created again from the source, with new ids


@dataclass(frozen=True)
class ProtectedObject:
    """An object no write may touch without --force, as an id resolved when the plan was made."""

    type_name: str
    object_id: str
    label: str
    via: str  # how the setting named it, in words


class Guard(enum.Enum):
    """Which guard refused, and so which flag overrides it."""

    THRESHOLD = "threshold"
    EMPTIED = "emptied"
    PROTECTED = "protected"
    MISSING_TYPE = "missingType"
    LOCKOUT = "lockout"


OVERRIDES = {
    Guard.THRESHOLD: "--force",
    Guard.EMPTIED: "--force",
    Guard.PROTECTED: "--force",
    Guard.MISSING_TYPE: "--allow-empty",
    Guard.LOCKOUT: "--allow-lockout",
}


@dataclass(frozen=True)
class Refusal:
    """One reason a plan is refused as unsafe, and the flag that takes it anyway (the guards are in safety.py)."""

    guard: Guard
    type_name: str
    object_id: str | None
    message: str

    @property
    def override(self) -> str:
        flag = OVERRIDES[self.guard]
        return f"{flag} {self.type_name}" if self.guard is Guard.MISSING_TYPE else flag


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
    backup: str  # the source's label: a backup tag, or the reference given to --desired
    backup_commit: str
    scope: ReportScope
    writes: tuple[Write, ...]
    skipped: tuple[Skipped, ...] = ()
    created: str = ""
    checksum: str = field(default="", compare=False)
    kind: SourceKind = SourceKind.BACKUP
    options: PlanOptions = PlanOptions()
    protected: tuple[ProtectedObject, ...] = ()
    break_glass: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    # What the guards refused when the plan was made (an override takes each): recorded for reviewers and
    # `show`; apply never trusts it and runs every guard again.
    refusals: tuple[Refusal, ...] = ()
    # Who changed each object since the source, from the audit log: for reviewers only, never for a decision.
    changed_by: tuple[tuple[str, str, By], ...] = ()  # (type, id, changedBy)

    @property
    def empty(self) -> bool:
        return not self.writes

    def by(self, type_name: str, object_id: str) -> By | None:
        """Who changed the object, as recorded when the plan was made; None when the audit log was not asked."""
        return next((b for t, i, b in self.changed_by if t == type_name and i == object_id), None)

    @property
    def types(self) -> tuple[str, ...]:
        """The types the plan writes, sorted."""
        return tuple(sorted({w.type_name for w in self.writes}))


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


def _recoverable_items(prop: PropertySpec, items: Any) -> dict[str, Mapping[str, Any]]:
    keyed = {str(i.get(prop.item_key)): i for i in items or () if isinstance(i, Mapping)}
    if prop.recover_items is None:
        return keyed
    return {k: v for k, v in keyed.items() if k in prop.recover_items}


def change_reason(change: ObjectChange) -> str:
    """Why an object's differences are not written, in words."""
    if change.blocker is not None:
        return change.reason or BLOCKER_TEXT[change.blocker]
    blockers = {p.blocker for p in change.properties if p.blocker} | {
        link.blocker for link in change.links if link.blocker
    }
    return (
        "; ".join(sorted(BLOCKER_TEXT[b] for b in blockers if isinstance(b, Blocker))) or "nothing recoverable differs"
    )


class _Planner:
    """Turns one report into steps, looking values up in the source and live states."""

    def __init__(self, registry: Registry, source: TenantState, live: TenantState, options: PlanOptions) -> None:
        self.registry = registry
        self.source = source
        self.live = live
        self.options = options
        self.writes: list[Write] = []
        self.first: list[Write] = []  # soft-deletes that free a unique key a restore needs: they run first
        self.skipped: list[Skipped] = []
        self.freeing: set[tuple[str, str]] = set()  # holders of a key a restore needs
        self.recreated: dict[str, str] = {}  # folded backup id -> type, of the objects created again (--recreate)
        self.changing: set[str] = set()  # their other ids that change with them (an application's appId)
        self._holders: dict[tuple[str, str], dict[str, list[ObjectState]]] = {}

    def write(
        self,
        change: ObjectChange,
        step: Step,
        changes: tuple[tuple[str, Any, Any], ...] = (),
        *,
        link: str | None = None,
        target: str | None = None,
        item: str | None = None,
        first: bool = False,
    ) -> None:
        was = self.source.get(change.type_name, change.id)
        now = self.live.get(change.type_name, change.id)
        draft = Write(
            step, change.type_name, change.id, change.display_name, Request("", ""), changes, fingerprint(now), link,
            target, item,
        )  # fmt: skip
        try:
            request = derive_request(self.registry, draft, was, now)
        except StepError as err:
            self.skip(change, f"cannot be written: {err}")
            return
        missing = self.missing_references(change.type_name, request.body)
        if missing:
            self.skip(
                change,
                f"not written: it names {missing}, which no longer exists, and Graph refuses a write "
                "naming an object that does not exist; restore that object first, or plan from files without it",
            )
            return
        (self.first if first else self.writes).append(replace(draft, request=request))

    def missing_references(self, type_name: str, body: Any) -> str | None:
        """The first object a write names that neither exists live nor comes back with this plan, in words.

        Conditional Access keeps the ids of users and groups deleted since, but refuses a write that names
        one (staleReferences): recovery reports it now rather than failing half way through the apply.
        """
        rtype = self.registry.get(type_name)
        if not rtype.stale_references or not isinstance(body, Mapping):
            return None
        restoring = {w.key for w in self.writes if w.step is Step.RESTORE}
        for reference in object_references(rtype, body):
            target = fold_id(reference.target)
            if any(
                name not in self.live.types
                or (found := self.live.get(name, target)) is not None
                and found.lifecycle is Lifecycle.ACTIVE
                or (name, target) in restoring
                or self.recreated.get(target) == name
                for name in reference.types
            ):
                continue
            return f"{' or '.join(reference.types)} {reference.target} ({reference.path})"
        return None

    def skip(self, change: ObjectChange, reason: str) -> None:
        self.skipped.append(Skipped(change.type_name, change.id, change.display_name, reason))

    def holders(self, rtype: ResourceType, key: str, value: str) -> list[ObjectState]:
        """Live objects of `rtype` whose unique key `key` is `value` (folded)."""
        index = self._holders.get((rtype.name, key))
        if index is None:
            index = {}
            unique = next(k for k in rtype.unique_keys if k.name == key)
            for obj in self.live.of_type(rtype.name):
                folded = unique.value_of(obj.data) if obj.lifecycle is Lifecycle.ACTIVE else None
                if folded is not None:
                    index.setdefault(folded, []).append(obj)
            self._holders[(rtype.name, key)] = index
        return index.get(value, [])

    def plan(self, change: ObjectChange, soft_deleting: set[tuple[str, str]]) -> None:
        rtype = self.registry.get(change.type_name)
        was = self.source.get(change.type_name, change.id)
        now = self.live.get(change.type_name, change.id)
        if self.recreatable(change, rtype):
            self.recreate(change, rtype)
        elif self.relinkable(change, rtype):
            self.write(change, Step.CREATE)
        elif change.action is Action.NONE and rtype.recreate_as_new and change.blocker is Blocker.HARD_DELETED:
            self.skip(change, f"{change_reason(change)}; plan --recreate creates it again, with a new id")
        elif change.action is Action.NONE:
            self.skip(change, change_reason(change))
        elif change.action is Action.RESTORE:
            assert was is not None and now is not None
            if self.restorable(change, rtype, was, soft_deleting):
                self.write(change, Step.RESTORE)
                self.update(change, rtype, was)
        elif change.action is Action.SOFT_DELETE:
            self.write(change, Step.SOFT_DELETE, first=(change.type_name, change.id) in self.freeing)
        elif change.action is Action.DELETE:
            if self.options.allow_delete:
                self.write(change, Step.DELETE)
            else:
                self.skip(
                    change,
                    "created after the backup, and this type has no soft delete: removing it cannot be undone; "
                    "plan with --allow-delete to remove it",
                )
        elif change.action is Action.RECREATE:
            self.write(change, Step.CREATE)
        elif change.action is Action.UPDATE:
            assert was is not None
            self.update(change, rtype, was)

    def recreatable(self, change: ObjectChange, rtype: ResourceType) -> bool:
        """Whether --recreate makes this object again: gone from Graph (not even in deleted items), of a type
        created with a new id, and not synchronised from on-premises (its source of truth is there)."""
        return (
            self.options.recreate
            and rtype.recreate_as_new is not None
            and change.kind is ChangeKind.HARD_DELETED
            and change.blocker is Blocker.HARD_DELETED
        )

    def relinkable(self, change: ObjectChange, rtype: ResourceType) -> bool:
        """Whether a relationship gone with a re-created object (an app role assignment, a grant) is made again:
        every object it names exists, or is re-created by this plan."""
        was = self.source.get(change.type_name, change.id)
        if not self.options.recreate or not rtype.recreate or change.blocker is not Blocker.TARGET_GONE or was is None:
            return False
        named = referenced_ids(rtype, was)
        if not any(i in self.recreated for i, _ in named):
            return False
        return all(i in self.recreated or self._anywhere(i, types) is not None for i, types in named)

    def recreate(self, change: ObjectChange, rtype: ResourceType) -> None:
        """Create the object again from the source, unless a live object holds one of its unique keys."""
        was = self.source.get(change.type_name, change.id)
        assert was is not None
        for unique in rtype.unique_keys:
            value = unique.value_of(was.data)
            holders = self.holders(rtype, unique.name, value) if value is not None else []
            if holders:
                holder = holders[0]
                self.skip(
                    change,
                    f"not re-created: its {unique.name} {value!r} is held by {rtype.name} "
                    f"{holder.display(rtype.display) or holder.id!r} ({holder.id}); Graph refuses a second one",
                )
                return
        spec = rtype.recreate_as_new
        assert spec is not None
        key = was.data.get(spec.find_by)
        twin = next(
            (o for o in self.live.of_type(rtype.name) if isinstance(key, str) and o.data.get(spec.find_by) == key), None
        )
        if twin is not None:
            self.skip(
                change,
                f"not re-created: its {spec.find_by} {key!r} is also live {rtype.name} {twin.id}'s, so an interrupted "
                "apply could not tell which one it made; rename one of them, then plan again",
            )
            return
        before = len(self.writes)
        self.write(change, Step.CREATE)
        if len(self.writes) == before:
            return
        self.recreated[fold_id(change.id)] = change.type_name
        for value in changing_ids(self.registry, self.writes[-1], self.source).values():
            self.changing.add(fold_id(value))  # an application's appId: new too
        staged = {
            name: (value, target_value(prop, was))
            for name, value in spec.staged.items()
            if (prop := rtype.prop(name)) is not None and target_value(prop, was) != value
        }
        if staged:
            # Switched to the backup's values only after every create: the policy's references exist by then.
            self.write(change, Step.UPDATE, tuple((name, now, after) for name, (now, after) in staged.items()))

    def remap(self, report: DifferenceReport) -> None:
        """The writes that point references back at re-created objects: their own links, the links of others
        that named them (Graph dropped those with the object), and the policies that still name their old ids."""
        if not self.recreated:
            return
        planned = {w.key for w in self.writes}
        for change in report.changes:
            rtype = self.registry.get(change.type_name)
            if fold_id(change.id) in self.recreated:
                self.own_links(change, rtype)
                continue
            for link in change.links:
                spec = rtype.prop(link.name)
                now = self.live.get(change.type_name, change.id)
                if link.blocker is not Blocker.TARGET_GONE or spec is None or spec.link is None or now is None:
                    continue
                if property_blocker(rtype, spec, now) is not None or spec.link.is_read_only(now.data):
                    continue
                for target in link.removed:
                    if fold_id(target) in self.recreated:
                        self.write(change, Step.ADD_LINK, ((link.name, None, target),), link=link.name, target=target)
        self.references(planned)
        # An object whose only difference was a link to a gone object is written now: it is no longer "skipped".
        written = {w.key for w in self.writes}
        self.skipped = [
            s
            for s in self.skipped
            if (s.type_name, s.object_id) not in written or (s.type_name, s.object_id) in planned
        ]

    def own_links(self, change: ObjectChange, rtype: ResourceType) -> None:
        """A re-created object's links (a group's members and owners) to objects that exist, or come back."""
        was = self.source.get(change.type_name, change.id)
        assert was is not None
        for spec in rtype.links:
            # Every link it had, its owners too (recovery otherwise only tracks those): it is made whole again.
            if (
                spec.scope not in (Scope.RECOVER, Scope.TRACK)
                or spec.read_only
                or spec.link is None
                or spec.link.is_read_only(was.data)
            ):
                continue
            for target in sorted(was.data.get(spec.name) or ()):
                if self._anywhere(str(target), spec.refs) is not None:
                    self.write(change, Step.ADD_LINK, ((spec.name, None, target),), link=spec.name, target=target)

    def _anywhere(self, object_id: str, types: tuple[str, ...]) -> str | None:
        """The type (of `types`) of a live, restored or re-created object with this id; None when it is gone."""
        folded = fold_id(object_id)
        if folded in self.recreated:
            return self.recreated[folded]
        restoring = next((w for w in self.writes if w.step is Step.RESTORE and fold_id(w.object_id) == folded), None)
        if restoring is not None:
            return restoring.type_name
        found = (self.live.get(t, folded) for t in types)
        return next((o.type_name for o in found if o is not None and o.lifecycle is Lifecycle.ACTIVE), None)

    def references(self, planned: set[tuple[str, str]]) -> None:
        """Policies (types whose references Graph keeps after a delete) that name a re-created object's old id:
        the property is written again, so that apply sends it with the new id."""
        updating = {
            (w.type_name, w.object_id): {n for n, _, _ in w.changes} for w in self.writes if w.step is Step.UPDATE
        }
        for now in self.live:
            rtype = self.registry.get(now.type_name)
            was = self.source.get(now.type_name, now.id)
            if not rtype.stale_references or was is None or was.lifecycle is not Lifecycle.ACTIVE:
                continue
            if now.lifecycle is not Lifecycle.ACTIVE or rtype.is_synchronized(now.data):
                continue
            props = sorted(
                {
                    r.path.split(".")[0]
                    for r in object_references(rtype, was.data, links=False)
                    if fold_id(r.target) in self.recreated
                }
                - updating.get(now.key, set())
            )
            for name in props:
                spec = rtype.prop(name)
                if spec is None or spec.scope is not Scope.RECOVER or spec.read_only:
                    continue
                change = ObjectChange(
                    rtype.name, now.id, now.display(rtype.display), ChangeKind.MODIFIED, Action.UPDATE, None
                )
                self.write(change, Step.UPDATE, ((name, thaw(now.data.get(name)), target_value(spec, was)),))

    def restorable(
        self, change: ObjectChange, rtype: ResourceType, was: ObjectState, soft_deleting: set[tuple[str, str]]
    ) -> bool:
        """Whether the object's unique keys are free, or freed by a soft-delete this plan runs first."""
        for unique in rtype.unique_keys:
            value = unique.value_of(was.data)
            if value is None:
                continue
            for holder in self.holders(rtype, unique.name, value):
                if holder.id == change.id:
                    continue
                name = holder.display(rtype.display) or holder.id
                in_source = self.source.get(rtype.name, holder.id)
                if in_source is not None and in_source.lifecycle is Lifecycle.ACTIVE:
                    self.skip(
                        change,
                        f"not restored: its {unique.name} {value!r} is held by {rtype.name} {name!r} ({holder.id}), "
                        "which the backup holds too; Graph refuses a restore while the key is taken: give one of "
                        "them another value, then plan again",
                    )
                    return False
                if (rtype.name, holder.id) not in soft_deleting:
                    self.skip(
                        change,
                        f"not restored: its {unique.name} {value!r} is held by {rtype.name} {name!r} ({holder.id}), "
                        "created after the backup; include that object in the plan, so its soft-delete frees the "
                        "key first",
                    )
                    return False
                self.freeing.add((rtype.name, holder.id))
        return True

    def update(self, change: ObjectChange, rtype: ResourceType, was: ObjectState) -> None:
        diffs: list[tuple[str, Any, Any]] = []
        for prop in change.properties:
            spec = rtype.prop(prop.name)
            if not prop.recoverable or spec is None:
                continue
            if holds_redaction(prop.before):
                self.skip(change, f"{prop.name}: the backup holds a redacted value (it looked like a secret)")
                continue
            if spec.write_action:
                value = target_value(spec, was)
                self.write(change, Step.ACTION, ((spec.name, thaw(prop.after), value),))
            elif spec.item_key and rtype.singleton_path:
                self.keyed_items(change, spec, prop.before, prop.after)
            else:
                diffs.append((spec.name, thaw(prop.after), target_value(spec, was)))
        if diffs:
            self.write(change, Step.UPDATE, tuple(diffs))
        for link in change.links:
            spec = rtype.prop(link.name)
            if link.blocker is not None or spec is None or spec.link is None:
                continue
            for target in link.added:
                self.write(change, Step.REMOVE_LINK, ((link.name, target, None),), link=link.name, target=target)
            for target in link.removed:
                self.write(change, Step.ADD_LINK, ((link.name, None, target),), link=link.name, target=target)

    def keyed_items(self, change: ObjectChange, spec: PropertySpec, before: Any, after: Any) -> None:
        """A singleton's keyed configurations (authentication methods) are patched one by one."""
        old, new = _recoverable_items(spec, before), _recoverable_items(spec, after)
        was = self.source.get(change.type_name, change.id)
        for key, item in old.items():
            if thaw(item) == thaw(new.get(key)):
                continue
            source_item = keyed_item(spec, was, key)
            self.write(
                change,
                Step.UPDATE,
                ((spec.name, thaw(new.get(key)), thaw(source_item)),),
                item=key,
            )


def build_plan(
    registry: Registry,
    report: DifferenceReport,
    source: TenantState,
    live: TenantState,
    *,
    tool: str,
    tenant: str | None,
    backup_commit: str,
    created: str,
    kind: SourceKind = SourceKind.BACKUP,
    options: PlanOptions = PlanOptions(),
    protected: tuple[ProtectedObject, ...] = (),
    break_glass: tuple[str, ...] = (),
    warnings: tuple[str, ...] = (),
) -> Plan:
    """The steps that undo `report`'s recoverable changes, ordered: key-freeing soft-deletes, restores, ... deletes."""
    planner = _Planner(registry, source, live, options)
    soft_deleting = {(c.type_name, c.id) for c in report.changes if c.action is Action.SOFT_DELETE}

    # Re-creations first: what names a re-created object is written (not refused as naming a gone one). Then
    # restores: they decide which soft-deletes must run before them.
    # Policies last among re-creations: they name the others, which are then known to come back.
    def order(change: ObjectChange) -> tuple[bool, bool, bool]:
        rtype = registry.get(change.type_name)
        again = planner.recreatable(change, rtype)
        return (not again, again and rtype.stale_references, change.action is not Action.RESTORE)

    ordered = sorted(report.changes, key=order)
    for change in ordered:
        planner.plan(change, soft_deleting)
    planner.remap(report)
    ordered_writes = sorted(planner.writes, key=lambda w: STEP_ORDER[w.step])
    changing = frozenset(planner.recreated) | frozenset(planner.changing)
    writes = tuple(planner.first) + tuple(dependencies_first(ordered_writes, changing))
    writes = _deletes_graph_allows(registry, writes, source, live, planner)
    skipped = tuple(sorted(planner.skipped, key=lambda s: (s.type_name, s.display or "", s.object_id)))
    plan = Plan(
        tool, tenant, report.backup, backup_commit, report.scope, writes, skipped, created, "", kind, options,
        protected, break_glass, warnings,
    )  # fmt: skip
    return with_checksum(plan)


def _deletes_graph_allows(
    registry: Registry, writes: tuple[Write, ...], source: TenantState, live: TenantState, planner: _Planner
) -> tuple[Write, ...]:
    """Drop, with the reason, deletes Graph would refuse: a trusted location, or one a policy still names
    once the plan's other writes are done (a recovery would otherwise fail half way through)."""
    deleting = [w for w in writes if w.step in (Step.SOFT_DELETE, Step.DELETE)]
    guarded = [
        w
        for w in deleting
        if registry.get(w.type_name).kept_while_referenced or registry.get(w.type_name).undeletable_when
    ]
    if not guarded:
        return writes
    after = after_plan(registry, live, [w for w in writes if w not in deleting], source)
    naming: dict[str, list[str]] = {}
    for obj in after:
        rtype = registry.get(obj.type_name)
        if rtype.stale_references and obj.lifecycle is Lifecycle.ACTIVE:
            for reference in object_references(rtype, obj.data):
                naming.setdefault(fold_id(reference.target), []).append(obj.display(rtype.display) or obj.id)
    dropped = set()
    for write in guarded:
        rtype, now = registry.get(write.type_name), live.get(*write.key)
        reason = None
        if now is not None and rtype.is_undeletable(now.data):
            reason = "marked as trusted: Graph refuses to delete it until the trusted designation is removed"
        elif rtype.kept_while_referenced and naming.get(fold_id(write.object_id)):
            names = ", ".join(repr(n) for n in sorted(set(naming[fold_id(write.object_id)])))
            reason = f"still named by {names}: Graph refuses to delete it while a policy uses it; include the policy"
        if reason is not None:
            planner.skipped.append(Skipped(write.type_name, write.object_id, write.display, f"not deleted: {reason}"))
            dropped.add(id(write))
    return tuple(w for w in writes if id(w) not in dropped)


def _write_document(w: Write) -> dict[str, Any]:
    entry: dict[str, Any] = {
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
    for name, value in (("link", w.link), ("target", w.target), ("item", w.item)):
        if value is not None:
            entry[name] = value
    if w.step in IRREVERSIBLE:
        entry["irreversible"] = True
    return entry


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan as the JSON a plan file holds (checksum included when set)."""
    document: dict[str, Any] = {
        "format": PLAN_FORMAT,
        "tool": plan.tool,
        "tenant": plan.tenant,
        "backup": {"tag": plan.backup, "commit": plan.backup_commit, "kind": plan.kind.value},
        "scope": {"types": list(plan.scope.types), "ids": list(plan.scope.ids)},
        "created": plan.created,
        "options": {
            "allowDelete": plan.options.allow_delete,
            "allowEmpty": list(plan.options.allow_empty),
            **({"recreate": True} if plan.options.recreate else {}),  # only then, so other plans read as before
        },
        "protected": [{"type": p.type_name, "id": p.object_id, "label": p.label, "via": p.via} for p in plan.protected],
        "breakGlass": list(plan.break_glass),
        "warnings": list(plan.warnings),
        "writes": [_write_document(w) for w in plan.writes],
        "skipped": [
            {"type": s.type_name, "id": s.object_id, "displayName": s.display, "reason": s.reason} for s in plan.skipped
        ],
    }
    if plan.refusals:  # only then, so a plan without any reads as before
        document["refusals"] = [
            {"guard": r.guard.value, "type": r.type_name, "id": r.object_id, "message": r.message}
            for r in plan.refusals
        ]
    if plan.changed_by:  # only then, so a plan made without the audit log reads as before
        document["changedBy"] = [{"type": t, "id": i, "changedBy": by_document(b)} for t, i, b in plan.changed_by]
    if plan.checksum:
        document["checksum"] = plan.checksum
    return document


def plan_json(plan: Plan) -> str:
    """The plan file's text: the one serialisation every command writes."""
    return json.dumps(plan_document(plan), indent=2, ensure_ascii=False) + "\n"


def compute_checksum(document: Mapping[str, Any]) -> str:
    """sha256 over the plan's canonical JSON, without its checksum: it catches a changed file, not a forger."""
    content = {k: v for k, v in document.items() if k != "checksum"}
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def with_checksum(plan: Plan) -> Plan:
    return replace(plan, checksum=compute_checksum(plan_document(plan)))


def plan_from_document(document: Mapping[str, Any]) -> Plan:
    """A Plan back from its file's JSON (the caller validates the document and its checksum first)."""
    writes = tuple(
        Write(
            Step(w["step"]),
            w["type"],
            w["id"],
            w.get("displayName"),
            Request(w["method"], w["path"], w.get("body")),
            tuple((c["name"], c.get("now"), c.get("after")) for c in w.get("changes", ())),
            w.get("fingerprint", ABSENT),
            w.get("link"),
            w.get("target"),
            w.get("item"),
        )
        for w in document["writes"]
    )
    skipped = tuple(Skipped(s["type"], s["id"], s.get("displayName"), s["reason"]) for s in document.get("skipped", ()))
    scope = ReportScope(tuple(document["scope"]["types"]), tuple(document["scope"]["ids"]))
    options = document.get("options") or {}
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
        SourceKind(document["backup"].get("kind", "backup")),
        PlanOptions(
            bool(options.get("allowDelete")), tuple(options.get("allowEmpty") or ()), options.get("recreate") is True
        ),
        tuple(ProtectedObject(p["type"], p["id"], p["label"], p["via"]) for p in document.get("protected", ())),
        tuple(document.get("breakGlass", ())),
        tuple(document.get("warnings", ())),
        tuple(Refusal(Guard(r["guard"]), r["type"], r.get("id"), r["message"]) for r in document.get("refusals", ())),
        tuple((c["type"], c["id"], by_from_document(c["changedBy"])) for c in document.get("changedBy", ())),
    )
