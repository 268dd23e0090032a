"""The registry of resource types: schemas/ loaded into immutable specs, the one source of type facts."""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from entra_gitops.model.errors import SchemaError, UnknownTypeError
from entra_gitops.model.frozen import freeze
from entra_gitops.model.ids import fold_id

SCHEMA_SUFFIX = ".schema.json"


class Scope(enum.Enum):
    """What entra-gitops does with a property."""

    KEY = "key"
    RECOVER = "recover"
    TRACK = "track"


class ThrottleScope(enum.Enum):
    """Which of Graph's throttling budgets a type's requests draw on."""

    IDENTITY = "identity"
    CONDITIONAL_ACCESS = "conditionalAccess"


@dataclass(frozen=True)
class LinkSpec:
    """A relationship stored as a sorted list of object ids (group members, owners)."""

    list_path: str
    add_path: str
    remove_path: str
    read_cost: int
    delta: bool = False
    read_only_when: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))  # dynamic groups' members

    read_when: tuple[Mapping[str, Any], ...] = ()  # read only for owners matching one of these; () for all
    expand: bool = False  # the owner type's list expands it: owners are listed with their links, 100 a page

    @property
    def by_expansion(self) -> bool:
        """Read through the owners' lists with the link expanded (a link delta tracks comes with delta instead)."""
        return self.expand and not self.delta

    def is_read_only(self, owner: Mapping[str, Any]) -> bool:
        """True when Graph refuses to change this link of `owner` (a dynamic group's members)."""
        return _matches(owner, self.read_only_when)

    def is_read_for(self, owner: Mapping[str, Any]) -> bool:
        """Whether a snapshot reads this link of `owner` (one request per owner is kept to the owners it matters for)."""
        return not self.read_when or any(_matches(owner, condition) for condition in self.read_when)


@dataclass(frozen=True)
class PropertySpec:
    """One property of a type: its scope and how Graph treats it."""

    name: str
    scope: Scope
    read_only: bool
    is_set: bool
    item_key: str | None
    link: LinkSpec | None
    write_action: str | None
    recover_items: tuple[str, ...] | None
    is_array: bool
    schema: Mapping[str, Any]
    refs: tuple[str, ...] = ()  # the types whose ids this property holds (x-entra-ref)


@dataclass(frozen=True)
class SoftDeleteSpec:
    """Where a type's soft-deleted objects are listed, read and restored."""

    list_path: str
    item_path: str
    restore_path: str
    renames: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # rewritten while deleted
    takes_with: tuple[str, ...] = ()  # relationship types that leave with the object and come back with its restore

    def original(self, name: str, object_id: str, value: Any) -> Any:
        """A renamed property's value as it was before the delete (Graph gives it back on restore)."""
        if self.renames.get(name) == "idPrefix" and isinstance(value, str):
            prefix = object_id.replace("-", "")
            return value[len(prefix) :] if value.lower().startswith(prefix.lower()) else value
        return value


class RecreateSpec(NamedTuple):
    """How `plan --recreate` makes a gone object again with a new id (x-entra-graph.recreateAsNew)."""

    find_by: str  # the property that finds what an interrupted apply created, so nothing is created twice
    password: bool  # Graph requires a password on create: apply generates one, written nowhere
    staged: Mapping[str, Any] = MappingProxyType({})  # created with these values, set to the backup's after
    also: tuple[str, ...] = ()  # tracked properties written too: the object is not whole without them


@dataclass(frozen=True)
class UniqueKey:
    """A property no two live objects of a type may share (a restore fails while another object holds it)."""

    name: str
    when: Mapping[str, Any]

    def value_of(self, obj: Mapping[str, Any]) -> str | None:
        """The key's value, folded as Graph compares it; None when the object holds none or the key does not apply."""
        value = obj.get(self.name)
        if not isinstance(value, str) or not value or not _matches(obj, self.when, vacuous=True):
            return None
        return value.lower()


@dataclass(frozen=True)
class ParentSpec:
    """A child collection's parent type, the path parameter that names it, and the parent's navigation property
    Graph expands in its own list (then one paged list reads the children of every parent)."""

    type_name: str
    param: str
    expand: str | None = None


class Access(enum.Enum):
    """What a job does with a type: reads it, or also writes it back."""

    READ = "read"
    WRITE = "write"


# The Graph operations a permission need covers (x-entra-permissions), by the access they are.
# Link operations are spelt `<link property>.list|add|remove` (`members.add`).
READ_OPERATIONS = ("list", "get", "delta", "deletedList", "deletedGet")
WRITE_OPERATIONS = ("create", "update", "delete", "restore", "purge", "action")
LINK_OPERATIONS = MappingProxyType({"list": Access.READ, "add": Access.WRITE, "remove": Access.WRITE})


@dataclass(frozen=True)
class PermissionNeed:
    """One thing done with a type: the Graph operations it covers and the permissions that allow it, least first."""

    access: Access
    reason: str
    any_of: tuple[str, ...]
    operations: tuple[str, ...]
    properties: tuple[str, ...] = ()  # only requests that read ($select, $filter) or write one of these
    when: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))  # only objects matching this
    always: bool = False  # every command makes it, whatever the scope: the tenant identity type's list read
    listed: bool = True  # False: Graph's rule for an operation entra-gitops never makes (enforced, not listed)
    note: str | None = None  # the Graph pages it comes from

    def covers(self, operation: str, obj: Mapping[str, Any] | None, touched: frozenset[str] | None) -> bool:
        """True when a request doing `operation` on `obj`, reading or writing `touched`, needs this."""
        if operation not in self.operations:
            return False
        if self.when and (obj is None or not _matches(obj, self.when)):
            return False
        return not self.properties or touched is None or bool(touched & set(self.properties))

    def allowed_by(self, granted: frozenset[str]) -> bool:
        """True when one of the permissions `granted` allows it."""
        return any(p in granted for p in self.any_of)


@dataclass(frozen=True)
class RoleRequirement:
    """A write Graph allows only to a caller that also holds a Microsoft Entra directory role."""

    operations: tuple[str, ...]
    roles: tuple[str, ...]  # least privileged first
    context: str  # "application", "delegated" or "any"
    target: str  # which objects, in words
    reason: str
    properties: tuple[str, ...] = ()  # only writes of one of these
    when: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    note: str | None = None


ROLE_CONTEXTS = ("application", "delegated", "any")


@dataclass(frozen=True)
class ResourceType:
    """Everything the code may know about one resource type, read from its schema."""

    name: str
    folder: str
    display: str | None
    odata_type: str
    subtypes: tuple[str, ...]
    collection: str | None
    item: str | None
    parent: ParentSpec | None
    singleton: bool
    singleton_path: str | None
    alternate_keys: tuple[str, ...]
    soft_delete: SoftDeleteSpec | None
    delta: str | None
    read_cost: int
    throttle_scope: ThrottleScope
    default_select: tuple[str, ...] | None
    server_generated: Mapping[str, str]
    synchronized_when: Mapping[str, Any]
    read_only_when: Mapping[str, Any]
    recover_when: Mapping[str, Any]
    not_reachable: tuple[str, ...]
    recreate: bool
    properties: tuple[PropertySpec, ...]
    schema_path: Path
    unique_keys: tuple[UniqueKey, ...] = ()
    stale_references: bool = False  # Graph keeps ids of objects deleted since (Conditional Access)
    lookup_by: tuple[str, ...] = ()  # filterable properties that find an existing relationship before a create
    kept_while_referenced: bool = False  # a delete is refused while a policy names the object (named locations)
    undeletable_when: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))  # trusted locations
    permissions: tuple[PermissionNeed, ...] = ()  # x-entra-permissions.needs
    directory_roles: tuple[RoleRequirement, ...] = ()  # x-entra-permissions.directoryRoles
    kinds: tuple[str, ...] = ()  # optional derived Graph types served in this collection, tagged by @odata.type
    tenant_identity: bool = False  # its one object's id is the tenant's: the tenant check reads it before every command
    countable: bool = False  # Graph counts its collection (`$count`, ConsistencyLevel: eventual): a progress total
    recreate_as_new: RecreateSpec | None = None  # plan --recreate makes it again, with a new id, when it is gone
    create_requires: tuple[str, ...] = ()  # what Graph requires in a create's body
    track_only: bool = False  # reported, never written: every change is "tracked, not recovered"
    privileged: frozenset[str] = frozenset()  # folded ids of its objects Microsoft labels privileged (roles)
    lockout_roles: frozenset[str] = frozenset()  # roles the lockout guard keeps a usable holder of
    privileged_by: str | None = None  # the property naming the role whose privilege makes an object privileged
    removal: str | None = None  # how a plan names a permanent delete of one ("remove role assignment")

    def kind_of(self, obj: Mapping[str, Any]) -> str | None:
        """The kind an object is (`agentIdentity`) by its @odata.type; None for a plain object of the type."""
        stated = obj.get("@odata.type")
        if not self.kinds or not isinstance(stated, str):
            return None
        name = stated.removeprefix("#")
        return name.rsplit(".", 1)[-1] if name in self.kinds else None

    def needs_for(
        self, operation: str, obj: Mapping[str, Any] | None = None, touched: frozenset[str] | None = None
    ) -> tuple[PermissionNeed, ...]:
        """The needs a request doing `operation` on `obj` meets: each must be allowed by one of its permissions."""
        return tuple(n for n in self.permissions if n.covers(operation, obj, touched))

    @functools.cached_property
    def _by_name(self) -> Mapping[str, PropertySpec]:
        return MappingProxyType({p.name: p for p in self.properties})

    def prop(self, name: str) -> PropertySpec | None:
        """The property called `name`, or None when the schema does not name it."""
        return self._by_name.get(name)

    @property
    def links(self) -> tuple[PropertySpec, ...]:
        """Relationship properties, read from their own Graph paths."""
        return tuple(p for p in self.properties if p.link is not None)

    def reads_links_of(self, owner: Mapping[str, Any]) -> bool:
        """Whether a full read reads any link of `owner`: every owner's where delta tracks the link, else the
        owners its read conditions match."""
        return any((p.link.delta and self.delta is not None) or p.link.is_read_for(owner) for p in self.links if p.link)

    @property
    def select(self) -> tuple[str, ...]:
        """The `$select` list that reads every exported, non-link property."""
        return tuple(p.name for p in self.properties if p.link is None and p.name != "@odata.type")

    @property
    def read_path(self) -> str:
        """The path that reads this type: a collection, or a singleton's own path."""
        path = self.singleton_path or self.collection
        assert path is not None, f"{self.name} has neither a collection nor a singleton path"
        return path

    @property
    def references(self) -> tuple[PropertySpec, ...]:
        """Top-level properties and links that hold other objects' ids."""
        return tuple(p for p in self.properties if p.refs)

    @functools.cached_property
    def referenced_types(self) -> frozenset[str]:
        """Every type whose ids this type's objects may hold, at any depth, its parent's included."""
        names = {name for p in self.properties for name in _schema_refs(p.schema)}
        if self.parent is not None:
            names.add(self.parent.type_name)
        return frozenset(names)

    @property
    def is_directory_object(self) -> bool:
        """True for types whose soft-deleted objects live in `directory/deletedItems`."""
        return self.soft_delete is not None and self.soft_delete.list_path.startswith("directory/")

    def is_synchronized(self, obj: Mapping[str, Any]) -> bool:
        """True when `obj` is mastered on-premises and so must never be written."""
        return _matches(obj, self.synchronized_when)

    def is_read_only(self, obj: Mapping[str, Any]) -> bool:
        """True when Graph refuses any change to `obj` (built-in policies)."""
        return _matches(obj, self.read_only_when)

    def is_undeletable(self, obj: Mapping[str, Any]) -> bool:
        """True when Graph refuses to delete `obj` as it stands (a location marked as trusted)."""
        return _matches(obj, self.undeletable_when)


def _schema_refs(schema: Mapping[str, Any]) -> set[str]:
    """The type names every x-entra-ref inside a property's schema names."""
    found = set(schema.get("x-entra-ref") or ())
    for sub in (schema.get("properties") or {}).values():
        found |= _schema_refs(sub)
    if isinstance(schema.get("items"), Mapping):
        found |= _schema_refs(schema["items"])
    return found


def _matches(obj: Mapping[str, Any], condition: Mapping[str, Any], *, vacuous: bool = False) -> bool:
    """Whether `obj` has every value `condition` names; `{"contains": x}` asks a list for one item."""
    if not condition:
        return vacuous
    return all(_holds(obj.get(k), v) for k, v in condition.items())


def _holds(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, Mapping) and set(wanted) == {"contains"}:
        return isinstance(value, list | tuple) and wanted["contains"] in value
    return value == wanted


class Registry:
    """All resource types, by name and by folder, in a stable order."""

    def __init__(self, types: tuple[ResourceType, ...]) -> None:
        self._types = MappingProxyType({t.name: t for t in sorted(types, key=lambda t: t.name)})
        self._by_folder = MappingProxyType({t.folder: t for t in types})

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(self._types.values())

    def __len__(self) -> int:
        return len(self._types)

    def __contains__(self, name: object) -> bool:
        return name in self._types

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._types)

    def get(self, name: str) -> ResourceType:
        """The type called `name`; an unknown name is an error that suggests the closest one."""
        try:
            return self._types[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._types, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known types: {', '.join(self._types)}"
            raise UnknownTypeError(f"unknown resource type {name!r}", hint=hint) from None

    def expanded_child(self, parent: ResourceType, name: str) -> ResourceType | None:
        """The child type whose objects `parent`'s list expands as `name` (appRoleAssignedTo), if any."""
        return next(
            (t for t in self if t.parent and t.parent.type_name == parent.name and t.parent.expand == name),
            None,
        )

    @functools.cached_property
    def privileged_roles(self) -> frozenset[str]:
        """The folded ids of every role Microsoft labels privileged, from the schemas that list them."""
        return frozenset().union(*(t.privileged for t in self))

    @functools.cached_property
    def lockout_roles(self) -> frozenset[str]:
        """The folded ids of the roles the lockout guard keeps a usable holder of (Global Administrator)."""
        return frozenset().union(*(t.lockout_roles for t in self))

    def is_privileged(self, rtype: ResourceType, data: Mapping[str, Any]) -> bool:
        """Whether an object gives a privileged role: an assignment of one, or an eligibility for one."""
        role = data.get(rtype.privileged_by) if rtype.privileged_by else None
        return isinstance(role, str) and fold_id(role) in self.privileged_roles

    def by_folder(self, folder: str) -> ResourceType | None:
        """The type whose files live in `tenant-state/<folder>`."""
        return self._by_folder.get(folder)

    def tenant_identity(self) -> ResourceType:
        """The one type whose object's id is the tenant id (organization), as its schema flags it."""
        found = [t for t in self if t.tenant_identity]
        if len(found) != 1:
            raise SchemaError(f"exactly one schema must set x-entra-graph.tenantIdentity; found {len(found)}")
        return found[0]

    def select(self, names: tuple[str, ...] | list[str] | None) -> tuple[ResourceType, ...]:
        """The types named (all when none are), validated."""
        if not names:
            return tuple(self)
        return tuple(self.get(n) for n in dict.fromkeys(names))


def schemas_dir() -> Path:
    """Where the schemas are: inside the installed package, or beside it in a checkout."""
    package = Path(__file__).resolve().parent.parent
    here = package
    for candidate in (package / "schemas", package.parent / "schemas"):
        if candidate.is_dir() and any(candidate.glob(f"*{SCHEMA_SUFFIX}")):
            return candidate
    raise SchemaError(f"no resource-type schemas found in {here / 'schemas'} or {here.parent / 'schemas'}")


def _property(name: str, raw: Mapping[str, Any], where: str) -> PropertySpec:
    try:
        scope = Scope(raw["x-entra-scope"])
    except (KeyError, ValueError):
        raise SchemaError(f"{where}: property {name!r} needs x-entra-scope key, recover or track") from None
    link = raw.get("x-entra-link")
    json_type = raw.get("type")
    types = json_type if isinstance(json_type, list) else [json_type]
    return PropertySpec(
        name=name,
        scope=scope,
        read_only=bool(raw.get("readOnly", False)),
        is_set=bool(raw.get("x-entra-set", False)),
        item_key=raw.get("x-entra-key"),
        link=LinkSpec(
            link["list"],
            link["add"],
            link["remove"],
            int(link.get("readCost", 1)),
            bool(link.get("delta")),
            freeze(link.get("readOnlyWhen", {})),
            tuple(freeze(c) for c in link.get("readWhen", ())),
            bool(link.get("expand")),
        )
        if link
        else None,
        write_action=(raw.get("x-entra-write") or {}).get("action"),
        recover_items=tuple(raw["x-entra-recover-items"]) if "x-entra-recover-items" in raw else None,
        is_array="array" in types,
        schema=freeze(raw),
        refs=tuple(raw.get("x-entra-ref") or (raw.get("items") or {}).get("x-entra-ref") or ()),
    )


_NEED_KEYS = frozenset({"access", "reason", "anyOf", "operations", "properties", "when", "listed", "x-entra-note"})
_ROLE_KEYS = frozenset({"operations", "roles", "context", "target", "reason", "properties", "when", "x-entra-note"})


def _strings(value: Any, where: str, *, empty: bool = False) -> tuple[str, ...]:
    """A list of distinct non-empty strings, or SchemaError."""
    if not isinstance(value, list) or (not value and not empty):
        raise SchemaError(f"{where}: must be a {'' if empty else 'non-empty '}list of strings")
    if not all(isinstance(v, str) and v.strip() for v in value) or len(set(value)) != len(value):
        raise SchemaError(f"{where}: must hold distinct, non-empty strings")
    return tuple(value)


def _sentence(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or "\n" in value:
        raise SchemaError(f"{where}: must be one line of text")
    return value


def _operations(value: Any, properties: Mapping[str, Any], where: str) -> dict[str, Access]:
    """Each operation a need or role requirement names, with the access it is; unknown names are errors."""
    found: dict[str, Access] = {}
    for name in _strings(value, where):
        link, dot, verb = name.partition(".")
        if name in READ_OPERATIONS or name in WRITE_OPERATIONS:
            found[name] = Access.READ if name in READ_OPERATIONS else Access.WRITE
        elif dot and verb in LINK_OPERATIONS and "x-entra-link" in (properties.get(link) or {}):
            found[name] = LINK_OPERATIONS[verb]
        else:
            known = ", ".join((*READ_OPERATIONS, *WRITE_OPERATIONS, "<link>.list", "<link>.add", "<link>.remove"))
            raise SchemaError(f"{where}: unknown operation {name!r} (known: {known}, for a link property)")
    return found


def _named_properties(value: Any, properties: Mapping[str, Any], where: str) -> tuple[str, ...]:
    names = _strings(value, where)
    unknown = [n for n in names if n not in properties]
    if unknown:
        raise SchemaError(f"{where}: {', '.join(unknown)} not a property of this type")
    return names


def _condition(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not value:
        raise SchemaError(f"{where}: must be a non-empty object of property values")
    return freeze(value)


def _object_of(raw: Any, keys: frozenset[str] | set[str], where: str) -> Mapping[str, Any]:
    """An annotation that must be an object holding only `keys`."""
    if not isinstance(raw, Mapping):
        raise SchemaError(f"{where}: must be an object")
    unknown = set(raw) - set(keys)
    if unknown:
        raise SchemaError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    return raw


def _permission_need(raw: Any, properties: Mapping[str, Any], where: str) -> PermissionNeed:
    raw = _object_of(raw, _NEED_KEYS, where)
    try:
        access = Access(raw.get("access"))
    except ValueError:
        raise SchemaError(f"{where}.access: must be read or write") from None
    operations = _operations(raw.get("operations"), properties, f"{where}.operations")
    wrong = [op for op, kind in operations.items() if kind is not access]
    if wrong:
        raise SchemaError(f"{where}.operations: {', '.join(wrong)} not a {access.value} operation")
    if "listed" in raw and not isinstance(raw["listed"], bool):
        raise SchemaError(f"{where}.listed: must be true or false")
    return PermissionNeed(
        access=access,
        reason=_sentence(raw.get("reason"), f"{where}.reason"),
        any_of=_strings(raw.get("anyOf"), f"{where}.anyOf"),
        operations=tuple(operations),
        properties=_named_properties(raw["properties"], properties, f"{where}.properties")
        if "properties" in raw
        else (),
        when=_condition(raw["when"], f"{where}.when") if "when" in raw else MappingProxyType({}),
        listed=raw.get("listed", True),
        note=_sentence(raw["x-entra-note"], f"{where}.x-entra-note") if "x-entra-note" in raw else None,
    )


def _role_requirement(raw: Any, properties: Mapping[str, Any], where: str) -> RoleRequirement:
    raw = _object_of(raw, _ROLE_KEYS, where)
    operations = _operations(raw.get("operations"), properties, f"{where}.operations")
    if any(kind is not Access.WRITE for kind in operations.values()):
        raise SchemaError(f"{where}.operations: directory roles are recorded for writes only")
    if raw.get("context") not in ROLE_CONTEXTS:
        raise SchemaError(f"{where}.context: must be one of {', '.join(ROLE_CONTEXTS)}")
    return RoleRequirement(
        operations=tuple(operations),
        roles=_strings(raw.get("roles"), f"{where}.roles"),
        context=raw["context"],
        target=_sentence(raw.get("target"), f"{where}.target"),
        reason=_sentence(raw.get("reason"), f"{where}.reason"),
        properties=_named_properties(raw["properties"], properties, f"{where}.properties")
        if "properties" in raw
        else (),
        when=_condition(raw["when"], f"{where}.when") if "when" in raw else MappingProxyType({}),
        note=_sentence(raw["x-entra-note"], f"{where}.x-entra-note") if "x-entra-note" in raw else None,
    )


def _permission_fields(raw: Any, properties: Mapping[str, Any], where: str, tenant_identity: bool) -> dict[str, Any]:
    """ResourceType's permissions and directory_roles from x-entra-graph's x-entra-permissions (absent: none).

    The tenant identity type's list read is every command's need (the tenant check), whatever the scope.
    """
    if raw is None:
        return {}
    here = f"{where}: x-entra-graph.x-entra-permissions"
    if not isinstance(raw, Mapping) or set(raw) - {"needs", "directoryRoles", "x-entra-note"}:
        raise SchemaError(f"{here}: must be an object with needs and, optionally, directoryRoles")
    needs = raw.get("needs")
    if not isinstance(needs, list) or not needs:
        raise SchemaError(f"{here}.needs: must be a non-empty list")
    roles = raw.get("directoryRoles", [])
    if not isinstance(roles, list):
        raise SchemaError(f"{here}.directoryRoles: must be a list")
    return {
        "permissions": tuple(
            dataclasses.replace(
                need, always=tenant_identity and need.access is Access.READ and "list" in need.operations
            )
            for need in (_permission_need(n, properties, f"{here}.needs[{i}]") for i, n in enumerate(needs))
        ),
        "directory_roles": tuple(
            _role_requirement(r, properties, f"{here}.directoryRoles[{i}]") for i, r in enumerate(roles)
        ),
    }


def _flag(graph: Mapping[str, Any], key: str, where: str) -> bool:
    value = graph.get(key, False)
    if not isinstance(value, bool):
        raise SchemaError(f"{where}: x-entra-graph.{key}: must be true or false")
    return value


def _role_list(graph: Mapping[str, Any], key: str, where: str) -> frozenset[str]:
    """x-entra-graph.<key>.values: role ids (template ids of built-in roles), folded for comparing."""
    if key not in graph:
        return frozenset()
    values = _strings((graph[key] or {}).get("values"), f"{where}: x-entra-graph.{key}.values")
    return frozenset(fold_id(v) for v in values)


def _property_name(graph: Mapping[str, Any], key: str, properties: Mapping[str, Any], where: str) -> str | None:
    """x-entra-graph.<key>: one of the type's own properties, or absent."""
    name = graph.get(key)
    if name is not None and name not in properties:
        raise SchemaError(f"{where}: x-entra-graph.{key}: {name!r} is not a property of the type")
    return name


def _kinds(graph: Mapping[str, Any], properties: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """x-entra-graph.kinds, checked: Graph types, none a subtype, each named by the `@odata.type` property."""
    if "kinds" not in graph:
        return ()
    here = f"{where}: x-entra-graph.kinds"
    kinds = _strings(graph["kinds"], here)
    if not all(k.startswith("microsoft.graph.") for k in kinds):
        raise SchemaError(f"{here}: must name Graph types, like microsoft.graph.agentUser")
    if set(kinds) & {graph.get("odataType"), *graph.get("subtypes", ())}:
        raise SchemaError(f"{here}: a kind is neither the type itself nor one of its subtypes")
    # Normalization keeps @odata.type only where the schema names it, and so loses the kind without it.
    stated = set((properties.get("@odata.type") or {}).get("enum") or ())
    if not {f"#{k}" for k in kinds} <= stated:
        raise SchemaError(f"{here}: the '@odata.type' property must list each kind as '#microsoft.graph.…'")
    return kinds


def parse_schema(path: Path, raw: Mapping[str, Any]) -> ResourceType:
    """Build a ResourceType from one parsed schema file; malformed annotations raise SchemaError."""
    where = path.name
    try:
        graph = raw["x-entra-graph"]
        soft = graph.get("softDelete")
        parent = graph.get("parent")
        return ResourceType(
            name=raw["x-entra-type"],
            folder=raw["x-entra-folder"],
            display=raw.get("x-entra-display"),
            odata_type=graph["odataType"],
            subtypes=tuple(graph.get("subtypes", ())),
            collection=graph.get("collection"),
            item=graph.get("item"),
            parent=ParentSpec(parent["type"], parent["param"], parent.get("expand")) if parent else None,
            singleton=bool(graph.get("singleton", False)),
            singleton_path=graph.get("singletonPath"),
            alternate_keys=tuple(graph.get("alternateKeys", ())),
            soft_delete=SoftDeleteSpec(
                soft["list"],
                soft["item"],
                soft["restore"],
                freeze(soft.get("renames", {})),
                tuple(soft.get("takesWith", ())),
            )
            if soft
            else None,
            delta=graph.get("delta"),
            read_cost=int(graph.get("readCost", 1)),
            throttle_scope=ThrottleScope(graph.get("throttleScope", "identity")),
            default_select=tuple(graph["defaultSelect"]) if "defaultSelect" in graph else None,
            server_generated=freeze(graph.get("serverGenerated", {})),
            synchronized_when=freeze(graph.get("synchronizedWhen", {})),
            read_only_when=freeze(graph.get("readOnlyWhen", {})),
            recover_when=freeze(graph.get("recoverWhen", {})),
            not_reachable=tuple(raw.get("x-entra-not-reachable", ())),
            recreate=bool(graph.get("recreate", False)),
            properties=tuple(_property(n, p, where) for n, p in raw["properties"].items()),
            schema_path=path,
            unique_keys=tuple(UniqueKey(k["property"], freeze(k.get("when", {}))) for k in graph.get("uniqueKeys", ())),
            stale_references=bool(graph.get("staleReferences", False)),
            lookup_by=tuple(graph.get("lookupBy", ())),
            kept_while_referenced=bool(graph.get("keptWhileReferenced", False)),
            undeletable_when=freeze(graph.get("undeletableWhen", {})),
            kinds=_kinds(graph, raw["properties"], where),
            tenant_identity=_flag(graph, "tenantIdentity", where),
            countable=_flag(graph, "count", where),
            create_requires=tuple(graph.get("createRequires", ())),
            track_only=_flag(graph, "trackOnly", where),
            privileged=_role_list(graph, "privileged", where),
            lockout_roles=_role_list(graph, "lockoutRoles", where),
            privileged_by=_property_name(graph, "privilegedBy", raw["properties"], where),
            removal=graph.get("removal"),
            recreate_as_new=RecreateSpec(
                again["findBy"],
                bool(again.get("password", False)),
                freeze(again.get("stagedAs", {})),
                tuple(again.get("alsoWrites", ())),
            )
            if (again := graph.get("recreateAsNew"))
            else None,
            **_permission_fields(
                graph.get("x-entra-permissions"), raw["properties"], where, _flag(graph, "tenantIdentity", where)
            ),
        )
    except KeyError as missing:
        raise SchemaError(f"{where}: missing required annotation {missing}") from None
    except ValueError as bad:
        raise SchemaError(f"{where}: {bad}") from None


def load_schema_file(path: Path) -> Mapping[str, Any]:
    """Parse one schema file, turning JSON errors into SchemaError with line and column."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise SchemaError(f"{path}:{err.lineno}:{err.colno}: {err.msg}") from None


def load_registry(directory: Path | None = None) -> Registry:
    """Load every `*.schema.json` in `directory` (the shipped schemas by default)."""
    if directory is None:
        return default_registry()
    types = tuple(parse_schema(p, load_schema_file(p)) for p in sorted(directory.glob(f"*{SCHEMA_SUFFIX}")))
    if not types:
        raise SchemaError(f"no {SCHEMA_SUFFIX} files in {directory}")
    return Registry(types)


@functools.cache
def default_registry() -> Registry:
    """The registry of the schemas shipped with entra-gitops, loaded once."""
    return load_registry(schemas_dir())
