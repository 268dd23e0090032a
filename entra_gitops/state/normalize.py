"""Graph JSON to canonical objects, scoped by the schemas: the one rule for what a state file holds.

The rule for empty values: a property whose value is null, an empty list or an empty object is
left out, at every depth. Graph reports an unset property in any of these three ways (and changes
between them without anyone acting), so keeping them would only make noise. `false`, `0` and the
empty string are values and are kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from entra_gitops.model.frozen import freeze
from entra_gitops.model.ids import GUID
from entra_gitops.model.progress import Advance, counted
from entra_gitops.model.reads import TenantRead
from entra_gitops.model.registry import Registry, ResourceType
from entra_gitops.model.tenant import Lifecycle, ObjectState, TenantState

# Microsoft Entra client secrets: three characters, a digit, "Q~", then 31 to 34 more. A value like
# that has no business in a state file, wherever it turns up.
CLIENT_SECRET = re.compile(r"(?<![A-Za-z0-9_~.-])[A-Za-z0-9_.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])")
REDACTED = "<redacted: looked like a client secret>"


class Redaction(NamedTuple):
    """A value that normalization replaced because it looked like a secret (never the value itself)."""

    type_name: str
    object_id: str
    path: str


def _is_empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def _sort_key(value: Any, item_key: str | None) -> str:
    if isinstance(value, Mapping):
        if item_key and item_key in value:
            return str(value[item_key]).lower()
        return json.dumps(value, sort_keys=True)
    return str(value).lower()


class _Normalizer:
    """Walks one object alongside its schema; collects what it had to redact."""

    def __init__(self, rtype: ResourceType) -> None:
        self.rtype = rtype
        self.redactions: list[Redaction] = []
        self.object_id = ""

    def value(self, schema: Mapping[str, Any], value: Any, path: str) -> Any:
        # Graph JSON holds only dicts, lists and scalars: exact type checks keep this hot path cheap.
        kind = type(value)
        if kind is str:
            return self.string(schema, value, path)
        if kind is dict:
            return self.mapping(schema, value, path)
        if kind is list or kind is tuple:
            return self.sequence(schema, value, path)
        return value

    def string(self, schema: Mapping[str, Any], value: str, path: str) -> str:
        if "Q~" in value and CLIENT_SECRET.search(value):
            self.redactions.append(Redaction(self.rtype.name, self.object_id, path))
            return REDACTED
        if (schema.get("format") == "uuid" or schema.get("x-entra-ref")) and GUID.match(value):
            return value.lower()
        return value

    def mapping(self, schema: Mapping[str, Any], value: Mapping[str, Any], path: str) -> dict[str, Any]:
        known: Mapping[str, Any] = schema.get("properties") or {}
        out: dict[str, Any] = {}
        if "@odata.type" in value and "@odata.type" in known:
            out["@odata.type"] = value["@odata.type"]
        for name, sub in known.items():
            if name in value and name != "@odata.type":
                normalized = self.value(sub, value[name], f"{path}.{name}")
                if not _is_empty(normalized):
                    out[name] = normalized
        # Subtyped items (method configurations) carry members their schema cannot all name.
        if schema.get("additionalProperties", True) is not False:
            for name in sorted(set(value) - set(known)):
                if name.startswith("@odata.") and name != "@odata.type":
                    continue
                normalized = self.value({}, value[name], f"{path}.{name}")
                if not _is_empty(normalized):
                    out[name] = normalized
        return out

    def sequence(self, schema: Mapping[str, Any], value: Iterable[Any], path: str) -> list[Any]:
        items_schema = dict(schema.get("items") or {})
        if schema.get("x-entra-ref") and "x-entra-ref" not in items_schema:
            items_schema["x-entra-ref"] = schema["x-entra-ref"]
        items = [self.value(items_schema, item, f"{path}[]") for item in value]
        items = [i for i in items if not _is_empty(i)]
        if schema.get("x-entra-set"):
            items.sort(key=lambda i: _sort_key(i, schema.get("x-entra-key")))
        return items

    def top(self, raw: Mapping[str, Any], links: Mapping[str, Iterable[str]]) -> dict[str, Any]:
        self.object_id = str(raw.get("id", ""))
        out: dict[str, Any] = {}
        for prop in self.rtype.properties:
            if prop.link is not None:
                value: Any = list(links.get(prop.name, ()))
            elif prop.name == "@odata.type" and self.rtype.kinds and self.rtype.kind_of(raw) is None:
                continue  # the base type, as deleted items state it: only a kind is worth a line in the file
            elif prop.name in raw:
                value = raw[prop.name]
            else:
                continue
            normalized = self.value(prop.schema, value, prop.name)
            if not _is_empty(normalized):
                out[prop.name] = normalized
        return out


def normalize_object(
    rtype: ResourceType, raw: Mapping[str, Any], links: Mapping[str, Iterable[str]] | None = None
) -> tuple[dict[str, Any], tuple[Redaction, ...]]:
    """One Graph object as its canonical mapping (plain values, schema key order) and any redactions."""
    normalizer = _Normalizer(rtype)
    data = normalizer.top(raw, links or {})
    return data, tuple(normalizer.redactions)


def normalize_row(
    rtype: ResourceType, raw: Mapping[str, Any], lifecycle: Lifecycle
) -> tuple[dict[str, Any], tuple[Redaction, ...]]:
    """One object as Graph listed it, canonical but for its links (read after it: `with_links` adds them)."""
    renames = rtype.soft_delete.renames if rtype.soft_delete and lifecycle is Lifecycle.SOFT_DELETED else {}
    if renames:
        # Graph rewrites a deleted user's sign-in name and gives it back on restore: keep the real one.
        assert rtype.soft_delete is not None
        object_id = str(raw.get("id", ""))
        raw = {**raw, **{k: rtype.soft_delete.original(k, object_id, raw.get(k)) for k in renames if k in raw}}
    return normalize_object(rtype, raw)


def with_links(rtype: ResourceType, data: dict[str, Any], links: Mapping[str, Iterable[str]]) -> dict[str, Any]:
    """A row from `normalize_row` with its links, exactly as `normalize_object` gives the object read with them."""
    values = {name: normalized_link(rtype, name, ids) for name, ids in links.items()}
    values = {name: value for name, value in values.items() if value is not None}
    if not values:
        return data
    out: dict[str, Any] = {}
    for prop in rtype.properties:  # the schema's key order, links in their places
        if prop.name in values:
            out[prop.name] = values[prop.name]
        elif prop.name in data:
            out[prop.name] = data[prop.name]
    return out


def normalized_link(rtype: ResourceType, name: str, ids: Iterable[str]) -> Any:
    """What an object's file holds for its link `name` when Graph lists `ids`: None when the file leaves it out."""
    prop = rtype.prop(name)
    assert prop is not None and prop.link is not None
    value = _Normalizer(rtype).value(prop.schema, list(ids), name)
    return None if _is_empty(value) else value


class Normalized(NamedTuple):
    """A TenantState built from a read, and what had to be redacted on the way."""

    state: TenantState
    redactions: tuple[Redaction, ...]


def normalized_objects(
    registry: Registry, read: TenantRead, advance: Advance | None = None
) -> Iterator[tuple[ResourceType, Lifecycle, dict[str, Any], tuple[Redaction, ...]]]:
    """Every object of a read, canonical with its links: (type, lifecycle, data, what was redacted in it).

    Rows of a `normalized` read are only given their links; their redactions were taken as they came.
    `advance`, when given, is told how many more objects are done as the work goes (for a progress display).
    """
    for lifecycle, listed in ((Lifecycle.ACTIVE, read.objects), (Lifecycle.SOFT_DELETED, read.deleted)):
        for type_name, raws in listed.items():
            rtype = registry.get(type_name)
            link_maps = (
                {p.name: read.links.get((type_name, p.name), MappingProxyType({})) for p in rtype.links}
                if lifecycle is Lifecycle.ACTIVE
                else {}
            )
            for raw in counted(raws, advance):
                data, found = (raw, ()) if read.normalized else normalize_row(rtype, raw, lifecycle)
                if link_maps:
                    object_id = str(raw.get("id", ""))
                    data = with_links(rtype, data, {name: m.get(object_id, ()) for name, m in link_maps.items()})
                yield rtype, lifecycle, data, found


def normalize_read(registry: Registry, read: TenantRead, advance: Advance | None = None) -> Normalized:
    """Every object of a read as ObjectStates: live ones active, deleted ones soft-deleted.

    `advance`, when given, is told how many more objects are done as the work goes (for a progress display).
    """
    objects: list[ObjectState] = []
    redactions: list[Redaction] = []
    for rtype, lifecycle, data, found in normalized_objects(registry, read, advance):
        redactions.extend(found)
        objects.append(ObjectState(rtype.name, data.get("id", ""), lifecycle, freeze(data)))
    return Normalized(TenantState.of(objects, frozenset(read.objects)), tuple(redactions))
