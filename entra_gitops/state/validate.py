"""Checks state files: strict YAML, the type's schema, the id in the file name, and canonical form."""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import jsonschema
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from entra_gitops.model import canonical
from entra_gitops.model.errors import StateFileError
from entra_gitops.model.registry import Registry, ResourceType
from entra_gitops.state.layout import locate
from entra_gitops.state.normalize import normalize_object


class Problem(NamedTuple):
    """One thing wrong with one file, where a person can find it."""

    path: str
    line: int
    column: int
    message: str
    missing: tuple[str, ...] | None = None  # a required property's path, while problems are gathered

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


class Rewrite(NamedTuple):
    """What `fmt` may do with one file: the problems no rewrite fixes, or else the file's canonical content."""

    problems: tuple[Problem, ...]
    content: bytes | None  # None while there are problems


def _examine(registry: Registry, path: str, content: bytes) -> tuple[list[Problem], bytes | None]:
    """The file's problems other than its form, and its canonical content (when it loads and holds no secret)."""
    where = locate(registry, path)
    if where is None:
        message = "not a state file: expected tenant-state/<folder>/<id>.yaml or a singleton's file"
        return [Problem(path, 1, 1, message)], None
    try:
        data, exact = canonical.read(content, path)
    except StateFileError as err:
        return [Problem(path, err.line, err.column, err.message)], None
    problems = list(_schema_problems(where.rtype, path, content, data))
    object_id = data.get("id")
    if where.object_id is not None and object_id != where.object_id:
        line, column = _position(content, ["id"])
        problems.append(
            Problem(
                path, line, column, f"id {object_id!r} does not match the file name, which says {where.object_id!r}"
            )
        )
    links = {p.name: data.get(p.name) or () for p in where.rtype.links}
    normalized, redactions = normalize_object(where.rtype, data, links)
    for redaction in redactions:
        # Canonical form would hold the redaction marker instead: a change of value, not of form.
        line, column = _position(content, [re.split(r"[.\[]", redaction.path, maxsplit=1)[0]])
        problems.append(
            Problem(
                path,
                line,
                column,
                f"{redaction.path}: holds a value that looks like a client secret, which a state file never keeps; "
                "remove it by hand",
            )
        )
    if redactions:
        return problems, None
    # A file read as exactly what dump writes, whose value normalizing leaves as it is, is its own canonical form.
    return problems, content if exact and canonical.same_form(normalized, data) else canonical.dump(normalized)


def check_file(registry: Registry, path: str, content: bytes) -> Iterator[Problem]:
    """Every problem of one file; none for a valid, canonical state file."""
    problems, expected = _examine(registry, path, content)
    yield from problems
    if expected is not None and expected != content:
        line = _first_difference(content, expected)
        yield Problem(
            path,
            line,
            1,
            f"not in canonical form: entra-gitops would write this file differently; `entra-gitops fmt {path}` "
            "rewrites it",
        )


def rewrite_file(registry: Registry, path: str, content: bytes) -> Rewrite:
    """The file as entra-gitops writes it, or why it must be fixed by hand: what `fmt` writes or refuses.

    Only the form changes: key order, quoting, indentation, sorted sets, GUID case, empty values left out.
    A file that does not load, fails its schema, names another id or holds a value that looks like a client
    secret (which canonical form would replace with the redaction marker) is refused.
    """
    problems, expected = _examine(registry, path, content)
    return Rewrite(tuple(problems), None) if problems else Rewrite((), expected)


def _schema_problems(rtype: ResourceType, path: str, content: bytes, data: Any) -> Iterator[Problem]:
    validator = _validator(str(rtype.schema_path))
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    suggested: set[tuple[str, ...]] = set()  # (path..., property) a typo's suggestion already explains
    problems: list[Problem] = []
    for error in errors:
        location = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            # A typo in a key (`stat` for `state`) must not pass as an unknown extra: name it and the fix.
            known = list((error.schema.get("properties") or {}).keys())
            for key in sorted(set(error.instance) - set(known)):
                line, column = _position(content, [*location, key])
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                if close:
                    suggested.add((*map(str, location), close[0]))
                field = "/".join(map(str, [*location, key]))
                problems.append(
                    Problem(path, line, column, f"{field}: unknown property {key!r} for {rtype.name}{hint}")
                )
            continue
        line, column = _position(content, location)
        field = "/".join(map(str, location)) or "(object)"
        problems.append(Problem(path, line, column, f"{field}: {error.message}", _missing(error)))
    for problem in sorted(problems, key=lambda p: (p.line, p.column)):
        if problem.missing is None or problem.missing not in suggested:
            yield problem._replace(missing=None)


def _missing(error: jsonschema.ValidationError) -> tuple[str, ...] | None:
    """For a missing required property, its path: a typo's suggestion may already name it."""
    if error.validator != "required" or not isinstance(error.instance, Mapping):
        return None
    wanted = [name for name in error.validator_value if name not in error.instance]
    return (*map(str, error.absolute_path), wanted[0]) if len(wanted) == 1 else None


def check_files(registry: Registry, files: Mapping[str, bytes], paths: Iterable[str] | None = None) -> list[Problem]:
    """Every problem in the state files of a tree (only `paths` when given): what `validate` reports."""
    chosen = files if paths is None else {p: files[p] for p in paths if p in files}
    return [
        problem
        for path, content in sorted(chosen.items())
        if locate_or_none(registry, path)
        for problem in check_file(registry, path, content)
    ]


def locate_or_none(registry: Registry, path: str) -> bool:
    """Whether a tree path is a state file at all (other files in tenant-state/, a README, are not checked)."""
    return locate(registry, path) is not None


VALIDATION_FORMAT = "entra-gitops.validation-report/1"
FMT_FORMAT = "entra-gitops.fmt-report/1"


def _problem_records(problems: Iterable[Problem]) -> list[dict[str, Any]]:
    return [{"file": p.path, "line": p.line, "column": p.column, "message": p.message} for p in problems]


def validation_document(checked: int, problems: Iterable[Problem]) -> dict[str, Any]:
    """What `validate --format json` prints (schemas/reports/validation-report.schema.json)."""
    records = _problem_records(problems)
    return {"format": VALIDATION_FORMAT, "checked": checked, "valid": not records, "problems": records}


def fmt_document(checked: int, changed: Iterable[str], problems: Iterable[Problem], *, written: bool) -> dict[str, Any]:
    """What `fmt --format json` prints (schemas/reports/fmt-report.schema.json)."""
    return {
        "format": FMT_FORMAT,
        "checked": checked,
        "written": written,
        "changed": list(changed),
        "problems": _problem_records(problems),
    }
