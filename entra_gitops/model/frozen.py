"""Read-only deep copies of parsed JSON and back: how every value of a state stays immutable (pure)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any


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


def strings_in(value: Any) -> Iterator[str]:
    """Every string inside a JSON-like value, at any depth (the ids a request body or a property holds)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings_in(item)
