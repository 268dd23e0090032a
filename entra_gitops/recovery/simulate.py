"""The tenant as it would stand after a plan: the live state with each step applied, as Graph would (pure).

The safety checks judge this state, not the plan's target: what a plan leaves behind is what can
lock an administrator out or empty a type, whatever the source says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from entra_gitops.model.frozen import freeze, thaw
from entra_gitops.model.ids import fold_id
from entra_gitops.model.registry import Registry
from entra_gitops.model.tenant import Lifecycle, ObjectState, TenantState
from entra_gitops.recovery.steps import Step, Write


def _blank(value: Any) -> bool:
    return value is None or value == [] or value == {} or value == ()


def _with(obj: ObjectState, changes: Mapping[str, Any]) -> ObjectState:
    data = dict(obj.data)
    for name, value in changes.items():
        if _blank(value):
            data.pop(name, None)
        else:
            data[name] = freeze(value)
    return replace(obj, data=MappingProxyType(data))


def _updated(registry: Registry, obj: ObjectState, write: Write) -> ObjectState:
    rtype = registry.get(obj.type_name)
    if write.item is None:
        return _with(obj, {name: after for name, _, after in write.changes})
    (name, _, after), *_ = write.changes
    prop = rtype.prop(name)
    assert prop is not None and prop.item_key is not None
    items = [thaw(i) for i in obj.data.get(name) or () if str(i.get(prop.item_key)) != write.item]
    return _with(obj, {name: [*items, after]})


def after_plan(registry: Registry, live: TenantState, writes: Iterable[Write], source: TenantState) -> TenantState:
    """`live` with `writes` applied in order; steps that would change nothing (a rerun) leave it as it is."""
    objects: dict[tuple[str, str], ObjectState] = dict(live.objects)
    vanished: set[str] = set()  # soft-deleted or deleted: Graph drops them from every membership
    returned: set[str] = set()  # restored: Graph gives their memberships back
    for write in writes:
        now = objects.get(write.key)
        was = source.get(*write.key)
        if write.step is Step.RESTORE and now is not None:
            own_links = {p.name: was.data.get(p.name) for p in registry.get(write.type_name).links} if was else {}
            objects[write.key] = _with(replace(now, lifecycle=Lifecycle.ACTIVE), own_links)
            returned.add(fold_id(write.object_id))
            vanished.discard(fold_id(write.object_id))
        elif write.step is Step.CREATE and was is not None:
            objects[write.key] = was
        elif write.step in (Step.UPDATE, Step.ACTION) and now is not None:
            objects[write.key] = _updated(registry, now, write)
        elif write.step in (Step.ADD_LINK, Step.REMOVE_LINK) and now is not None and write.link and write.target:
            ids = {fold_id(str(i)) for i in now.data.get(write.link) or ()}
            target = fold_id(write.target)
            ids = ids | {target} if write.step is Step.ADD_LINK else ids - {target}
            objects[write.key] = _with(now, {write.link: sorted(ids)})
        elif write.step is Step.SOFT_DELETE and now is not None:
            objects[write.key] = replace(now, lifecycle=Lifecycle.SOFT_DELETED)
            vanished.add(fold_id(write.object_id))
        elif write.step is Step.DELETE:
            objects.pop(write.key, None)
            vanished.add(fold_id(write.object_id))
    if vanished or returned:
        _settle_memberships(registry, objects, source, vanished, returned)
    # replace, not a new TenantState: a partial live state stays partial, with its counts of the rest.
    return replace(live, objects=MappingProxyType(objects))


def _settle_memberships(
    registry: Registry,
    objects: dict[tuple[str, str], ObjectState],
    source: TenantState,
    vanished: set[str],
    returned: set[str],
) -> None:
    """Drop deleted objects from every link, and give restored ones back the links the source shows them in."""
    for key, obj in list(objects.items()):
        links = registry.get(obj.type_name).links
        if not links or obj.lifecycle is not Lifecycle.ACTIVE:
            continue
        was = source.get(*key)
        changed: dict[str, Any] = {}
        for prop in links:
            ids = {fold_id(str(i)) for i in obj.data.get(prop.name) or ()}
            in_source = {fold_id(str(i)) for i in was.data.get(prop.name) or ()} if was else set()
            settled = (ids - vanished) | (in_source & returned)
            if settled != ids:
                changed[prop.name] = sorted(settled)
        if changed:
            objects[key] = _with(obj, changed)
