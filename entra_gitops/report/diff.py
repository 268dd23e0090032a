"""The difference report: a backup's TenantState against a current one, per object, property and link (pure).

Semantic equality, so the report carries no false drift: both states are normalized already (empty
values left out, set-like lists sorted, GUIDs lower-cased); on top of that GUIDs compare without
regard to case, `@odata.type` counts only when both sides state it, and inside complex objects a
`false` equals an absent value, so an object of nothing but `false` switches equals no object
(Graph answers `null`, `false` or `{"…": false}` for unset Conditional Access session controls).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from entra_gitops.model.ids import fold_id, is_guid
from entra_gitops.model.registry import PropertySpec, Registry, ResourceType, Scope
from entra_gitops.model.tenant import Lifecycle, ObjectState, TenantState


class ChangeKind(enum.Enum):
    """How an object differs between the backup and now (DESIGN: difference report semantics)."""

    CREATED = "created"
    MODIFIED = "modified"
    SOFT_DELETED = "softDeleted"
    RESTORED = "restored"
    HARD_DELETED = "hardDeleted"
    SYNCHRONIZED = "synchronized"


class Action(enum.Enum):
    """What recovery to the backup would do about a change."""

    SOFT_DELETE = "softDelete"
    DELETE = "delete"
    UPDATE = "update"
    RESTORE = "restore"
    RECREATE = "recreate"
    NONE = "none"


class Blocker(enum.Enum):
    """Why recovery cannot write something back."""

    TRACK_SCOPE = "trackScope"
    READ_ONLY = "readOnly"
    SYNCHRONIZED = "synchronized"
    HARD_DELETED = "hardDeleted"
    BUILT_IN = "builtIn"
    NOT_IN_RECOVERY_SCOPE = "notInRecoveryScope"
    COMES_BACK_WITH_RESTORE = "comesBackWithRestore"
    TARGET_GONE = "targetGone"
    DYNAMIC_MEMBERSHIP = "dynamicMembership"


BLOCKER_TEXT = {
    Blocker.TRACK_SCOPE: "tracked, not recovered (outside the recovery scope)",
    Blocker.READ_ONLY: "read-only in Graph",
    Blocker.SYNCHRONIZED: "synchronised from on-premises: change it there",
    Blocker.HARD_DELETED: "permanently deleted: a restore cannot bring it back",
    Blocker.BUILT_IN: "built-in: Graph refuses changes",
    Blocker.NOT_IN_RECOVERY_SCOPE: "outside the recovery scope (for example a user-consented grant)",
    Blocker.COMES_BACK_WITH_RESTORE: "the linked object was soft-deleted: restoring it brings this link back",
    Blocker.TARGET_GONE: "the linked object was permanently deleted",
    Blocker.DYNAMIC_MEMBERSHIP: "dynamic membership: change the rule",
}

# The one place that knows whether Graph can give a relationship back; diff and plan both read it.
RELATIONSHIP_BLOCKER_TEXT = {
    Blocker.COMES_BACK_WITH_RESTORE: "an object it links was soft-deleted: restoring that object brings it back",
    Blocker.TARGET_GONE: "an object it links was permanently deleted: Graph cannot re-create it",
}


@dataclass(frozen=True)
class PropertyChange:
    """One property whose value differs, and whether recovery can write the backup's value back."""

    name: str
    before: Any
    after: Any
    blocker: Blocker | None

    @property
    def recoverable(self) -> bool:
        return self.blocker is None


@dataclass(frozen=True)
class LinkChange:
    """Ids added to or removed from one relationship since the backup."""

    name: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    blocker: Blocker | None


@dataclass(frozen=True)
class ObjectChange:
    """Everything that differs for one object, with the recovery action it would get."""

    type_name: str
    id: str
    display_name: str | None
    kind: ChangeKind
    action: Action
    blocker: Blocker | None
    properties: tuple[PropertyChange, ...] = ()
    links: tuple[LinkChange, ...] = ()
    object_kind: str | None = None  # the kind its @odata.type states (agentIdentity); None for a plain object
    privileged: bool = False  # it gives, or gave, a role Microsoft labels privileged: reports lead with it

    @property
    def recoverable(self) -> bool:
        return self.action is not Action.NONE

    @property
    def reason(self) -> str | None:
        """Why the object itself cannot be recovered, in words (None when it can)."""
        if self.blocker is None:
            return None
        if self.kind is ChangeKind.HARD_DELETED:
            return RELATIONSHIP_BLOCKER_TEXT.get(self.blocker, BLOCKER_TEXT[self.blocker])
        return BLOCKER_TEXT[self.blocker]


@dataclass(frozen=True)
class ReportScope:
    """What a report covers: types (empty = all) and object ids (empty = all)."""

    types: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()

    def describe(self) -> str:
        types = ", ".join(self.types) if self.types else "all types"
        ids = f"{len(self.ids)} object id(s)" if self.ids else "all objects"
        return f"{types}; {ids}"


@dataclass(frozen=True)
class DifferenceReport:
    """The difference between a backup and a current state within a scope: the control point of recovery."""

    backup: str
    against: str
    scope: ReportScope
    changes: tuple[ObjectChange, ...]
    compared: int
    counts: Mapping[str, Mapping[str, int]] = field(default_factory=lambda: MappingProxyType({}))
    note: str | None = None  # said first in every rendering: for example that the backup covers only some types

    @property
    def empty(self) -> bool:
        return not self.changes


def _blank(value: Any, nested: bool) -> bool:
    """True for what Graph treats as unset: null, and inside objects also false or an object of such."""
    if value is None:
        return True
    if nested and value is False:
        return True
    if isinstance(value, Mapping):
        return all(_blank(v, True) for k, v in value.items() if k != "@odata.type")
    return isinstance(value, tuple | list) and not value


def _same(a: Any, b: Any, nested: bool) -> bool:
    """Graph's equality: see the module docstring."""
    if a is None or b is None:
        return _blank(b if a is None else a, nested)
    if type(a) is str and type(b) is str:
        return a == b or (is_guid(a) and a.lower() == b.lower())
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        keys = set(a) | set(b)
        if "@odata.type" in keys and not ("@odata.type" in a and "@odata.type" in b):
            keys.discard("@odata.type")
        return all(_same(a.get(k), b.get(k), True) for k in keys)
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(_same(x, y, True) for x, y in zip(a, b, strict=True))
    return a == b


def property_blocker(rtype: ResourceType, prop: PropertySpec, obj: ObjectState) -> Blocker | None:
    """Why recovery cannot write `prop` of `obj`; None when it can."""
    if prop.scope is not Scope.RECOVER:
        return Blocker.READ_ONLY if prop.read_only else Blocker.TRACK_SCOPE
    if rtype.is_synchronized(obj.data):
        return Blocker.SYNCHRONIZED
    if rtype.is_read_only(obj.data):
        return Blocker.BUILT_IN
    if rtype.recover_when and not all(obj.data.get(k) == v for k, v in rtype.recover_when.items()):
        return Blocker.NOT_IN_RECOVERY_SCOPE
    return None


def _ids(value: Any) -> set[str]:
    return {fold_id(str(v)) for v in value or ()}


@dataclass(frozen=True)
class Whereabouts:
    """Where each object id is now (active or soft-deleted), and which types were read to know it."""

    lifecycles: Mapping[str, Lifecycle]
    read_types: frozenset[str]

    @classmethod
    def of(cls, state: TenantState) -> Whereabouts:
        return cls(MappingProxyType({o.id: o.lifecycle for o in state}), state.types)

    def get(self, object_id: str) -> Lifecycle | None:
        return self.lifecycles.get(object_id)

    def gone(self, object_id: str, types: tuple[str, ...]) -> bool:
        """Absent from every type it may be: only then is it known to be gone, not merely unread."""
        return object_id not in self.lifecycles and bool(types) and set(types) <= self.read_types


def _link_changes(
    rtype: ResourceType, prop: PropertySpec, current: ObjectState, old: set[str], new: set[str], now: Whereabouts
) -> list[LinkChange]:
    """Added and removed ids of one link, split by why a removal may not need (or allow) a write."""
    blocker = property_blocker(rtype, prop, current)
    if blocker is None and prop.link is not None and prop.link.is_read_only(current.data):
        blocker = Blocker.DYNAMIC_MEMBERSHIP
    removed = sorted(old - new)
    restored_later = tuple(i for i in removed if now.get(i) is Lifecycle.SOFT_DELETED)
    gone = tuple(i for i in removed if now.gone(i, prop.refs))
    plain = tuple(i for i in removed if i not in restored_later and i not in gone)
    changes = []
    if new - old or plain:
        changes.append(LinkChange(prop.name, tuple(sorted(new - old)), plain, blocker))
    # These reasons win over the link's scope: they say why no write is needed or possible at all.
    if restored_later:
        changes.append(LinkChange(prop.name, (), restored_later, Blocker.COMES_BACK_WITH_RESTORE))
    if gone:
        changes.append(LinkChange(prop.name, (), gone, Blocker.TARGET_GONE))
    return changes


def compare_objects(
    rtype: ResourceType, backup: ObjectState, current: ObjectState, now: Whereabouts | None = None
) -> tuple[tuple[PropertyChange, ...], tuple[LinkChange, ...]]:
    """The property and link differences of one object present in both states."""
    properties: list[PropertyChange] = []
    links: list[LinkChange] = []
    for prop in rtype.properties:
        if prop.scope is Scope.KEY:
            continue
        before, after = backup.data.get(prop.name), current.data.get(prop.name)
        if prop.name == "@odata.type" and (before is None or after is None):
            continue  # counts only when both sides state it (a backup from before the schema named it states none)
        if prop.link is not None:
            old, new = _ids(before), _ids(after)
            if old != new:
                everywhere = (
                    now
                    if now is not None
                    else Whereabouts(MappingProxyType({i: Lifecycle.ACTIVE for i in old | new}), frozenset())
                )
                links.extend(_link_changes(rtype, prop, current, old, new, everywhere))
        elif not _same(before, after, False):
            properties.append(PropertyChange(prop.name, before, after, property_blocker(rtype, prop, current)))
    return tuple(properties), tuple(links)


def _classify(
    rtype: ResourceType, backup: ObjectState | None, current: ObjectState | None, now: Whereabouts
) -> ObjectChange | None:
    subject = current or backup
    assert subject is not None
    display = subject.display(rtype.display)
    synchronized = rtype.is_synchronized(subject.data)
    kind_name = rtype.kind_of(subject.data) or (rtype.kind_of(backup.data) if backup is not None else None)

    def change(
        kind: ChangeKind,
        action: Action,
        blocker: Blocker | None = None,
        props: tuple[PropertyChange, ...] = (),
        links: tuple[LinkChange, ...] = (),
    ) -> ObjectChange:
        if synchronized and action is not Action.NONE:
            action, blocker = Action.NONE, Blocker.SYNCHRONIZED
        elif rtype.track_only:
            action, blocker = Action.NONE, Blocker.TRACK_SCOPE  # reported, never written (eligibilities, roles)
        return ObjectChange(rtype.name, subject.id, display, kind, action, blocker, props, links, kind_name)

    was_active = backup is not None and backup.lifecycle is Lifecycle.ACTIVE
    is_active = current is not None and current.lifecycle is Lifecycle.ACTIVE
    if backup is None or not was_active:
        if is_active:
            if backup is not None:  # soft-deleted in the backup, active now
                return change(ChangeKind.RESTORED, Action.SOFT_DELETE)
            delete = Action.SOFT_DELETE if rtype.soft_delete else Action.DELETE
            return change(ChangeKind.CREATED, delete)
        return None  # deleted in both, or deleted now and absent from the backup: nothing to recover
    if current is None:
        if rtype.recreate:
            blocker = recreation_blocker(rtype, backup, now)
            return change(ChangeKind.HARD_DELETED, Action.NONE if blocker else Action.RECREATE, blocker)
        return change(ChangeKind.HARD_DELETED, Action.NONE, Blocker.HARD_DELETED)
    if not is_active:
        props, links = compare_objects(rtype, backup, current, now)
        # Deleted items carry no links, and a restore gives the object its own memberships back: nothing to add.
        links = tuple(
            LinkChange(link.name, (), link.removed, Blocker.COMES_BACK_WITH_RESTORE) if link.blocker is None else link
            for link in links
            if link.removed
        )
        return change(ChangeKind.SOFT_DELETED, Action.RESTORE, None, props, links)
    props, links = compare_objects(rtype, backup, current, now)
    if not props and not links:
        return None
    kind = ChangeKind.SYNCHRONIZED if synchronized else ChangeKind.MODIFIED
    writable = any(p.recoverable for p in props) or any(link.blocker is None for link in links)
    if kind is ChangeKind.SYNCHRONIZED:
        return ObjectChange(
            rtype.name, subject.id, display, kind, Action.NONE, Blocker.SYNCHRONIZED, props, links, kind_name
        )
    return change(
        kind,
        Action.UPDATE if writable else Action.NONE,
        None if writable else props[0].blocker if props else links[0].blocker,
        props,
        links,
    )


def referenced_ids(rtype: ResourceType, obj: ObjectState) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(id, the types it may be) for every object a relationship names: its parent and its references."""
    found: list[tuple[str, tuple[str, ...]]] = []
    if rtype.parent is not None and isinstance(obj.data.get(rtype.parent.param), str):
        found.append((fold_id(obj.data[rtype.parent.param]), (rtype.parent.type_name,)))
    for prop in rtype.references:
        if prop.link is None and isinstance(obj.data.get(prop.name), str):
            found.append((fold_id(obj.data[prop.name]), prop.refs))
    return tuple(dict.fromkeys(found))


def recreation_blocker(rtype: ResourceType, backup: ObjectState, now: Whereabouts) -> Blocker | None:
    """Why a relationship gone since the backup is not re-created; None when recovery creates it again.

    A relationship whose principal or resource is soft-deleted comes back when that object is restored
    (Microsoft: recovering a service principal recovers its app role assignments and grants), so
    creating it as well would make a duplicate that Graph refuses.
    """
    if rtype.recover_when and not all(backup.data.get(k) == v for k, v in rtype.recover_when.items()):
        return Blocker.NOT_IN_RECOVERY_SCOPE
    references = referenced_ids(rtype, backup)
    if any(now.get(i) is Lifecycle.SOFT_DELETED for i, _ in references):
        return Blocker.COMES_BACK_WITH_RESTORE
    if any(now.gone(i, types) for i, types in references):
        return Blocker.TARGET_GONE
    return None


def _content(rtype: ResourceType, obj: ObjectState | None) -> str | None:
    """What a re-created relationship must equal: everything but its id and server-set fields."""
    if obj is None:
        return None
    kept = {k: v for k, v in obj.data.items() if k != "id" and k not in rtype.server_generated}
    return repr(sorted((k, repr(v)) for k, v in kept.items()))


def _without_recreated(
    registry: Registry, changes: list[ObjectChange], backup: TenantState, current: TenantState
) -> list[ObjectChange]:
    """Drop pairs of a removed and an added relationship with the same content (Graph gives re-created
    app role assignments and grants a new id): recovery made them, so they are no drift."""
    removed: dict[tuple[str, str], list[ObjectChange]] = {}
    for change in changes:
        rtype = registry.get(change.type_name)
        if rtype.recreate and change.kind is ChangeKind.HARD_DELETED:
            key = (change.type_name, _content(rtype, backup.get(change.type_name, change.id)) or "")
            removed.setdefault(key, []).append(change)
    if not removed:
        return changes
    dropped: set[int] = set()
    for change in changes:
        rtype = registry.get(change.type_name)
        if rtype.recreate and change.kind is ChangeKind.CREATED:
            twins = removed.get((change.type_name, _content(rtype, current.get(change.type_name, change.id)) or ""))
            if twins:
                dropped.update((id(change), id(twins.pop())))
    return [c for c in changes if id(c) not in dropped]


def difference_report(
    registry: Registry,
    backup: TenantState,
    current: TenantState,
    *,
    backup_name: str,
    against_name: str,
    scope: ReportScope = ReportScope(),
    note: str | None = None,
    now: Whereabouts | None = None,
    identical: Mapping[str, int] | None = None,
) -> DifferenceReport:
    """Compare `backup` with `current` object by object within `scope` (types read by both).

    States narrowed to what can differ pass where every live object is (`now`; default: `current`'s objects)
    and how many objects per type they left out as the same on both sides (`identical`, counted as compared).
    """
    # Only types both sides read: a type missing on one side would look like mass creation or deletion.
    wanted_types = set(backup.types) & set(current.types)
    if scope.types:
        wanted_types &= set(scope.types)
    wanted_ids = {fold_id(i) for i in scope.ids}
    now = now or Whereabouts.of(current)
    keys: Iterable[tuple[str, str]] = dict.fromkeys([*backup.objects, *current.objects])
    changes: list[ObjectChange] = []
    compared = 0
    for type_name, object_id in keys:
        if type_name not in wanted_types or (wanted_ids and object_id not in wanted_ids):
            continue
        compared += 1
        was, now_is = backup.get(type_name, object_id), current.get(type_name, object_id)
        if was is not None and was == now_is:
            continue  # the same lifecycle and value on both sides: nothing to classify
        rtype = registry.get(type_name)
        found = _classify(rtype, was, now_is, now)
        if found is not None:
            # Either side counts: a grant an intruder made and a grant removed since the backup alike.
            privileged = any(registry.is_privileged(rtype, o.data) for o in (was, now_is) if o is not None)
            changes.append(replace(found, privileged=True) if privileged else found)
    if not wanted_ids:
        compared += sum(n for t, n in (identical or {}).items() if t in wanted_types)
    changes = _without_recreated(registry, changes, backup, current)
    changes.sort(key=lambda c: (not c.privileged, c.type_name, c.display_name or "", c.id))
    tally: dict[str, Counter[str]] = {}
    for c in changes:
        tally.setdefault(c.type_name, Counter())[c.kind.value] += 1
    counts = MappingProxyType({t: MappingProxyType(dict(sorted(k.items()))) for t, k in sorted(tally.items())})
    return DifferenceReport(backup_name, against_name, scope, tuple(changes), compared, counts, note)
