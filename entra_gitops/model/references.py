"""The ids an object holds, found through its schema's x-entra-ref annotations, at any depth (pure)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from entra_gitops.model.registry import ResourceType


class Reference(NamedTuple):
    """One id inside an object: where it is, the types it may name."""

    path: str  # the property path, e.g. conditions.users.excludeGroups
    target: str
    types: tuple[str, ...]


def references_in(schema: Mapping[str, Any], value: Any, path: str = "") -> Iterator[Reference]:
    """Every reference inside `value` that `schema` marks; literals (All, AllTrusted, ...) are not references."""
    if value is None:
        return
    targets = schema.get("x-entra-ref")
    literals = set(schema.get("x-entra-ref-literals", ()))
    if targets and isinstance(value, str):
        if value not in literals:
            yield Reference(path, value, tuple(targets))
        return
    if isinstance(value, list | tuple):
        items = dict(schema.get("items") or {})
        if targets and not items.get("x-entra-ref"):
            items.update({"x-entra-ref": targets, "x-entra-ref-literals": list(literals)})
        for item in value:
            yield from references_in(items, item, path)
    elif isinstance(value, Mapping):
        for name, sub in (schema.get("properties") or {}).items():
            yield from references_in(sub, value.get(name), f"{path}.{name}" if path else name)


def object_references(rtype: ResourceType, obj: Mapping[str, Any], *, links: bool = True) -> Iterator[Reference]:
    """Every reference of one object, property by property (links included unless asked not to)."""
    for prop in rtype.properties:
        if prop.link is not None and not links:
            continue
        yield from references_in(prop.schema, obj.get(prop.name), prop.name)
