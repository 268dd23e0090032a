"""Canonical YAML for state files: one object in, the same bytes out, and strict, safe loading back."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.scanner import ScannerError

from entra_gitops.model.errors import StateFileError

# A group file lists every member's id (about 42 bytes each): 32 MiB holds the largest groups Entra
# allows while still bounding what a hostile file can make the loader do.
MAX_BYTES = 32 * 1024 * 1024
"""Largest state file `load` accepts, in bytes."""

MAX_DEPTH = 32
"""Deepest nesting of mappings and lists `load` accepts and `dump` writes; the top-level mapping is depth 1."""

# ---------------------------------------------------------------------------------------------------------------
# The canonical form, written by `dump`:
#
# - UTF-8, LF line ends, a trailing newline, no document markers, no comments, no anchors, aliases or tags.
# - Block style, 2-space indent. Keys keep the order of the given mapping. List items are indented under their
#   key ("key:\n  - a"); a mapping or list inside a list item starts on the item's line ("- a: 1\n    b: 2",
#   "- - x").
# - Empty and null rule: None is written `null`, an empty list `[]` and an empty mapping `{}`, always on the line
#   of their key or list item. These are the only flow-style tokens ever written: YAML has no block form for an
#   empty collection, and dropping the value or writing `null` would not read back as the same value.
# - Scalars: `true`/`false`; integers in decimal; finite floats as Python's shortest repr, with ".0" added when
#   the repr has no "." (1.0, 1.0e+20), so that YAML 1.1 and 1.2 readers both read a float. NaN and infinities
#   are refused (they are not JSON values).
# - Strings, in order of preference:
#   * plain, when the text is non-empty, has no leading or trailing white space, does not start with a YAML
#     indicator or "...", contains no ": ", " #", tab or line break, does not end with ":", and no resolver reads
#     it as anything but a string: ruamel's YAML 1.1 and YAML 1.2 implicit resolvers (bools such as yes/no/on/y,
#     null and ~, ints including octal 0755, 0o17 and 1_000, floats such as 1.10, 1e3, .inf, sexagesimal 12:30,
#     timestamps, "<<" and "=") and this module's own YAML 1.2 core reading;
#   * a literal block (`|`), when the text has a line break, every character is printable, no line ends in a
#     space and there is some text besides line breaks. The chomping indicator is "-" without a final line
#     break, none with exactly one and "+" with more; an indentation indicator "2" is added when the first
#     non-empty line starts with a space;
#   * single-quoted, when every character is printable and there is no line break;
#   * double-quoted otherwise (control characters including tab, DEL, C1 controls, U+2028/U+2029, the byte
#     order mark, unpaired surrogates, and the few multi-line strings a literal block cannot hold exactly),
#     with \n, \t, \r, \\, \" and \xXX/\uXXXX/\UXXXXXXXX escapes.
#   Keys follow the same rules except that they are never literal blocks; a key whose text is longer than
#   _MAX_SIMPLE_KEY characters is written as an explicit "? key" / ": value" pair, because YAML readers only
#   accept implicit keys up to 1024 characters.
# ---------------------------------------------------------------------------------------------------------------

_MAX_SIMPLE_KEY = 1000

# Characters that may appear as themselves in a single-line scalar: YAML's printable set minus line breaks
# (U+0085, U+2028, U+2029 count as line breaks for YAML 1.1 readers), tab and the byte order mark.
_PRINTABLE = "\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff"
_NOT_SINGLE_LINE = re.compile(f"[^{_PRINTABLE}]")
_NOT_LITERAL = re.compile(f"[^{_PRINTABLE}\n]| \n| $")
_PLAIN_SHAPE = re.compile(r"[^\s\-?:,\[\]{}#&*!|>'\"%@`](?:.*[^\s:])?", re.DOTALL)
_PLAIN_BREAKERS = re.compile(r": | #|^\.\.\.")

_DOUBLE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_DOUBLE_NEEDS_ESCAPE = re.compile(f'[^{_PRINTABLE}]|[\\\\"]')
_SURROGATE = re.compile("[\ud800-\udfff]")


def _implicit_matchers() -> dict[str | None, tuple[Callable[[str], Any], ...]]:
    """ruamel's YAML 1.1 and 1.2 implicit resolver rules, by first character: a match means "not a string".

    The table is the resolvers' own (the lookup `VersionedResolver.resolve` does), kept as the patterns' match
    methods so that checking a string costs one dict lookup and, for the few first characters that matter, a few
    regex matches.
    """
    table: dict[str | None, list[Callable[[str], Any]]] = {}
    for version in ((1, 1), (1, 2)):
        for first, rules in VersionedResolver(version=version).versioned_resolver.items():
            matchers = table.setdefault(first, [])
            matchers.extend(regexp.match for tag, regexp in rules if str(tag) != "tag:yaml.org,2002:str")
    return {first: tuple(matchers) for first, matchers in table.items()}


_IMPLICIT = _implicit_matchers()
_IMPLICIT_ANY_FIRST = _IMPLICIT.get(None, ())

# YAML 1.2 core schema (spec 1.2.2, section 10.3.2): the only plain scalars `load` reads as non-strings.
_CORE_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_CORE_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_CORE_INT = re.compile(r"[-+]?[0-9]+")
_CORE_INT_OCT = re.compile(r"0o[0-7]+")
_CORE_INT_HEX = re.compile(r"0x[0-9a-fA-F]+")
_CORE_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_CORE_NOT_FINITE = re.compile(r"[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")


class _NotAValue(ValueError):
    """A plain scalar that the core schema reads as something outside the value model (infinity, NaN, huge)."""


def dump(obj: Mapping[str, Any]) -> bytes:
    """The canonical YAML bytes of one object: a mapping of JSON-like values (see the rules above).

    Raises TypeError for a value outside the model (a non-string key, a set, a date, ...) and ValueError for NaN,
    infinities and nesting deeper than MAX_DEPTH, so that whatever `dump` writes, `load` reads back.
    """
    return _dump_text(obj).encode("utf-8")


def _dump_text(obj: Mapping[str, Any]) -> str:
    if not isinstance(obj, Mapping):
        raise TypeError(f"dump takes a mapping, not {type(obj).__name__}")
    if not obj:
        return "{}\n"
    out: list[str] = []
    _emit_mapping(obj, 0, "", out, 1)
    return "".join(out)


# A collection is written in one of two places:
# - after a mapping key ("key:"): it starts on the next line, indented by 2 (list items too: "key:\n  - a");
# - after a list dash or an explicit key's ":" ("-"): it starts on the same line ("- a: 1\n    b: 2", "- - x").
# `indent` is always the column of the collection's own keys or dashes; `first` is what stands before the first
# key or dash on its line (spaces, or the enclosing item's "- "), and is empty for plain indentation.


def _emit_mapping(mapping: Mapping[Any, Any], indent: int, first: str, out: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"value nested deeper than {MAX_DEPTH} levels")
    pad = " " * indent
    lead = first or pad
    for key, value in mapping.items():
        if type(key) is not str:
            if not isinstance(key, str):
                raise TypeError(f"mapping keys must be strings, not {type(key).__name__}: {key!r}")
            key = str.__str__(key)
        key_text = _key_text(key)
        if len(key_text) > _MAX_SIMPLE_KEY:
            out.append(f"{lead}? {key_text}\n")
            _emit_node(value, indent, pad + ":", False, out, depth)
        else:
            _emit_node(value, indent, lead + key_text + ":", True, out, depth)
        lead = pad


def _emit_sequence(sequence: list[Any] | tuple[Any, ...], indent: int, first: str, out: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"value nested deeper than {MAX_DEPTH} levels")
    pad = " " * indent
    lead = first or pad
    for item in sequence:
        _emit_node(item, indent, lead + "-", False, out, depth)
        lead = pad


def _emit_node(value: Any, indent: int, head: str, after_key: bool, out: list[str], depth: int) -> None:
    """Write `value` after `head` ("key:", "-" or ":"), the indicator ending at column `indent` + len(head)."""
    writer = _SCALAR_WRITERS.get(type(value))
    text = writer(value) if writer is not None else _other_scalar(value)
    if text is None:
        if after_key:
            out.append(head + "\n")
            first = ""
        else:
            first = head + " "
        if isinstance(value, Mapping):
            _emit_mapping(value, indent + 2, first, out, depth + 1)
        else:
            _emit_sequence(value, indent + 2, first, out, depth + 1)
    elif type(text) is str:
        out.append(f"{head} {text}\n")
    else:
        header, lines = text
        pad = " " * (indent + 2)
        out.append(f"{head} {header}\n")
        out.extend(f"{pad}{line}\n" if line else "\n" for line in lines)


def _collection_text(value: dict[Any, Any] | list[Any] | tuple[Any, ...]) -> str | None:
    """None for a non-empty collection (written in block style), else the empty-collection token."""
    if value:
        return None
    return "{}" if isinstance(value, Mapping) else "[]"


def _float_text(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"cannot write {value!r}: only finite numbers are JSON values")
    text = float.__repr__(value)
    if "." not in text:
        text = text.replace("e", ".0e")
    return text


def _other_scalar(value: Any) -> str | tuple[str, tuple[str, ...]] | None:
    """`_SCALAR_WRITERS` for subclasses (str and int enums, other Mapping types): written as their base value."""
    if isinstance(value, str):
        return _string_text(str.__str__(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, Mapping | list | tuple):
        return _collection_text(value)
    raise TypeError(f"cannot write a {type(value).__name__} to YAML: {value!r}")


@functools.lru_cache(maxsize=1 << 16)
def _string_text(value: str) -> str | tuple[str, tuple[str, ...]]:
    """A string value's text: plain, a literal block (header, lines), single- or double-quoted."""
    if "\n" in value and _NOT_LITERAL.search(value) is None and value.strip("\n"):
        return _literal(value)
    return _key_text(value)


@functools.lru_cache(maxsize=1 << 14)
def _key_text(value: str) -> str:
    """A string's single-line text: plain, single-quoted or double-quoted."""
    if _NOT_SINGLE_LINE.search(value) is not None:
        return _double_quoted(value)
    if _PLAIN_SHAPE.fullmatch(value) is not None and _PLAIN_BREAKERS.search(value) is None and not _misread(value):
        return value
    return "'" + value.replace("'", "''") + "'"


_SCALAR_WRITERS: dict[type, Callable[[Any], str | tuple[str, tuple[str, ...]] | None]] = {
    str: _string_text,
    bool: lambda value: "true" if value else "false",
    int: int.__repr__,
    float: _float_text,
    type(None): lambda value: "null",
    dict: _collection_text,
    MappingProxyType: _collection_text,  # frozen state values are written without thawing them first
    list: _collection_text,
    tuple: _collection_text,
}
"""How `_emit_node` writes a value of each exact type: its scalar text, or None for a non-empty collection."""


def _misread(value: str) -> bool:
    """Whether a YAML 1.1 or 1.2 reader, or `load`, would read this text, written plain, as a non-string."""
    for match in _IMPLICIT.get(value[:1], ()) + _IMPLICIT_ANY_FIRST:
        if match(value):
            return True
    try:
        return not isinstance(_core_plain(value), str)
    except _NotAValue:
        return True


def _literal(value: str) -> tuple[str, tuple[str, ...]]:
    if value.endswith("\n\n"):
        chomp = "+"
    elif value.endswith("\n"):
        chomp = ""
    else:
        chomp = "-"
    lines = value.split("\n")
    if chomp != "-":
        lines.pop()  # the final line break ends the last line
    first = next(line for line in lines if line)
    indicator = "2" if first.startswith(" ") else ""
    return f"|{indicator}{chomp}", tuple(lines)


def _double_quoted(value: str) -> str:
    if _SURROGATE.search(value):
        raise ValueError(f"cannot write {_shorten(value)}: it holds an unpaired surrogate, which is not valid text")
    return '"' + _DOUBLE_NEEDS_ESCAPE.sub(_escape, value) + '"'


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _DOUBLE_ESCAPES:
        return _DOUBLE_ESCAPES[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _core_plain(text: str) -> Any:
    """Read a plain scalar by the YAML 1.2 core schema; anything that is not null, bool or a number is a string."""
    if text in _CORE_NULL:
        return None
    if text in _CORE_BOOL:
        return _CORE_BOOL[text]
    first = text[0]
    if not (first.isdigit() or first in "+-."):
        return text
    try:
        if _CORE_INT.fullmatch(text):
            return int(text, 10)
        if _CORE_INT_OCT.fullmatch(text):
            return int(text[2:], 8)
        if _CORE_INT_HEX.fullmatch(text):
            return int(text[2:], 16)
        if _CORE_FLOAT.fullmatch(text):
            number = float(text)
            if not math.isfinite(number):
                raise _NotAValue(f"number {_shorten(text)} is out of range")
            return number
    except ValueError as error:  # int() refuses more than sys.get_int_max_str_digits() digits
        if isinstance(error, _NotAValue):
            raise
        raise _NotAValue(f"number {_shorten(text)} has too many digits") from error
    if _CORE_NOT_FINITE.fullmatch(text):
        raise _NotAValue(f"{text} is not a JSON value (infinity or NaN); quote it if it is meant as text")
    return text


# ---------------------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------------------


class _Mapping:
    """A mapping being built from events: the dict, and the key waiting for its value."""

    __slots__ = ("items", "key")

    def __init__(self) -> None:
        self.items: dict[str, Any] = {}
        self.key: str | None = None


def load(data: bytes | str, source: str, *, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """Read one state file strictly: `read`'s value."""
    return read(data, source, max_bytes=max_bytes)[0]


def read(data: bytes | str, source: str, *, max_bytes: int = MAX_BYTES) -> tuple[dict[str, Any], bool]:
    """Read one state file strictly, and say whether its text is exactly what `dump` writes for its value.

    Read strictly: a mapping of JSON-like values, or StateFileError(source, line, column, ...).

    Refused: invalid UTF-8 or YAML, more than `max_bytes` bytes, nesting deeper than MAX_DEPTH, a top level that
    is not a mapping, more than one document, directives, tags, anchors, aliases, duplicate keys, keys that are
    not strings, and plain numbers outside the JSON model (infinities, NaN, out-of-range floats). Plain scalars
    are read by the YAML 1.2 core schema, so an unquoted date or "yes" is a string. Oversized files are reported
    at 1:1; every other refusal at the offending token.

    Files in canonical form take a fast path (`_read_canonical`) with the same result.
    """
    if isinstance(data, str):
        text = data
        size = len(text.encode("utf-8", "surrogatepass"))
    else:
        raw = bytes(data)
        size = len(raw)
        if size <= max_bytes:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                line, column = _byte_position(raw, error.start)
                raise StateFileError(
                    source, line, column, f"not valid UTF-8 (byte 0x{raw[error.start]:02x} at offset {error.start})"
                ) from None
    if size > max_bytes:
        raise StateFileError(source, 1, 1, f"file is {size} bytes, more than the limit of {max_bytes} bytes")
    canonical = _read_canonical(text)
    if canonical is not None:
        return canonical, True
    return _build(_events(text, source), source), False


def same_form(a: Any, b: Any) -> bool:
    """Whether `dump` writes `a` and `b` alike: the same keys in the same order, equal values of the same types
    (True is not 1 here, nor 1 1.0), lists and tuples alike, and any mapping as a mapping."""
    if isinstance(a, Mapping):
        return isinstance(b, Mapping) and list(a) == list(b) and all(same_form(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return isinstance(b, list | tuple) and len(a) == len(b) and all(map(same_form, a, b))
    return type(a) is type(b) and a == b


def _read_canonical(text: str) -> dict[str, Any] | None:
    """`load`'s fast path: the value of a file in exactly the form `dump` writes, or None to use the parser.

    The reading is checked by writing it again: only when `dump` gives back the very same text is it returned.
    Because `dump`'s output always reads back as its input, that value is also what the strict parser would
    read. Every other file (hand-edited, non-canonical, or in error) goes through the strict parser, which is
    more than ten times slower (ruamel's pure-Python parser) and gives the errors with their positions.
    """
    lines = text.split("\n")
    if lines.pop() != "":
        return None
    try:
        value, end = _CanonicalReader(lines).mapping(0, 0, 1)
        if end != len(lines) or _dump_text(value) != text:
            return None
    except (ValueError, TypeError, IndexError, KeyError):
        return None
    return value


class _CanonicalReader:
    """Reads the lines of a canonical file (see the rules at the top); raises ValueError at anything else.

    Positions: a collection's keys or dashes sit at column `col`; a node's text starts at line `i`, column `p`.
    Each method returns the value read and the index of the first line after it.
    """

    _SINGLE = re.compile(r"'((?:[^']|'')*)'")
    _DOUBLE = re.compile(r'"((?:[^"\\]|\\.)*)"')
    _ESCAPE = re.compile(r"\\(?:x([0-9a-f]{2})|u([0-9a-f]{4})|U([0-9a-f]{8})|(.))")
    _SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
    _LITERAL_HEADER = re.compile(r"\|(2?)([-+]?)")

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def mapping(self, i: int, col: int, depth: int) -> tuple[dict[str, Any], int]:
        if depth > MAX_DEPTH:
            raise ValueError("too deep")
        lines = self.lines
        pad = " " * col
        items: dict[str, Any] = {}
        while True:
            line = lines[i]
            if line.startswith("? ", col):
                key, end = self.quoted_or_plain(line, col + 2, len(line))
                if end != len(line) or not lines[i + 1].startswith(pad + ": "):
                    raise ValueError("explicit key")
                value, i = self.node(i + 1, col + 2, col, depth)
            else:
                key, end = self.key(line, col)
                if end + 1 == len(line):
                    value, i = self.collection(i + 1, col + 2, depth + 1)
                elif line[end + 1] == " ":
                    value, i = self.scalar(i, end + 2, col)
                else:
                    raise ValueError("key")
            if key in items:
                raise ValueError("duplicate key")
            items[key] = value
            if i == len(lines) or not lines[i].startswith(pad) or lines[i][col : col + 1] in ("", " ", "-"):
                return items, i

    def sequence(self, i: int, col: int, depth: int) -> tuple[list[Any], int]:
        if depth > MAX_DEPTH:
            raise ValueError("too deep")
        lines = self.lines
        dash = " " * col + "- "
        items: list[Any] = []
        while True:
            value, i = self.node(i, col + 2, col, depth)
            items.append(value)
            if i == len(lines) or not lines[i].startswith(dash):
                return items, i

    def collection(self, i: int, col: int, depth: int) -> tuple[Any, int]:
        """A mapping or list on its own lines, at column `col`."""
        line = self.lines[i]
        if not line.startswith(" " * col) or line[col : col + 1] in ("", " "):
            raise ValueError("indentation")
        if line.startswith("- ", col):
            return self.sequence(i, col, depth)
        return self.mapping(i, col, depth)

    def node(self, i: int, p: int, col: int, depth: int) -> tuple[Any, int]:
        """A list item's or explicit key's value, starting after its "- " or ": " at column `p` = `col` + 2."""
        line = self.lines[i]
        if line.startswith("- ", p):
            return self.sequence(i, p, depth + 1)
        if line.startswith("? ", p):
            return self.mapping(i, p, depth + 1)
        try:
            self.key(line, p)
        except ValueError:
            return self.scalar(i, p, col)
        return self.mapping(i, p, depth + 1)

    def key(self, line: str, p: int) -> tuple[str, int]:
        """A key at column `p` and the index of the ":" after it."""
        colon = line.find(": ", p)
        key, end = self.quoted_or_plain(line, p, colon if colon >= 0 else len(line) - 1)
        if line[end : end + 1] != ":" or end + 1 < len(line) and line[end + 1] != " ":
            raise ValueError("not a key")
        return key, end

    def quoted_or_plain(self, line: str, p: int, plain_end: int) -> tuple[str, int]:
        """A single-line string at column `p` and the index after it; a plain one ends at `plain_end`."""
        first = line[p : p + 1]
        if first == "'":
            match = self._SINGLE.match(line, p)
            if match is None:
                raise ValueError("single quotes")
            return match.group(1).replace("''", "'"), match.end()
        if first == '"':
            match = self._DOUBLE.match(line, p)
            if match is None:
                raise ValueError("double quotes")
            return self._ESCAPE.sub(self._unescape, match.group(1)), match.end()
        if plain_end <= p:
            raise ValueError("plain")
        return line[p:plain_end], plain_end

    def scalar(self, i: int, p: int, col: int) -> tuple[Any, int]:
        """A value written from column `p` to the end of line `i` (a literal block continues below)."""
        line = self.lines[i]
        first = line[p : p + 1]
        if first == "|":
            return self.literal(i, p, col)
        if first in ("'", '"'):
            text, end = self.quoted_or_plain(line, p, len(line))
            if end != len(line):
                raise ValueError("text after a quoted scalar")
            return text, i + 1
        rest = line[p:]
        if rest == "[]":
            return [], i + 1
        if rest == "{}":
            return {}, i + 1
        return _core_plain(rest), i + 1

    def literal(self, i: int, p: int, col: int) -> tuple[str, int]:
        header = self._LITERAL_HEADER.fullmatch(self.lines[i], p)
        if header is None:
            raise ValueError("literal header")
        pad = " " * (col + 2)
        content: list[str] = []
        for i in range(i + 1, len(self.lines)):  # noqa: B020 - `i` ends at the first line after the block
            line = self.lines[i]
            if line and not line.startswith(pad):
                break
            content.append(line[len(pad) :])
        else:
            i = len(self.lines)
        return "\n".join(content) + ("" if header.group(2) == "-" else "\n"), i

    @classmethod
    def _unescape(cls, match: re.Match[str]) -> str:
        hex_code = match.group(1) or match.group(2) or match.group(3)
        if hex_code:
            return chr(int(hex_code, 16))
        return cls._SIMPLE_ESCAPES[match.group(4)]


def _build(events: Iterator[Event], source: str) -> dict[str, Any]:
    stack: list[_Mapping | list[Any]] = []
    root: dict[str, Any] | None = None
    documents = 0

    def fail(event: Event, message: str) -> StateFileError:
        mark = event.start_mark
        return StateFileError(source, mark.line + 1, mark.column + 1, message)

    def add(value: Any, event: Event) -> None:
        top = stack[-1]
        if type(top) is list:
            top.append(value)
        elif top.key is None:
            if type(value) is not str:
                raise fail(event, f"mapping key {_shorten(event.value)} is not a string; quote it")
            if value in top.items:
                raise fail(event, f"duplicate key {_shorten(value)}")
            top.key = value
        else:
            top.items[top.key] = value
            top.key = None

    for event in events:
        kind = type(event)
        if kind is ScalarEvent:
            _check_node(event, fail)
            if not stack:
                raise fail(event, "the top level must be a mapping of property names to values")
            if event.style is None:
                try:
                    value = _core_plain(event.value)
                except _NotAValue as error:
                    raise fail(event, str(error)) from None
            else:
                value = event.value
                if event.style == '"' and _SURROGATE.search(value):
                    raise fail(event, "an escape gives an unpaired surrogate, which is not valid text")
            add(value, event)
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            _check_node(event, fail)
            if len(stack) >= MAX_DEPTH:
                raise fail(event, f"nested deeper than {MAX_DEPTH} levels")
            if not stack:
                if kind is not MappingStartEvent:
                    raise fail(event, "the top level must be a mapping of property names to values")
            elif type(stack[-1]) is _Mapping and stack[-1].key is None:
                raise fail(event, "mapping keys must be strings, not lists or mappings")
            stack.append(_Mapping() if kind is MappingStartEvent else [])
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            done = stack.pop()
            value = done.items if type(done) is _Mapping else done
            if stack:
                add(value, event)
            else:
                root = value
        elif kind is AliasEvent:
            raise fail(event, f"aliases (*{event.anchor}) are not allowed")
        elif kind is DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise fail(event, "a state file holds one YAML document")
            if event.version is not None or event.tags:
                raise fail(event, "YAML directives (%YAML, %TAG) are not allowed")
    if root is None:
        raise StateFileError(source, 1, 1, "file is empty; expected a mapping of property names to values")
    return root


def _check_node(event: Any, fail: Any) -> None:
    if event.anchor is not None:
        raise fail(event, f"anchors (&{event.anchor}) are not allowed")
    if event.ctag is not None:
        raise fail(event, f"tags ({event.tag}) are not allowed")


def _events(text: str, source: str) -> Iterator[Event]:
    """ruamel's parse events for `text`, with its errors turned into StateFileError at the parser's position."""
    parser = YAML(typ="safe", pure=True)
    try:
        yield from parser.parse(text)
    except ReaderError as error:
        line, column = _text_position(text, error.position)
        raise StateFileError(
            source, line, column, f"character {error.character!r} is not allowed: {error.reason}"
        ) from None
    except MarkedYAMLError as error:
        marks = (error.context_mark, error.problem_mark)
        if not isinstance(error, ScannerError):
            marks = marks[::-1]  # the token the parser stopped at; a scanner error's context is the bad token
        mark = next((mark for mark in marks if mark is not None), None)
        message = "; ".join(part for part in (error.context, error.problem) if part) or "invalid YAML"
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise StateFileError(source, line, column, f"invalid YAML: {message}") from None
    except YAMLError as error:
        raise StateFileError(source, 1, 1, f"invalid YAML: {error}") from None
    except RecursionError:
        raise StateFileError(source, 1, 1, "invalid YAML: nested too deeply to parse") from None


def _text_position(text: str, index: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def _byte_position(raw: bytes, offset: int) -> tuple[int, int]:
    line_start = raw.rfind(b"\n", 0, offset) + 1
    column = len(raw[line_start:offset].decode("utf-8", "replace")) + 1
    return raw.count(b"\n", 0, offset) + 1, column


def _shorten(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
