"""Canonical YAML: exact bytes, values that survive YAML 1.1 and 1.2 readers, and strict, safe loading."""

from __future__ import annotations

import random
from typing import Any

import pytest
import yaml

from entra_gitops.model import canonical
from entra_gitops.model.canonical import MAX_BYTES, MAX_DEPTH, dump, load
from entra_gitops.model.errors import StateFileError

PYYAML_LOADERS = [yaml.SafeLoader] + ([yaml.CSafeLoader] if hasattr(yaml, "CSafeLoader") else [])


def pyyaml_reads(data: bytes) -> list[Any]:
    """What PyYAML (a YAML 1.1 reader), pure and with libyaml, makes of `data`."""
    return [yaml.load(data, Loader=loader) for loader in PYYAML_LOADERS]  # noqa: S506 - safe loaders only


def strict_load(data: bytes) -> dict[str, Any]:
    """`load` without its fast path for canonical files: ruamel's parser events only."""
    return canonical._build(canonical._events(data.decode("utf-8"), "t.yaml"), "t.yaml")


def assert_round_trip(obj: dict[str, Any]) -> bytes:
    data = dump(obj)
    for read in pyyaml_reads(data):
        assert read == obj, data
    assert strict_load(data) == obj, data
    assert canonical._read_canonical(data.decode("utf-8")) == obj, data  # the fast path is taken
    assert load(data, "t.yaml") == obj, data
    assert dump(load(data, "t.yaml")) == data
    return data


def refusal(data: bytes | str, **kwargs: Any) -> StateFileError:
    with pytest.raises(StateFileError) as caught:
        load(data, "users/x.yaml", **kwargs)
    error = caught.value
    assert str(error).startswith(f"users/x.yaml:{error.line}:{error.column}: ")
    return error


# ---------------------------------------------------------------------------------------------------------------
# dump: exact bytes
# ---------------------------------------------------------------------------------------------------------------

GOLDEN_OBJECT = {
    "id": "0f2c8a36-4a0e-4d8e-9a57-0f3c2b6f1a11",
    "displayName": "Bjørn Ødegård",
    "accountEnabled": True,
    "usageLocation": "NO",
    "employeeHireDate": "2026-11-21T10:00:00Z",
    "employeeId": "00123",
    "department": "R&D: EMEA",
    "description": "First line\nSecond line\n",
    "notes": "  indented first line\nno final line break",
    "proxyAddresses": ["SMTP:bjorn@contoso.com", "smtp:b@contoso.com"],
    "assignedLicenses": [
        {"disabledPlans": [], "skuId": "c7df2760-2c81-4ef7-b578-5b5392b571df"},
        {"disabledPlans": ["efb87545-963c-4e0d-99df-69c6916d9eb0"], "skuId": "6fd2c87f-b296-42f0-b197-1e91e994b900"},
    ],
    "onPremisesExtensionAttributes": {"extensionAttribute1": "yes", "extensionAttribute2": None},
    "settings": {},
    "matrix": [["a", "b"], [], [{"k": 1}]],
    "quota": 50,
    "ratio": 0.5,
    "big": 1e20,
    "nothing": None,
}

GOLDEN_BYTES = """\
id: 0f2c8a36-4a0e-4d8e-9a57-0f3c2b6f1a11
displayName: Bjørn Ødegård
accountEnabled: true
usageLocation: 'NO'
employeeHireDate: '2026-11-21T10:00:00Z'
employeeId: '00123'
department: 'R&D: EMEA'
description: |
  First line
  Second line
notes: |2-
    indented first line
  no final line break
proxyAddresses:
  - SMTP:bjorn@contoso.com
  - smtp:b@contoso.com
assignedLicenses:
  - disabledPlans: []
    skuId: c7df2760-2c81-4ef7-b578-5b5392b571df
  - disabledPlans:
      - efb87545-963c-4e0d-99df-69c6916d9eb0
    skuId: 6fd2c87f-b296-42f0-b197-1e91e994b900
onPremisesExtensionAttributes:
  extensionAttribute1: 'yes'
  extensionAttribute2: null
settings: {}
matrix:
  - - a
    - b
  - []
  - - k: 1
quota: 50
ratio: 0.5
big: 1.0e+20
nothing: null
""".encode()


def test_golden_bytes() -> None:
    assert dump(GOLDEN_OBJECT) == GOLDEN_BYTES
    assert_round_trip(GOLDEN_OBJECT)


def test_keys_keep_the_given_order() -> None:
    assert dump({"b": 1, "a": 2, "c": 3}) == b"b: 1\na: 2\nc: 3\n"
    assert dump({"a": 2, "b": 1, "c": 3}) == b"a: 2\nb: 1\nc: 3\n"


def test_no_flow_style_document_markers_or_wrapping() -> None:
    long_text = " ".join(["word"] * 2000)
    data = dump({"a": long_text, "b": [{"c": ["d"]}], "e": {"f": {"g": "h"}}})
    assert data == f"a: {long_text}\nb:\n  - c:\n      - d\ne:\n  f:\n    g: h\n".encode()
    assert data.endswith(b"\n") and not data.endswith(b"\n\n")
    assert b"---" not in data and b"..." not in data


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain text", "plain text"),
        ("it's", "it's"),
        ("NO", "'NO'"),
        ("'quoted'", "'''quoted'''"),
        ("", "''"),
        (" lead", "' lead'"),
        ("tab\there", '"tab\\there"'),
        ("nul\x00", '"nul\\x00"'),
        ("line\u2028sep", '"line\\u2028sep"'),
        ("bell\x07", '"bell\\x07"'),
        ('back\\slash "q"', 'back\\slash "q"'),
        ('- "q"\\', "'- \"q\"\\'"),
        ("crlf\r\n", '"crlf\\r\\n"'),
        ("trailing space \nx", '"trailing space \\nx"'),
        ("\n\n", '"\\n\\n"'),
        ("a\n\n", "|+\n  a\n"),
        ("a\n\nb", "|-\n  a\n\n  b"),
        ("\nleading break", "|-\n\n  leading break"),
        (1.0, "1.0"),
        (-0.0, "-0.0"),
        (1e-07, "1.0e-07"),
        (10**30, "1000000000000000000000000000000"),
        (False, "false"),
    ],
)
def test_scalar_styles(value: Any, text: str) -> None:
    assert dump({"v": value}) == f"v: {text}\n".encode()
    assert_round_trip({"v": value})


def test_empty_and_null_rule() -> None:
    assert (
        dump({"a": [], "b": {}, "c": None, "d": [[], {}, None]})
        == b"a: []\nb: {}\nc: null\nd:\n  - []\n  - {}\n  - null\n"
    )


def test_long_key_is_written_as_an_explicit_key() -> None:
    key = "k" * 2000
    data = assert_round_trip({key: {"a": 1, "b": [1, 2]}, "short": "x"})
    assert data == f"? {key}\n: a: 1\n  b:\n    - 1\n    - 2\nshort: x\n".encode()
    assert_round_trip({"n": [{key: "v", "x\n" * 600: "w"}]})


def test_containers_and_subclasses_are_written_as_their_base_values() -> None:
    import enum
    from types import MappingProxyType

    class Color(enum.StrEnum):
        RED = "red"

    class Size(enum.IntEnum):
        BIG = 3

    data = dump(MappingProxyType({"c": Color.RED, "s": Size.BIG, "t": ("a", "b"), "m": MappingProxyType({"x": True})}))
    assert data == b"c: red\ns: 3\nt:\n  - a\n  - b\nm:\n  x: true\n"


@pytest.mark.parametrize(
    ("obj", "error"),
    [
        ({1: "x"}, TypeError),
        ({"a": {None: 1}}, TypeError),
        ({"a": {1, 2}}, TypeError),
        ({"a": b"bytes"}, TypeError),
        ({"a": float("nan")}, ValueError),
        ({"a": float("inf")}, ValueError),
        ({"a": "lone \ud800 surrogate"}, ValueError),
        ({"a \udfff": "key with a lone surrogate"}, ValueError),
        (["not", "a", "mapping"], TypeError),
    ],
)
def test_dump_refuses_values_outside_the_model(obj: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        dump(obj)


def test_dump_refuses_nesting_that_load_would_refuse() -> None:
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(MAX_DEPTH - 1):
        deep = {"a": deep}
    assert load(dump(deep), "t.yaml") == deep
    with pytest.raises(ValueError, match="deeper"):
        dump({"a": deep})


# ---------------------------------------------------------------------------------------------------------------
# dump: strings that YAML 1.1 or 1.2 readers would misread, and other scalars
# ---------------------------------------------------------------------------------------------------------------

TRAPS = [
    # YAML 1.1 booleans and nulls
    *["NO", "no", "No", "yes", "Yes", "YES", "on", "On", "off", "OFF", "y", "Y", "n", "N", "true", "True", "FALSE"],
    *["~", "null", "Null", "NULL", ""],
    # numbers in YAML 1.1 or 1.2
    *["0755", "0o17", "0x1F", "0b101", "1.10", "1e3", "1E3", "1_000", "12:30", "190:20:30.15", "-1", "+1", "0"],
    *[".5", ".5e5", "1.", "-.inf", ".inf", ".Inf", ".nan", ".NaN", "1e999", "007"],
    # timestamps
    *["2026-11-21", "2026-11-21T10:00:00Z", "2026-11-21 10:00:00", "2001-12-14t21:59:43.10-05:00"],
    # merge and value keys
    *["<<", "="],
    # white space
    *[" ", " lead", "trail ", "\t", "a\tb", "\u00a0nbsp", "nbsp\u00a0", "two  spaces"],
    # indicators and comment or key markers
    *["@at", "`tick", "!bang", "&amp", "*star", "%pct", "|pipe", ">gt", "'sq", '"dq', "#hash", "{brace", "[bracket"],
    *["]", "}", ",comma", "-dash", "- item", "-", "--", "---", "...", "... x", "?q", "? q", ":colon", ": x"],
    *["a: b", "a:", "a #b", "a#b", "http://x.example/a?b=c#d", "a,b[c]{d}", "k: v: w"],
    # unicode and control characters
    *["Bjørn", "日本語", "emoji 🎉", "\x00", "\x7f", "\x85", "\u2028", "\u2029", "\ufeffbom", "\x1b[0m"],
    # line breaks
    *["a\nb", "a\n", "a\n\n", "\na", "\n", "\n\n\n", " a\nb", "a\n b", "a \nb", "a\n\tb", "a\n#b", "a\n- b"],
    *["a\n...\nb", "---\na", "a\r\nb", "a\rb", "x\n  \ny", "\n  indented after break", "a\n\n\n"],
]


@pytest.mark.parametrize("text", TRAPS, ids=[repr(t) for t in TRAPS])
def test_trap_strings_round_trip_everywhere(text: str) -> None:
    assert_round_trip({"value": text})
    assert_round_trip({text: "key"})
    assert_round_trip({"list": [text, {text: [text]}], "nested": {"deeper": {text: text}}})


@pytest.mark.parametrize("text", ["NO", "yes", "on", "y", "~", "null", "0755", "1.10", "1e3", "12:30", "2026-11-21"])
def test_misreadable_strings_are_single_quoted(text: str) -> None:
    assert dump({"v": text}) == f"v: '{text}'\n".encode()


NUMBERS = [0, 1, -1, 2**63, -(2**70), 0.0, -0.0, 0.5, 1.5, 1 / 3, 1e20, 1e-7, 5e-324, 1.7976931348623157e308]


@pytest.mark.parametrize("value", [*NUMBERS, True, False, None])
def test_non_string_scalars_round_trip(value: Any) -> None:
    assert_round_trip({"v": value, "l": [value], "m": {"k": value}})
    for read in pyyaml_reads(dump({"v": value})):
        assert type(read["v"]) is type(value)
    assert type(load(dump({"v": value}), "t.yaml")["v"]) is type(value)


# ---------------------------------------------------------------------------------------------------------------
# dump/load: random objects
# ---------------------------------------------------------------------------------------------------------------

FRAGMENTS = [
    *["a", "B", "z9", "Bjørn", "é", "日本", "🎉", " ", "  ", "\t", "\n", "\n\n", "\r", "\x00", "\x85", "\u2028"],
    *["\ufeff", "\xa0", "'", '"', "\\", "#", " #", ":", ": ", "-", "- ", "?", ",", "[", "]", "{", "}", "!", "&"],
    *["*", "%", "@", "`", "|", ">", "~", "=", "<<", "...", "---", "yes", "No", "ON", "y", "null", "true", "0"],
    *["1", "0o", "0x", "1_0", ".", "e", "E+3", "inf", "nan", "12:30", "2026-11-21", "T10:00:00Z", "0755", "1.10"],
]


def random_string(rng: random.Random) -> str:
    return "".join(rng.choice(FRAGMENTS) for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 5, 8])))


def random_scalar(rng: random.Random) -> Any:
    kind = rng.randrange(10)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 7, 2**40, -(2**65), rng.randrange(-(10**6), 10**6)])
    if kind == 2:
        return rng.choice(
            [0.0, -2.5, 1e-9, 3.0e21, rng.uniform(-1e6, 1e6), rng.random() * 10 ** rng.randrange(-30, 30)]
        )
    return random_string(rng)


def random_value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(8) if depth < 6 else 7
    if kind == 0:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 1:
        return random_mapping(rng, depth + 1, rng.randrange(4))
    return random_scalar(rng)


def random_mapping(rng: random.Random, depth: int, size: int) -> dict[str, Any]:
    mapping: dict[str, Any] = {}
    for _ in range(size):
        key = random_string(rng) if rng.random() < 0.7 else "k" * rng.choice([1, 999, 1001, 1500])
        mapping[key] = random_value(rng, depth)
    return mapping


@pytest.mark.parametrize("seed", range(8))
def test_random_objects_round_trip(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(250):
        obj = random_mapping(rng, 1, rng.randrange(1, 6))
        assert_round_trip(obj)


# ---------------------------------------------------------------------------------------------------------------
# load: what plain scalars mean, and what is accepted
# ---------------------------------------------------------------------------------------------------------------


def test_load_reads_plain_scalars_by_the_yaml_1_2_core_schema() -> None:
    text = (
        "date: 2026-11-21\nstamp: 2026-11-21T10:00:00Z\nyes: yes\nno: NO\non: on\noctal: 0o17\nhex: 0x1F\n"
        "leading_zero: 0755\nunderscore: 1_000\nsexagesimal: 12:30\nfloat: 1e3\ndot: .5\ntilde: ~\nempty:\n"
        "t: True\nflow: [a, {b: c}]\nmerge: <<\n"
    )
    assert load(text, "t.yaml") == {
        "date": "2026-11-21",
        "stamp": "2026-11-21T10:00:00Z",
        "yes": "yes",
        "no": "NO",
        "on": "on",
        "octal": 15,
        "hex": 31,
        "leading_zero": 755,
        "underscore": "1_000",
        "sexagesimal": "12:30",
        "float": 1000.0,
        "dot": 0.5,
        "tilde": None,
        "empty": None,
        "t": True,
        "flow": ["a", {"b": "c"}],
        "merge": "<<",
    }


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("a: yes\n", {"a": "yes"}),
        ("a: 'x'\n", {"a": "x"}),
        ('a: "x"\n', {"a": "x"}),
        ("a:   1\n", {"a": 1}),
        ("a: 1 # note\n", {"a": 1}),
        ("# note\na: 1\n", {"a": 1}),
        ("a: [x]\n", {"a": ["x"]}),
        ("a:\n- x\n", {"a": ["x"]}),
        ("a:\n    b: 1\n", {"a": {"b": 1}}),
        ("a: >\n  folded\n  text\n", {"a": "folded text\n"}),
        ("a: |\n  x\n\n", {"a": "x\n"}),
        ("a: 1\r\n", {"a": 1}),
        ("a: 1", {"a": 1}),
        ("---\na: 1\n...\n", {"a": 1}),
        ("? a\n: 1\n", {"a": 1}),
        ('a: "\\x41"\n', {"a": "A"}),
        ("a: 01\n", {"a": 1}),
        ("a: 1.50\n", {"a": 1.5}),
    ],
)
def test_non_canonical_files_load_through_the_parser(text: str, value: dict[str, Any]) -> None:
    assert canonical._read_canonical(text) is None
    assert load(text.encode(), "t.yaml") == value
    assert dump(value) != text.encode()


def test_load_accepts_bytes_and_str_and_a_byte_order_mark() -> None:
    assert load(b"a: 1\n", "t.yaml") == {"a": 1}
    assert load("a: 1\n", "t.yaml") == {"a": 1}
    assert load("\ufeffa: Bjørn\n".encode(), "t.yaml") == {"a": "Bjørn"}


def test_load_accepts_the_limits_themselves() -> None:
    nested = "".join(f"{'  ' * depth}k:\n" for depth in range(MAX_DEPTH - 1)) + f"{'  ' * (MAX_DEPTH - 1)}k: v\n"
    loaded = load(nested, "t.yaml")
    for _ in range(MAX_DEPTH - 1):
        loaded = loaded["k"]
    assert loaded == {"k": "v"}
    exact = b"a: " + b"x" * (MAX_BYTES - 4) + b"\n"
    assert len(exact) == MAX_BYTES
    assert load(exact, "t.yaml") == {"a": "x" * (MAX_BYTES - 4)}


# ---------------------------------------------------------------------------------------------------------------
# load: refusals, each at the offending token
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ("a: 1\nb: 2\na: 3\n", 3, 1, "duplicate key 'a'"),
        ("a:\n  x: 1\n  'x': 2\n", 3, 3, "duplicate key 'x'"),
        ("a: !!str 1\n", 1, 4, "tags"),
        ("a: 1\nb: !foo bar\n", 2, 4, "tags"),
        ("a: ! bar\n", 1, 4, "tags"),
        ("a: !!map\n  b: 1\n", 1, 4, "tags"),
        ("a: &x 1\n", 1, 4, "anchors"),
        ("a: &x\n  - 1\n", 1, 4, "anchors"),
        ("a: 1\nb: *x\n", 2, 4, "aliases"),
        ("- a\n- b\n", 1, 1, "top level must be a mapping"),
        ("just text\n", 1, 1, "top level must be a mapping"),
        ("", 1, 1, "empty"),
        ("# only a comment\n", 1, 1, "empty"),
        ("1: x\n", 1, 1, "not a string"),
        ("a: 1\nnull: x\n", 2, 1, "not a string"),
        ("a: 1\ntrue: x\n", 2, 1, "not a string"),
        ("? [a]\n: b\n", 1, 3, "keys must be strings"),
        ("[a]: b\n", 1, 1, "keys must be strings"),
        ("a:\n  {b: c}: d\n", 2, 3, "keys must be strings"),
        ("a: 1\nb: 'unterminated\nc: 2\n", 2, 4, "quoted scalar"),
        ('a: "unterminated\n', 1, 4, "quoted scalar"),
        ("a: b: c\n", 1, 5, "mapping values are not allowed"),
        ("a: 1\n b: 2\n", 2, 3, "invalid YAML"),
        ("a: [1, 2\n", 2, 1, "invalid YAML"),
        ("a: 1\n---\nb: 2\n", 2, 1, "one YAML document"),
        ("%YAML 1.1\n---\na: yes\n", 2, 1, "directives"),
        ("a: .inf\n", 1, 4, "infinity or NaN"),
        ("a: [1, -.Inf]\n", 1, 8, "infinity or NaN"),
        ("a: .nan\n", 1, 4, "infinity or NaN"),
        ("a: 1e999\n", 1, 4, "out of range"),
        ("a: " + "9" * 5000 + "\n", 1, 4, "too many digits"),
        ("a: x\x00y\n", 1, 5, "not allowed"),
        ("a: 1\nb: \x07\n", 2, 4, "not allowed"),
        ('a: 1\nb: "\\ud800"\n', 2, 4, "surrogate"),
        ('a: 1\n"\\udfff": x\n', 2, 1, "surrogate"),
    ],
)
def test_load_refusals_point_at_the_offending_token(text: str, line: int, column: int, words: str) -> None:
    error = refusal(text.encode("utf-8"))
    assert (error.line, error.column) == (line, column), str(error)
    assert words in error.message
    assert error.path == "users/x.yaml"


def test_refuses_invalid_utf8_at_the_bad_byte() -> None:
    error = refusal(b"a: \xff\n")
    assert (error.line, error.column) == (1, 4)
    assert "UTF-8" in error.message
    error = refusal(b"a: Bj\xc3\xb8rn\nb: \xc3\xb8\xc3(\n")  # "b: ø" and then a broken sequence
    assert (error.line, error.column) == (2, 5)


def test_refuses_oversized_files_before_parsing() -> None:
    big = b"a: " + b"x" * MAX_BYTES + b"\n"
    for data in (big, big.decode()):
        error = refusal(data)
        assert (error.line, error.column) == (1, 1)
        assert str(MAX_BYTES) in error.message
    error = refusal(b"a: 12345\n", max_bytes=8)
    assert "9 bytes" in error.message
    # Over the limit even when the bytes are not valid UTF-8: the size is what is reported.
    assert "bytes" in refusal(b"\xff" * (MAX_BYTES + 1)).message


def test_refuses_deep_block_nesting_at_the_first_level_too_deep() -> None:
    text = "".join(f"{'  ' * depth}k:\n" for depth in range(40)) + f"{'  ' * 40}k: v\n"
    error = refusal(text)
    assert (error.line, error.column) == (MAX_DEPTH + 1, 2 * MAX_DEPTH + 1)
    assert "nested deeper than 32" in error.message


def test_refuses_deep_nesting_that_looks_canonical() -> None:
    levels = 1500  # more than Python's recursion limit
    text = "".join(f"{'  ' * depth}k:\n" for depth in range(levels)) + f"{'  ' * levels}k: v\n"
    error = refusal(text, max_bytes=len(text))
    assert (error.line, error.column) == (MAX_DEPTH + 1, 2 * MAX_DEPTH + 1)


@pytest.mark.parametrize("opener", ["[", "{", "[{", "- "])
def test_refuses_hostile_deep_nesting_without_recursion(opener: str) -> None:
    text = "a: " + opener * 100_000 if opener != "- " else "a:\n  " + opener * 100_000
    error = refusal(text)  # "{{" is refused sooner, as a mapping used as a key
    assert error.line in (1, 2)
    assert any(words in error.message for words in ("nested deeper", "keys must be strings")), error.message


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "x" * 1_000_000,
        "a: '" + "x" * 1_000_000,
        "a: " + "[a, " * 20 + "b" * 1_000_000,
        "a: |\n" + "  x\n" * 200_000,
        "&a [" * 1000,
        "a:\n" + "  " * 100_000 + "b: c\n",
        "k" * 1_000_000 + ": v",
        "\t" * 1_000_000,
    ],
    ids=["long-plain", "long-unterminated", "long-in-flow", "many-lines", "anchors", "deep-indent", "long-key", "tabs"],
)
def test_hostile_inputs_end_in_a_result_or_a_state_file_error(text: str) -> None:
    try:
        loaded = load(text, "users/x.yaml")
    except StateFileError:
        return
    assert isinstance(loaded, dict)


@pytest.mark.parametrize("seed", range(4))
def test_mutated_files_never_crash_the_loader(seed: int) -> None:
    rng = random.Random(seed)
    base = bytearray(GOLDEN_BYTES)
    alphabet = b"\x00\t\n\r !\"#%&'*,-.:>?@[]`{|}~\x85\xc3\xff0aZ"
    for _ in range(300):
        data = bytearray(base)
        for _ in range(rng.randrange(1, 6)):
            position = rng.randrange(len(data) + 1)
            action = rng.randrange(3)
            if action == 0:
                data[position:position] = bytes([rng.choice(alphabet)])
            elif action == 1 and position < len(data):
                del data[position]
            elif position < len(data):
                data[position] = rng.choice(alphabet)
        try:
            loaded = load(bytes(data), "users/x.yaml")
        except StateFileError as error:
            assert error.line >= 1 and error.column >= 1
        else:
            assert isinstance(loaded, dict)
