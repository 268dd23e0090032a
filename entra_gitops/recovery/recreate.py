"""Objects re-created with new ids (plan --recreate): which a plan makes, and every reference moved to the new id
(pure).

A plan names a re-created object by the id it had in the backup: Graph gives it a new one only when apply
creates it. Every write that names the old id (a group's member, a policy's exclusion, the object's own links)
is planned and reviewed with the old id, and apply sends it with the new one, which the journal keeps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from entra_gitops.model.frozen import freeze, strings_in, thaw
from entra_gitops.model.ids import fold_id
from entra_gitops.model.registry import Registry
from entra_gitops.model.tenant import ObjectState, TenantState
from entra_gitops.recovery.steps import Request, Step, Write
from entra_gitops.state.normalize import normalize_object


def recreated_ids(registry: Registry, writes: Iterable[Write]) -> frozenset[str]:
    """The (folded) backup ids of the objects a plan creates again with a new id."""
    return frozenset(
        fold_id(w.object_id)
        for w in writes
        if w.step is Step.CREATE and registry.get(w.type_name).recreate_as_new is not None
    )


def changing_ids(registry: Registry, write: Write, source: TenantState) -> dict[str, str]:
    """The ids besides its object id that change when `write` re-creates an object: its server-generated GUIDs
    (an application's appId), property -> the backup's value."""
    rtype = registry.get(write.type_name)
    was = source.get(write.type_name, write.object_id)
    if write.step is not Step.CREATE or rtype.recreate_as_new is None or was is None:
        return {}
    return {
        name: value
        for name, kind in rtype.server_generated.items()
        if kind == "uuid" and name != "id" and isinstance(value := was.data.get(name), str)
    }


def recreated_identifiers(registry: Registry, writes: Iterable[Write], source: TenantState) -> frozenset[str]:
    """Every (folded) id that changes with the plan's re-creations: their object ids and their appIds."""
    writes = tuple(writes)
    found = set(recreated_ids(registry, writes))
    for write in writes:
        found.update(fold_id(v) for v in changing_ids(registry, write, source).values())
    return frozenset(found)


def remap(value: Any, ids: Mapping[str, str]) -> Any:
    """`value` (JSON-like) with every string that is an old id replaced by its new id."""
    if isinstance(value, str):
        return ids.get(fold_id(value), value)
    if isinstance(value, Mapping):
        return {k: remap(v, ids) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [remap(v, ids) for v in value]
    return value


def remap_path(path: str, ids: Mapping[str, str]) -> str:
    """A Graph path with every segment that is an old id replaced by its new id."""
    return "/".join(ids.get(fold_id(segment), segment) for segment in path.split("/"))


def remap_write(write: Write, ids: Mapping[str, str]) -> Write:
    """The write as apply sends it: the new id wherever it names a re-created object (never its own create)."""
    if not ids or write.step is Step.CREATE and fold_id(write.object_id) in ids:
        return write
    request = Request(write.method, remap_path(write.path, ids), remap(write.body, ids))
    target = ids.get(fold_id(write.target), write.target) if write.target else write.target
    return replace(write, request=request, target=target)


def remap_object(registry: Registry, obj: ObjectState, ids: Mapping[str, str]) -> ObjectState:
    """An object of the source as it should stand after apply: its id and its references to re-created objects
    moved to the new ids, normalized again (a new id sorts elsewhere in a set-like list)."""
    if not ids:
        return obj
    rtype = registry.get(obj.type_name)
    moved = remap(thaw(obj.data), ids)
    data, _ = normalize_object(rtype, moved, {p.name: moved.get(p.name) or () for p in rtype.links})
    return replace(obj, id=ids.get(fold_id(obj.id), obj.id), data=MappingProxyType(freeze(data)))


def unresolved(write: Write, recreated: frozenset[str], ids: Mapping[str, str]) -> str | None:
    """The first re-created object a write names whose new id is not known (its create failed), or None."""
    path = () if write.step is Step.CREATE else write.path.split("/")  # a create's path is the collection's
    named = [write.target, *path, *strings_in(write.body)]
    return next((n for n in named if n and fold_id(n) in recreated and fold_id(n) not in ids), None)


def dependencies_first(writes: list[Write], recreated: frozenset[str]) -> list[Write]:
    """The writes in their order, but each create after the creates of the re-created objects its body names (a
    policy after the group it excludes, an assignment after its principal), so apply knows every new id it sends."""
    creates = [w for w in writes if w.step is Step.CREATE]
    if len(creates) < 2 or not recreated:
        return writes
    needs = {
        fold_id(w.object_id): {fold_id(s) for s in strings_in(w.body) if fold_id(s) in recreated}
        - {fold_id(w.object_id)}
        for w in creates
    }
    placed: list[Write] = []
    done: set[str] = set()
    waiting = list(creates)
    while waiting:
        ready = [w for w in waiting if needs[fold_id(w.object_id)] <= done] or waiting[:1]  # a cycle: as planned
        for write in ready:
            placed.append(write)
            done.add(fold_id(write.object_id))
            waiting.remove(write)
    first = writes.index(creates[0])
    rest = [w for w in writes if w not in creates]
    return rest[:first] + placed + rest[first:]
