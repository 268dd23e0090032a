"""Plan steps: the kinds of write recovery makes, the Graph request each derives, and the check that binds a step
to its source (pure).

A step names what to do (its kind, type, object id, property changes, link target), never how: the method,
path and body are derived from it through the registry, the same way when the plan is made and when it is
applied. A plan file's stored request is only shown to reviewers; apply re-derives it and refuses the plan when
the two differ, and `check_step` refuses a step that recovery to the plan's source would not make.
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from entra_gitops.model.frozen import strings_in, thaw
from entra_gitops.model.ids import fold_id, graph_path, is_guid
from entra_gitops.model.registry import PropertySpec, Registry, ResourceType, Scope
from entra_gitops.model.tenant import Lifecycle, ObjectState, TenantState
from entra_gitops.report.diff import compare_objects, property_blocker
from entra_gitops.state.paths import UnsafeIdError, validate_object_id

# Plans always spell link references with the global endpoint, so a plan reads the same wherever it was made;
# apply swaps in the endpoint it talks to.
CANONICAL_BASE = "https://graph.microsoft.com/v1.0"


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
LINK_STEPS = frozenset({Step.ADD_LINK, Step.REMOVE_LINK})
# Writes that take something away from the tenant: what the safety thresholds count.
DESTRUCTIVE = frozenset({Step.UPDATE, Step.ACTION, Step.ADD_LINK, Step.REMOVE_LINK, Step.SOFT_DELETE, Step.DELETE})
IRREVERSIBLE = frozenset({Step.DELETE})


@dataclass(frozen=True)
class Request:
    """One Graph request, derived from a step: a method, a path relative to /v1.0/, and a JSON body."""

    method: str
    path: str
    body: Any = None


@dataclass(frozen=True)
class Write:
    """One step of a plan: the object it is for, what it changes, and the request derived from it."""

    step: Step
    type_name: str
    object_id: str
    display: str | None
    request: Request
    changes: tuple[tuple[str, Any, Any], ...] = ()  # (property, now, after the write)
    fingerprint: str = "absent"
    link: str | None = None  # link steps: the relationship
    target: str | None = None  # link steps: the linked object's id
    item: str | None = None  # keyed configurations of a singleton: the item's key

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def path(self) -> str:
        return self.request.path

    @property
    def body(self) -> Any:
        return self.request.body

    @property
    def key(self) -> tuple[str, str]:
        return (self.type_name, self.object_id)

    @property
    def irreversible(self) -> bool:
        return self.step in IRREVERSIBLE


class StepError(ValueError):
    """A step that no recovery makes: its request cannot be derived, or its values are not the source's."""


def unset(prop: PropertySpec) -> Any:
    """What PATCH sends to clear a property the source does not have."""
    return [] if prop.is_array else None


def target_value(prop: PropertySpec, source: ObjectState) -> Any:
    """The value recovery writes for `prop`: the source's, or the property's unset value."""
    value = source.data.get(prop.name)
    return thaw(value) if value is not None else unset(prop)


def link_ids(obj: ObjectState | None, name: str) -> frozenset[str]:
    """The ids an object's link holds, folded as diff compares them."""
    if obj is None:
        return frozenset()
    return frozenset(fold_id(str(i)) for i in obj.data.get(name) or ())


def keyed_item(prop: PropertySpec, obj: ObjectState | None, key: str) -> Mapping[str, Any] | None:
    """One item of a keyed list (an authentication method configuration) by its key."""
    if obj is None:
        return None
    for item in obj.data.get(prop.name) or ():
        if isinstance(item, Mapping) and str(item.get(prop.item_key)) == key:
            return item
    return None


def item_path(rtype: ResourceType, object_id: str, data: Mapping[str, Any] | None) -> str:
    """One object's own path, the parent's id filled in for child types."""
    if rtype.singleton_path:
        return rtype.singleton_path
    if rtype.item is None:
        raise StepError(f"{rtype.name} objects have no item path in Graph")
    params = {"id": object_id}
    if rtype.parent is not None:
        parent = (data or {}).get(rtype.parent.param)
        if not isinstance(parent, str) or not parent:
            raise StepError(f"{rtype.name} {object_id} names no {rtype.parent.param}")
        params[rtype.parent.param] = parent
    return graph_path(rtype.item, **params)


@functools.cache
def _validator(type_name: str, prop_name: str, schema_text: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        json.loads(schema_text), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def check_value(rtype: ResourceType, prop: PropertySpec, value: Any) -> None:
    """Refuse a value the property's schema does not allow: the same schema `validate` checks files with."""
    schema = json.dumps(thaw(prop.schema), sort_keys=True)
    error = jsonschema.exceptions.best_match(_validator(rtype.name, prop.name, schema).iter_errors(value))
    if error is not None and value != unset(prop):
        raise StepError(f"{rtype.name}.{prop.name}: {error.message}")


def _recover_property(rtype: ResourceType, name: str) -> PropertySpec:
    prop = rtype.prop(name)
    if prop is None:
        raise StepError(f"{rtype.name} has no property {name!r}")
    if prop.scope is not Scope.RECOVER or prop.read_only:
        raise StepError(f"{rtype.name}.{name} is not a property recovery writes (only `recover` properties are)")
    return prop


def derive_request(
    registry: Registry,
    write: Write,
    source: ObjectState | None,
    live: ObjectState | None,
    base: str = CANONICAL_BASE,
) -> Request:
    """The Graph request a step makes, from its typed values and the registry; StepError when there is none."""
    rtype = registry.get(write.type_name)
    step = write.step
    if step is Step.RESTORE:
        if rtype.soft_delete is None:
            raise StepError(f"{rtype.name} objects cannot be restored: the type has no soft delete")
        return Request("POST", graph_path(rtype.soft_delete.restore_path, id=write.object_id))
    if step in (Step.SOFT_DELETE, Step.DELETE):
        if (step is Step.SOFT_DELETE) != (rtype.soft_delete is not None):
            wanted = "soft-deleted" if rtype.soft_delete else "deleted, with --allow-delete"
            raise StepError(f"{rtype.name} objects are {wanted}, not by a {step.value} step")
        if rtype.singleton:
            raise StepError(f"{rtype.name} is a singleton: it is never deleted")
        return Request("DELETE", item_path(rtype, write.object_id, (live or source).data if live or source else None))
    if step is Step.CREATE and rtype.recreate_as_new is not None:
        return _recreation(rtype, source)
    if step is Step.CREATE:
        if not rtype.recreate or rtype.collection is None or source is None:
            raise StepError(f"{rtype.name} objects are not re-created by recovery")
        params = {}
        if rtype.parent is not None:
            params[rtype.parent.param] = str(source.data.get(rtype.parent.param, ""))
        body = {k: thaw(v) for k, v in source.data.items() if k not in rtype.server_generated and k != "id"}
        return Request("POST", graph_path(rtype.collection, **params), body)
    if step in LINK_STEPS:
        # An object created again gets every link it had (its owners too, which recovery otherwise only tracks):
        # it is the only kind of object a link is added to while it is absent live.
        recreating = step is Step.ADD_LINK and rtype.recreate_as_new is not None and live is None and source is not None
        tracked = rtype.prop(write.link or "")
        if recreating and tracked is not None and tracked.link is not None and tracked.scope is Scope.TRACK:
            prop = tracked
        else:
            prop = _recover_property(rtype, write.link or "")
        if prop.link is None or not write.target:
            raise StepError(f"{rtype.name}.{write.link} is not a link, or the step names no linked object")
        if step is Step.ADD_LINK:
            reference = {"@odata.id": f"{base}/directoryObjects/{graph_path('{t}', t=write.target)}"}
            return Request("POST", graph_path(prop.link.add_path, id=write.object_id), reference)
        return Request("DELETE", graph_path(prop.link.remove_path, id=write.object_id, linkId=write.target))
    if not write.changes:
        raise StepError(f"an {step.value} step must change at least one property")
    if step is Step.ACTION:
        (name, _, after), *more = write.changes
        prop = _recover_property(rtype, name)
        if more or prop.write_action is None:
            raise StepError(f"{rtype.name}.{name} is not written through an action")
        check_value(rtype, prop, after)
        return Request("POST", graph_path(prop.write_action, id=write.object_id), {prop.name: after})
    if write.item is not None:
        (name, _, after), *more = write.changes
        prop = _recover_property(rtype, name)
        if more or not rtype.singleton_path or prop.item_key is None or not isinstance(after, Mapping):
            raise StepError(f"{rtype.name}.{name} has no keyed items to update")
        if prop.recover_items is not None and write.item not in prop.recover_items:
            raise StepError(f"{rtype.name}.{name}[{write.item}] is tracked, not recovered")
        body = {k: v for k, v in after.items() if k != prop.item_key}
        return Request("PATCH", f"{rtype.singleton_path}/{prop.name}/{graph_path('{k}', k=write.item)}", body)
    body: dict[str, Any] = {}
    for name, _, after in write.changes:
        prop = _recover_property(rtype, name)
        if prop.link is not None or prop.write_action or (prop.item_key and rtype.singleton_path):
            raise StepError(f"{rtype.name}.{name} is not written by PATCH")
        check_value(rtype, prop, after)
        body[name] = after
    if rtype.subtypes:
        # Graph needs the concrete type on a PATCH of a subtyped object (named locations).
        odata_type = (live or source).data.get("@odata.type") if live or source else None
        if odata_type not in {f"#{t}" for t in rtype.subtypes}:
            raise StepError(f"{rtype.name} {write.object_id}: cannot tell its concrete @odata.type")
        body = {"@odata.type": odata_type, **body}
    data = (live or source).data if live or source else None
    if data is not None and rtype.kind_of(data):
        # An agent object is written as its base type is, at the base item path: Graph documents
        # PATCH /servicePrincipals/{id}/microsoft.graph.agentIdentity, and /servicePrincipals/{id} addresses
        # the same object. The body states the object's own kind: agentuser-update requires it for agent users,
        # and naming an object's own type is valid OData for every kind.
        body = {"@odata.type": data["@odata.type"], **body}
    return Request("PATCH", item_path(rtype, write.object_id, data), body)


def _recreation(rtype: ResourceType, source: ObjectState | None) -> Request:
    """The create of an object gone from Graph, from the backup: its `recover` properties and what Graph requires
    (createRequires). Its links are written after it, and a password is added only as apply sends it."""
    if source is None or rtype.collection is None:
        raise StepError(f"{rtype.name}: nothing in the source to re-create")
    if rtype.kind_of(source.data) is not None:
        raise StepError(f"{rtype.kind_of(source.data)} objects are not re-created: their identity is another's")
    writable = {
        p.name
        for p in rtype.properties
        if p.scope is Scope.RECOVER and not p.read_only and p.link is None and not p.write_action
    }
    spec = rtype.recreate_as_new
    assert spec is not None
    writable.update(spec.also)
    if rtype.subtypes:
        writable.add("@odata.type")  # Graph creates a subtyped object (a named location) as its concrete type
    body = {k: thaw(v) for k, v in source.data.items() if k in writable or k in rtype.create_requires}
    body.update(thaw(spec.staged))  # a policy is created disabled: a later step sets the backup's state
    if spec.password:
        # The password is apply's to make, as it sends the create: no plan, file or journal ever holds it.
        body["passwordProfile"] = {"forceChangePasswordNextSignIn": True}
    missing = [name for name in rtype.create_requires if name not in body]
    if missing:
        raise StepError(f"the backup holds no {', '.join(missing)}, which Graph requires to create a {rtype.name}")
    return Request("POST", rtype.collection, body)


def check_id(rtype: ResourceType, object_id: str) -> None:
    """Refuse an id that could not be one of this type's (a path segment, a traversal, a GUID type's non-GUID)."""
    try:
        validate_object_id(object_id)
    except UnsafeIdError as err:
        raise StepError(str(err)) from None
    id_spec = rtype.prop("id")
    if id_spec is not None and id_spec.schema.get("format") == "uuid" and not is_guid(object_id):
        raise StepError(f"{rtype.name} ids are GUIDs, not {object_id!r}")


def check_step(
    registry: Registry,
    write: Write,
    source: TenantState,
    live: TenantState,
    *,
    allow_delete: bool,
    touched: bool = False,
    recreate: bool = False,
    recreated: frozenset[str] = frozenset(),
) -> None:
    """Refuse a step that recovery to `source` would not make from `live` (StepError says why).

    `touched` is for a rerun: an object an earlier run of the plan already wrote has moved on purpose,
    so only what the step writes is checked, not what it says the object holds now. `recreate`: the plan was
    made with --recreate; `recreated` are the (folded) ids of the objects it creates again with new ids.
    """
    rtype = registry.get(write.type_name)
    check_id(rtype, write.object_id)
    was = source.get(write.type_name, write.object_id)
    now = live.get(write.type_name, write.object_id)
    active = was is not None and was.lifecycle is Lifecycle.ACTIVE
    for obj in (was, now):
        if obj is not None and rtype.is_synchronized(obj.data):
            raise StepError("the object is synchronised from on-premises: recovery never writes it")
    step = write.step
    if step in (Step.RESTORE, Step.CREATE, Step.UPDATE, Step.ACTION, *LINK_STEPS) and not active:
        raise StepError(f"the source has no active {rtype.name} {write.object_id} to recover")
    if step in (Step.SOFT_DELETE, Step.DELETE) and active:
        raise StepError(f"the source holds {rtype.name} {write.object_id}: recovery keeps it")
    if step is Step.DELETE and not allow_delete:
        raise StepError("a permanent delete, but the plan was not made with --allow-delete")
    if step is Step.CREATE and rtype.recreate_as_new is not None and not recreate:
        raise StepError(f"a re-creation of a {rtype.name} with a new id, but the plan was not made with --recreate")
    if step is Step.CREATE:
        assert was is not None
        if now is not None:
            raise StepError("the relationship exists: nothing to re-create")
        if rtype.recover_when and not all(was.data.get(k) == v for k, v in rtype.recover_when.items()):
            raise StepError("outside the recovery scope (for example a user-consented grant)")
    if step in LINK_STEPS:
        wanted = fold_id(write.target or "") in link_ids(was, write.link or "")
        if wanted != (step is Step.ADD_LINK):
            raise StepError(f"the source {'lacks' if step is Step.ADD_LINK else 'has'} that {write.link} link")
    if step in (Step.UPDATE, Step.ACTION):
        assert was is not None
        _check_changes(rtype, write, was, now, touched, recreated)


def _check_changes(
    rtype: ResourceType,
    write: Write,
    was: ObjectState,
    now: ObjectState | None,
    touched: bool,
    recreated: frozenset[str] = frozenset(),
) -> None:
    for name, said_now, after in write.changes:
        prop = rtype.prop(name)
        if prop is None:
            raise StepError(f"{rtype.name} has no property {name!r}")
        subject = now or was
        if property_blocker(rtype, prop, subject) is not None:
            raise StepError(f"{rtype.name}.{name} is not written back for this object")
        if write.item is not None:
            expected = keyed_item(prop, was, write.item)
            current = keyed_item(prop, now, write.item)
            if expected is None or thaw(expected) != after:
                raise StepError(f"{name}[{write.item}] is not what the source holds")
            if not touched and thaw(current) != said_now:
                raise StepError(f"{name}[{write.item}]: the plan's 'now' is not what the tenant holds")
            continue
        if after != target_value(prop, was):
            raise StepError(f"{name}: the plan writes {after!r}, but the source holds {target_value(prop, was)!r}")
        if not touched and now is not None:
            current = now.data.get(name)
            if (thaw(current) if current is not None else None) != said_now:
                raise StepError(f"{name}: the plan's 'now' is not what the tenant holds")
    if not touched and now is not None and write.item is None:
        # The written properties must be ones that differ: a step never rewrites what already matches.
        props, _ = compare_objects(rtype, was, now)
        # A property naming an object re-created with a new id is written although it matches: apply moves it.
        differing = {p.name for p in props} | {
            name for name, _, after in write.changes if any(fold_id(i) in recreated for i in strings_in(after))
        }
        if not {name for name, _, _ in write.changes} <= differing:
            raise StepError("the step writes properties that already match the source")
