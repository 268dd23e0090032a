"""Every resource-type schema in schemas/ against JSON Schema 2020-12 and Graph's own v1.0 metadata.

Property names, nesting and JSON types are checked against the CSDL in
shared/graph/graph-v1.0-metadata.xml (or the file named by ENTRA_GITOPS_GRAPH_METADATA).
"""

from __future__ import annotations

import functools
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
from conftest import graph_metadata_file

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"
SCHEMA_FILES = sorted(SCHEMA_DIR.glob("*.schema.json"))

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
GRAPH_NAMESPACE = "microsoft.graph"
GRAPH_PREFIXES = ("microsoft.graph.", "graph.")

EDM_JSON_TYPES = {
    "Edm.String": {"string"},
    "Edm.Guid": {"string"},
    "Edm.DateTimeOffset": {"string"},
    "Edm.Date": {"string"},
    "Edm.Duration": {"string"},
    "Edm.TimeOfDay": {"string"},
    "Edm.Binary": {"string"},
    "Edm.Boolean": {"boolean"},
    "Edm.Byte": {"integer", "number"},
    "Edm.Int16": {"integer", "number"},
    "Edm.Int32": {"integer", "number"},
    "Edm.Int64": {"integer", "number"},
    "Edm.Single": {"number"},
    "Edm.Double": {"number"},
    "Edm.Decimal": {"number"},
}
FORMAT_EDM_TYPES = {"date-time": {"Edm.DateTimeOffset"}, "uuid": {"Edm.Guid", "Edm.String"}}

SCOPES = {"key", "recover", "track"}
THROTTLE_SCOPES = {"identity", "conditionalAccess"}
SECRET_NAMES = {"secretText", "passwordProfile", "password"}
TOP_LEVEL_KEYS = (
    "$schema",
    "$id",
    "title",
    "description",
    "x-entra-type",
    "x-entra-folder",
    "x-entra-display",
    "x-entra-graph",
    "type",
    "required",
    "additionalProperties",
    "properties",
)
GRAPH_KEYS = ("odataType", "readCost", "throttleScope", "serverGenerated")


# ---------------------------------------------------------------------------- Graph metadata


@dataclass(frozen=True)
class GraphProperty:
    owner: str
    name: str
    type: str  # element type, without Collection(...)
    collection: bool
    nullable: bool
    navigation: bool


def graph_name(qualified: str) -> str:
    """'graph.user' / 'microsoft.graph.user' -> 'user'; other namespaces and Edm types unchanged."""
    for prefix in GRAPH_PREFIXES:
        rest = qualified.removeprefix(prefix)
        if rest != qualified and "." not in rest:
            return rest
    return qualified


class GraphModel:
    """The microsoft.graph schema of the CSDL: structured types, their properties and enums."""

    def __init__(self, root: ET.Element) -> None:
        schema = next(s for s in root.iter(f"{EDM}Schema") if s.get("Namespace") == GRAPH_NAMESPACE)
        self.bases: dict[str, str | None] = {}
        self.own: dict[str, dict[str, GraphProperty]] = {}
        self.enums: dict[str, tuple[set[str], bool]] = {}
        self.derived: dict[str, set[str]] = {}
        for el in schema:
            kind, name = el.tag.removeprefix(EDM), el.get("Name")
            if kind == "EnumType":
                members = {m.get("Name") for m in el.iter(f"{EDM}Member")}
                self.enums[name] = (members, el.get("IsFlags") == "true")
            elif kind in ("EntityType", "ComplexType"):
                base = el.get("BaseType")
                self.bases[name] = graph_name(base) if base else None
                if base:
                    self.derived.setdefault(graph_name(base), set()).add(name)
                self.own[name] = {
                    p.get("Name"): self._property(name, p)
                    for p in el
                    if p.tag in (f"{EDM}Property", f"{EDM}NavigationProperty")
                }

    @staticmethod
    def _property(owner: str, el: ET.Element) -> GraphProperty:
        raw = el.get("Type")
        collection = raw.startswith("Collection(")
        element = raw.removeprefix("Collection(").removesuffix(")") if collection else raw
        return GraphProperty(
            owner,
            el.get("Name"),
            graph_name(element),
            collection,
            el.get("Nullable", "true") != "false",
            el.tag == f"{EDM}NavigationProperty",
        )

    def is_structured(self, name: str) -> bool:
        return name in self.own

    def json_types(self, element: str) -> set[str]:
        if element in EDM_JSON_TYPES:
            return EDM_JSON_TYPES[element]
        if element in self.enums:
            return {"string"}
        return {"object"} if self.is_structured(element) else set()

    def lookup(self, type_name: str, prop: str) -> GraphProperty | None:
        """A property of a type, its BaseType chain included."""
        while type_name in self.own:
            if prop in self.own[type_name]:
                return self.own[type_name][prop]
            type_name = self.bases[type_name]
        return None

    def with_derived(self, names: Iterable[str]) -> set[str]:
        out, todo = set(), list(names)
        while todo:
            name = todo.pop()
            if name not in out:
                out.add(name)
                todo.extend(self.derived.get(name, ()))
        return out

    def is_a(self, name: str, base: str) -> bool:
        while name is not None and name != base:
            name = self.bases.get(name)
        return name == base


@functools.cache
def graph_model() -> GraphModel:
    """Graph's v1.0 metadata, parsed once per run (it is 3.5 MB); skipped without the file, failed under CI."""
    return GraphModel(ET.parse(graph_metadata_file()).getroot())


@pytest.fixture(scope="module")
def graph() -> GraphModel:
    return graph_model()


# ---------------------------------------------------------------------------- schema walking


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def json_types(node: dict) -> set[str]:
    declared = node.get("type", [])
    return {declared} if isinstance(declared, str) else set(declared)


def walk_properties(node: dict, path: str = "") -> Iterator[tuple[str, str, dict]]:
    """(json path, property name, property schema) for every property at every level."""
    for name, sub in node.get("properties", {}).items():
        here = f"{path}.{name}" if path else name
        yield here, name, sub
        yield from walk_properties(sub, here)
        if isinstance(sub.get("items"), dict):
            yield from walk_properties(sub["items"], here + "[]")


def check_members(graph: GraphModel, path: str, node: dict, types: set[str]) -> Iterator[str]:
    """Each property of an object schema against the Graph types the object may be."""
    for name, sub in node.get("properties", {}).items():
        if name == "@odata.type":
            continue
        here = f"{path}.{name}" if path else name
        found = [p for p in (graph.lookup(t, name) for t in sorted(types)) if p]
        if not found:
            yield f"{here}: no property {name!r} on Graph type {' | '.join(sorted(types))}"
        else:
            yield from check_property(graph, here, sub, found)


def describe(p: GraphProperty) -> str:
    return f"{p.owner}.{p.name}: " + (f"Collection({p.type})" if p.collection else p.type)


def check_property(graph: GraphModel, path: str, sub: dict, found: list[GraphProperty]) -> Iterator[str]:
    declared = ", ".join(map(describe, found))
    if "null" in json_types(sub) and not any(p.nullable for p in found):
        yield f"{path}: allows null but Graph declares it Nullable=false ({declared})"
    if "x-entra-link" in sub:
        if not (
            all(p.collection and p.navigation for p in found)
            and json_types(sub) == {"array"}
            and json_types(sub.get("items", {})) == {"string"}
        ):
            yield f"{path}: a link must be an array of id strings over a Graph navigation collection ({declared})"
    elif all(p.collection for p in found):
        if json_types(sub) - {"null"} != {"array"}:
            yield f'{path}: Graph collection ({declared}) must be "type": "array", not {sub.get("type")!r}'
        else:
            yield from check_value(graph, path + "[]", sub.get("items", {}), found, sub.get("x-entra-graph-types"))
    elif any(p.collection for p in found):
        yield f"{path}: Graph declares it both as a collection and not ({declared})"
    else:
        yield from check_value(graph, path, sub, found)


def check_value(
    graph: GraphModel, path: str, node: dict, found: list[GraphProperty], graph_types: list[str] | None = None
) -> Iterator[str]:
    """A single value (a property, or a collection's items) against the Graph element types."""
    elements = {p.type for p in found}
    expected = set().union(*(graph.json_types(e) for e in elements))
    actual = json_types(node) - {"null"}
    if not actual or not actual <= expected:
        yield f"{path}: JSON type {node.get('type')!r} does not fit Graph type {' | '.join(sorted(elements))}"
        return
    fmt = node.get("format")
    if fmt in FORMAT_EDM_TYPES and not elements & FORMAT_EDM_TYPES[fmt]:
        yield f"{path}: format {fmt!r} does not fit Graph type {' | '.join(sorted(elements))}"
    yield from check_enum(graph, path, node, elements)
    structured = graph.with_derived(e for e in elements if graph.is_structured(e))
    if graph_types:
        named = {graph_name(t) for t in graph_types}
        for t in sorted(named):
            if not any(graph.is_a(t, e) for e in structured):
                expected = " | ".join(sorted(structured))
                yield f"{path}: x-entra-graph-types names {t!r}, not a Graph subtype of {expected}"
        structured = named
    if structured:
        yield from check_members(graph, path, node, structured)


def check_enum(graph: GraphModel, path: str, node: dict, elements: set[str]) -> Iterator[str]:
    values = {v for v in node.get("enum", []) if v is not None}
    enums = [graph.enums[e] for e in elements if e in graph.enums]
    if values and enums and not any(flags or values <= members for members, flags in enums):
        allowed = set().union(*(members for members, _ in enums))
        yield f"{path}: enum values {sorted(values - allowed)} are not members of the Graph enum"


# ---------------------------------------------------------------------------- tests


SCHEMAS = [pytest.param(p, id=p.name) for p in SCHEMA_FILES]


def assert_no_problems(path: Path, problems: Iterable[str]) -> None:
    problems = list(problems)
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


def test_schemas_exist():
    assert SCHEMA_FILES, f"no *.schema.json in {SCHEMA_DIR}"


@pytest.mark.parametrize("path", SCHEMAS)
def test_is_valid_draft_2020_12_schema(path: Path):
    schema = load(path)
    assert schema.get("$schema") == "https://json-schema.org/draft/2020-12/schema", f"{path.name}: $schema"
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        pytest.fail(f"{path.name}: {'.'.join(map(str, exc.absolute_path)) or '<root>'}: {exc.message}")


def annotation_problems(path: Path, schema: dict) -> Iterator[str]:
    stem = path.name.removesuffix(".schema.json")
    yield from (f"<root>: missing {key!r}" for key in TOP_LEVEL_KEYS if key not in schema)
    if schema.get("$id") != f"urn:entra-gitops:schema:{stem}":
        yield f"$id: {schema.get('$id')!r}, expected 'urn:entra-gitops:schema:{stem}'"
    if not schema.get("title") == schema.get("x-entra-type") == stem:
        yield f"title / x-entra-type: {schema.get('title')!r} / {schema.get('x-entra-type')!r}, expected {stem!r}"
    if schema.get("type") != "object" or schema.get("additionalProperties") is not False:
        yield '<root>: must be "type": "object" with "additionalProperties": false'
    if "id" not in schema.get("required", []):
        yield "required: must contain 'id'"
    properties = schema.get("properties", {})
    if schema.get("x-entra-display") not in properties:
        yield f"x-entra-display: {schema.get('x-entra-display')!r} is not a property"
    graph_info = schema.get("x-entra-graph", {})
    yield from (f"x-entra-graph: missing {key!r}" for key in GRAPH_KEYS if key not in graph_info)
    if not str(graph_info.get("odataType", "")).startswith("microsoft.graph."):
        yield f"x-entra-graph.odataType: {graph_info.get('odataType')!r}"
    if not (isinstance(graph_info.get("readCost"), int) and graph_info["readCost"] >= 1):
        yield f"x-entra-graph.readCost: {graph_info.get('readCost')!r} is not a positive integer"
    if graph_info.get("throttleScope") not in THROTTLE_SCOPES:
        yield f"x-entra-graph.throttleScope: {graph_info.get('throttleScope')!r} not in {sorted(THROTTLE_SCOPES)}"
    if not (graph_info.get("singletonPath") or graph_info.get("collection")):
        yield "x-entra-graph: needs 'collection' or, for a singleton, 'singletonPath'"
    yield from property_scope_problems(properties)


def property_scope_problems(properties: dict) -> Iterator[str]:
    for name, prop in properties.items():
        scope = prop.get("x-entra-scope")
        if scope not in SCOPES:
            yield f"{name}: x-entra-scope {scope!r} not in {sorted(SCOPES)}"
        if scope == "recover" and prop.get("readOnly"):
            yield f"{name}: a recover property cannot be readOnly"
        if (scope == "key") != (name == "id"):
            yield f"{name}: x-entra-scope 'key' belongs to 'id' and only to it"
    if properties.get("id", {}).get("readOnly") is not True:
        yield "id: must be readOnly"


@pytest.mark.parametrize("path", SCHEMAS)
def test_annotations(path: Path):
    assert_no_problems(path, annotation_problems(path, load(path)))


@pytest.mark.parametrize("path", SCHEMAS)
def test_no_secret_bearing_properties(path: Path):
    problems = [
        f"{here}: secret-bearing property {name!r} must never be exported"
        for here, name, _ in walk_properties(load(path))
        if name in SECRET_NAMES or (name == "key" and here.startswith("keyCredentials[]."))
    ]
    assert_no_problems(path, problems)


@pytest.mark.parametrize("path", SCHEMAS)
def test_properties_match_graph_metadata(path: Path, graph: GraphModel):
    schema = load(path)
    info = schema["x-entra-graph"]
    # A property may be declared on the base type, a subtype or a kind (agentIdentityBlueprintId is agentIdentity's).
    types = {graph_name(t) for t in [info["odataType"], *info.get("subtypes", []), *info.get("kinds", [])]}
    missing = sorted(t for t in types if not graph.is_structured(t))
    assert not missing, f"{path.name}: x-entra-graph names types absent from Graph v1.0: {missing}"
    assert_no_problems(path, check_members(graph, "", schema, types))


@pytest.mark.parametrize("path", SCHEMAS)
def test_kinds_derive_from_the_type_and_are_what_odata_type_may_say(path: Path, graph: GraphModel):
    info = load(path)["x-entra-graph"]
    base = graph_name(info["odataType"])
    kinds = [graph_name(k) for k in info.get("kinds", [])]
    problems = [
        f"x-entra-graph.kinds: {k!r} does not derive from {base!r} in Graph v1.0"
        for k in kinds
        if k == base or not graph.is_a(k, base)
    ]
    if kinds:
        stated = load(path)["properties"].get("@odata.type", {})
        expected = {f"#microsoft.graph.{k}" for k in kinds} | {f"#{t}" for t in info.get("subtypes", [])}
        if set(stated.get("enum", [])) != expected or stated.get("x-entra-scope") != "track":
            problems.append(f"@odata.type: must be a track property whose enum is {sorted(expected)}")
    assert_no_problems(path, problems)


def test_folders_are_unique():
    folders: dict[str, list[str]] = {}
    for path in SCHEMA_FILES:
        folders.setdefault(load(path).get("x-entra-folder"), []).append(path.name)
    clashes = {folder: names for folder, names in folders.items() if len(names) > 1}
    assert not clashes, f"x-entra-folder used by more than one schema: {clashes}"
