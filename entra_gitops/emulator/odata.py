"""OData query options as Graph applies them to directory collections: $select, $top, $filter, $expand."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from entra_gitops.emulator.protocol import GraphFault, bad_request
from entra_gitops.model.ids import GUID_TEXT

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999
# query-parameters.md: for directory objects "$expand typically returns a maximum of 20 items for the expanded
# relationship and has no @odata.nextLink"; a list that expands is served 100 objects a page at most (this
# project's Graph notes, shared/graph/README.md: `$expand` "caps expanded items at 20 and drops pages to 100").
EXPAND_CAP = 20
EXPANDED_PAGE_SIZE = 100

Predicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Query:
    """The query options of one request, with `$` or `%24` names already folded together."""

    select: tuple[str, ...] | None
    top: int
    filter: Predicate | None
    count: bool
    skiptoken: str | None
    deltatoken: str | None
    expand: Expansion | None = None


@dataclass(frozen=True)
class Expansion:
    """One `$expand` option: the navigation property, the `$select` nested in it, and the text as given."""

    name: str
    select: tuple[str, ...] | None
    text: str


_EXPAND = re.compile(r"\s*([A-Za-z][A-Za-z0-9_]*)\s*(?:\(\s*\$select\s*=\s*([A-Za-z0-9_@.,\s]*)\))?\s*")


def parse_expand(text: str) -> Expansion:
    """`name` or `name($select=a,b)`; anything else is refused, as Graph refuses what it cannot parse."""
    match = _EXPAND.fullmatch(text)
    if match is None:
        raise bad_request(
            f"Parsing OData Select and Expand failed: '{text}' is not one navigation property, optionally with "
            "a nested $select (the emulator serves one expansion a request)."
        )
    nested = match.group(2)
    select = tuple(s.strip() for s in nested.split(",") if s.strip()) if nested is not None else None
    return Expansion(match.group(1), select, text.strip())


def parse_query(params: Mapping[str, str]) -> Query:
    """Read Graph's query options; the values Graph refuses raise its 400 errors."""
    options = {k.lstrip("$").lower(): v for k, v in params.items()}
    select = tuple(s.strip() for s in options["select"].split(",") if s.strip()) if "select" in options else None
    top = DEFAULT_PAGE_SIZE
    if "top" in options:
        try:
            top = int(options["top"])
        except ValueError:
            raise bad_request(f"Invalid page size specified: '{options['top']}'.") from None
        if not 1 <= top <= MAX_PAGE_SIZE:
            raise bad_request(f"Invalid page size specified: '{top}'. Must be between 1 and {MAX_PAGE_SIZE} inclusive.")
    count = options.get("count", "false").lower() == "true"
    where = compile_filter(options["filter"]) if options.get("filter") else None
    expand = parse_expand(options["expand"]) if "expand" in options else None
    return Query(select, top, where, count, options.get("skiptoken"), options.get("deltatoken"), expand)


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<guid>"""
    + GUID_TEXT
    + r""")
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<punct>[(),:])
      | (?P<name>[A-Za-z_@][A-Za-z0-9_./@]*)
    )""",
    re.VERBOSE,
)


def _kind(value: Any) -> type:
    if isinstance(value, bool):
        return bool
    return float if isinstance(value, int | float) else type(value)


def _typed(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """Graph refuses comparing a property with a literal of another type (400), it never coerces."""

    def checked(a: Any, b: Any) -> bool:
        if a is not None and b is not None and _kind(a) is not _kind(b):
            raise bad_request("A binary operator with incompatible types was detected.", "BadRequest")
        return compare(a, b)

    return checked


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _typed(lambda a, b: _fold(a) == _fold(b)),
    "ne": _typed(lambda a, b: _fold(a) != _fold(b)),
    "ge": _typed(lambda a, b: a is not None and b is not None and a >= b),
    "le": _typed(lambda a, b: a is not None and b is not None and a <= b),
    "gt": _typed(lambda a, b: a is not None and b is not None and a > b),
    "lt": _typed(lambda a, b: a is not None and b is not None and a < b),
}
_LITERALS = {"true": True, "false": False, "null": None}


def _fold(value: Any) -> Any:
    # Directory string comparisons are case-insensitive in Graph.
    return value.lower() if isinstance(value, str) else value


def _unsupported(clause: str) -> GraphFault:
    return bad_request(f"Unsupported or invalid query filter clause specified: '{clause}'.", "Request_UnsupportedQuery")


def _tokenize(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if not match:
            raise bad_request(f"Invalid filter clause: syntax error at position {position} in '{text}'.")
        kind = match.lastgroup
        raw = match.group(kind)
        if kind == "string":
            tokens.append(("literal", raw[1:-1].replace("''", "'")))
        elif kind == "guid":
            tokens.append(("literal", raw))
        elif kind == "number":
            tokens.append(("literal", float(raw) if "." in raw else int(raw)))
        elif kind == "punct":
            tokens.append(("punct", raw))
        elif raw in _LITERALS:
            tokens.append(("literal", _LITERALS[raw]))
        else:
            tokens.append(("name", raw))
        position = match.end()
    return tokens


def _path_value(obj: Mapping[str, Any] | None, path: str) -> Any:
    value: Any = obj
    for part in path.split("/"):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


class _Parser:
    """Recursive descent over the filter forms the tool and common scripts send."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.position = 0

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, kind: str | None = None, value: Any = None) -> tuple[str, Any]:
        token = self.peek()
        if token is None or (kind and token[0] != kind) or (value is not None and token[1] != value):
            raise bad_request(f"Invalid filter clause: unexpected end or token in '{self.text}'.")
        self.position += 1
        return token

    def parse(self) -> Predicate:
        predicate = self.disjunction()
        if self.peek() is not None:
            raise bad_request(f"Invalid filter clause: unexpected '{self.peek()[1]}' in '{self.text}'.")
        return predicate

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.peek() == ("name", "or"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda o: any(p(o) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.unary()]
        while self.peek() == ("name", "and"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda o: all(p(o) for p in parts))

    def unary(self) -> Predicate:
        if self.peek() == ("name", "not"):
            self.take()
            inner = self.unary()
            return lambda o: not inner(o)
        if self.peek() == ("punct", "("):
            self.take()
            inner = self.disjunction()
            self.take("punct", ")")
            return inner
        return self.comparison()

    def literal_list(self) -> list[Any]:
        self.take("punct", "(")
        values = [self.take("literal")[1]]
        while self.peek() == ("punct", ","):
            self.take()
            values.append(self.take("literal")[1])
        self.take("punct", ")")
        return values

    def comparison(self) -> Predicate:
        _, name = self.take("name")
        if name in ("startswith", "endswith"):
            self.take("punct", "(")
            _, prop = self.take("name")
            self.take("punct", ",")
            _, prefix = self.take("literal")
            self.take("punct", ")")
            test = str.startswith if name == "startswith" else str.endswith
            return lambda o: isinstance(v := _path_value(o, prop), str) and test(v.lower(), str(prefix).lower())
        if name.endswith("/any"):
            return self.any_lambda(name[: -len("/any")])
        token = self.peek()
        if token is None or token[0] != "name":
            raise _unsupported(self.text)
        operator = self.take()[1]
        if operator == "in":
            allowed = {_fold(v) for v in self.literal_list()}
            return lambda o: _fold(_path_value(o, name)) in allowed
        if operator not in _COMPARISONS:
            raise _unsupported(self.text)
        _, literal = self.take("literal")
        compare = _COMPARISONS[operator]
        return lambda o: compare(_path_value(o, name), literal)

    def any_lambda(self, collection: str) -> Predicate:
        self.take("punct", "(")
        _, variable = self.take("name")
        self.take("punct", ":")
        _, target = self.take("name")
        if target.split("/")[0] != variable:
            raise _unsupported(self.text)
        operator = self.take("name")[1]
        if operator not in ("eq", "ne"):
            raise _unsupported(self.text)
        _, literal = self.take("literal")
        self.take("punct", ")")
        inner = target[len(variable) + 1 :]
        compare = _COMPARISONS[operator]

        def matches(obj: Mapping[str, Any]) -> bool:
            items = _path_value(obj, collection) or []
            return any(compare(_path_value(i, inner) if inner else i, literal) for i in items)

        return matches


def compile_filter(text: str) -> Predicate:
    """Compile a `$filter` expression into a predicate over Graph JSON objects."""
    return _Parser(text).parse()


def project(obj: Mapping[str, Any], select: tuple[str, ...] | None, array_props: frozenset[str]) -> dict[str, Any]:
    """Apply `$select` the way Graph does: selected members only, absent ones as null or []."""
    if select is None:
        return dict(obj)
    shaped: dict[str, Any] = {}
    if "@odata.type" in obj:
        shaped["@odata.type"] = obj["@odata.type"]
    for name in select:
        shaped[name] = obj.get(name, [] if name in array_props else None)
    return shaped
