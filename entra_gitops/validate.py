"""Checks state files: strict YAML, the type's schema, the id in the file name, and canonical form."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any, NamedTuple

import jsonschema
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from entra_gitops import canonical
from entra_gitops.errors import StateFileError
from entra_gitops.layout import locate
from entra_gitops.normalize import normalize_object
from entra_gitops.registry import Registry, ResourceType


class Problem(NamedTuple):
    """One thing wrong with one file, where a person can find it."""

    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


@functools.cache
def _validator(schema_path: str) -> jsonschema.Draft202012Validator:
    with open(schema_path, encoding="utf-8") as handle:
        schema = json.load(handle)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def _position(content: bytes, location: list[Any]) -> tuple[int, int]:
    """Line and column (1-based) of the value at `location`, or of the deepest parent that exists."""
    try:
        node = YAML(typ="rt").load(content)
    except YAMLError:
        return 1, 1
    line, column = 1, 1
    for step in location:
        lc = getattr(node, "lc", None)
        try:
            if isinstance(step, int):
                line, column = lc.item(step)[0] + 1, lc.item(step)[1] + 1
            else:
                line, column = lc.key(step)[0] + 1, lc.key(step)[1] + 1
            node = node[step]
        except (AttributeError, KeyError, IndexError, TypeError):
            break
    return line, column


def _first_difference(actual: bytes, expected: bytes) -> int:
    for number, (a, b) in enumerate(zip(actual.splitlines(), expected.splitlines(), strict=False), start=1):
        if a != b:
            return number
    return min(len(actual.splitlines()), len(expected.splitlines())) + 1


def check_file(registry: Registry, path: str, content: bytes) -> Iterator[Problem]:
    """Every problem of one file; none for a valid, canonical state file."""
    where = locate(registry, path)
    if where is None:
        yield Problem(path, 1, 1, "not a state file: expected tenant-state/<folder>/<id>.yaml or a singleton's file")
        return
    try:
        data = canonical.load(content, path)
    except StateFileError as err:
        yield Problem(path, err.line, err.column, err.message)
        return
    yield from _schema_problems(where.rtype, path, content, data)
    object_id = data.get("id")
    if where.object_id is not None and object_id != where.object_id:
        line, column = _position(content, ["id"])
        yield Problem(
            path, line, column, f"id {object_id!r} does not match the file name, which says {where.object_id!r}"
        )
    links = {p.name: data.get(p.name) or () for p in where.rtype.links}
    expected = canonical.dump(normalize_object(where.rtype, data, links)[0])
    if expected != content:
        line = _first_difference(content, expected)
        yield Problem(path, line, 1, "not in canonical form: entra-gitops would write this file differently")


def _schema_problems(rtype: ResourceType, path: str, content: bytes, data: Any) -> Iterator[Problem]:
    validator = _validator(str(rtype.schema_path))
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        location = list(error.absolute_path)
        line, column = _position(content, location)
        field = "/".join(map(str, location)) or "(object)"
        yield Problem(path, line, column, f"{field}: {error.message}")
