"""The registry of resource types: schemas/ loaded into immutable specs, the one source of type facts."""

from __future__ import annotations

import difflib
import enum
import functools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from entra_gitops.errors import SchemaError, UnknownTypeError

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
    """A child collection's parent type and the path parameter that names it."""

    type_name: str
    param: str


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

    @property
    def referenced_types(self) -> frozenset[str]:
        """Every type whose ids this type's objects may hold, its parent's included."""
        names = {name for p in self.references for name in p.refs}
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


def _matches(obj: Mapping[str, Any], condition: Mapping[str, Any], *, vacuous: bool = False) -> bool:
    if not condition:
        return vacuous
    return all(obj.get(k) == v for k, v in condition.items())


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

    def by_folder(self, folder: str) -> ResourceType | None:
        """The type whose files live in `tenant-state/<folder>`."""
        return self._by_folder.get(folder)

    def select(self, names: tuple[str, ...] | list[str] | None) -> tuple[ResourceType, ...]:
        """The types named (all when none are), validated."""
        if not names:
            return tuple(self)
        return tuple(self.get(n) for n in dict.fromkeys(names))


def schemas_dir() -> Path:
    """Where the schemas are: inside the installed package, or beside it in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "schemas", here.parent / "schemas"):
        if candidate.is_dir() and any(candidate.glob(f"*{SCHEMA_SUFFIX}")):
            return candidate
    raise SchemaError(f"no resource-type schemas found in {here / 'schemas'} or {here.parent / 'schemas'}")


def freeze(value: Any) -> Any:
    """A read-only deep copy of parsed JSON: mappings become proxies, lists become tuples."""
    # Exact type checks first: this runs over every value of every object in a snapshot.
    kind = type(value)
    if kind is dict or kind is MappingProxyType or (kind is not str and isinstance(value, Mapping)):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if kind is list or kind is tuple:
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Frozen values back to plain dicts and lists (for JSON and request bodies): freeze's inverse."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


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
        link=LinkSpec(link["list"], link["add"], link["remove"], int(link.get("readCost", 1)), bool(link.get("delta")))
        if link
        else None,
        write_action=(raw.get("x-entra-write") or {}).get("action"),
        recover_items=tuple(raw["x-entra-recover-items"]) if "x-entra-recover-items" in raw else None,
        is_array="array" in types,
        schema=freeze(raw),
        refs=tuple(raw.get("x-entra-ref") or (raw.get("items") or {}).get("x-entra-ref") or ()),
    )


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
            parent=ParentSpec(parent["type"], parent["param"]) if parent else None,
            singleton=bool(graph.get("singleton", False)),
            singleton_path=graph.get("singletonPath"),
            alternate_keys=tuple(graph.get("alternateKeys", ())),
            soft_delete=SoftDeleteSpec(soft["list"], soft["item"], soft["restore"]) if soft else None,
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
