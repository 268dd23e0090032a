"""Tenant text made safe to show: no character of it can act on a terminal or hide what the text says."""

from __future__ import annotations

import json
import re

# C0 controls, DEL and C1 controls: terminals act on them (ESC and U+009B start sequences, BEL, CR, LF).
_CONTROLS = "\x00-\x1f\x7f-\x9f"
# Unicode format characters (category Cf) reorder or hide text: bidi embeddings, overrides, isolates and
# marks, zero-width spaces, invisible operators, the BOM, tag characters (invisible ASCII). ZWJ (U+200D) and
# ZWNJ (U+200C) stay: emoji sequences and scripts such as Persian and the Indic ones need them in names.
_FORMAT = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u200e\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
# Line and paragraph separators break lines like LF; a lone surrogate cannot even be encoded for output.
_BREAKS = "\u2028\u2029\ud800-\udfff"

# A subdivision flag (England, Scotland, Wales) is the one proper use of tag characters: it stays whole.
_FLAG = "\U0001f3f4[\U000e0030-\U000e0039\U000e0061-\U000e007a]{1,7}\U000e007f"
_UNSAFE = re.compile(f"({_FLAG})|[{_CONTROLS}{_FORMAT}{_BREAKS}]")
# Serialized JSON already escapes C0 controls, and its newlines and tabs are layout, so those stay.
_JSON_UNSAFE = re.compile(f"[\x7f-\x9f{_FORMAT}{_BREAKS}]")

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    if match[1]:
        return match[1]
    char = match[0]
    code = ord(char)
    if char in _SHORT:
        return _SHORT[char]
    if code <= 0x9F:  # C0, DEL and C1: the controls as Python writes them
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(text: str) -> str:
    """`text` with every character that could act on a terminal or hide text shown as a visible escape."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape, text)


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match[0])
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    # JSON has only four-digit escapes: a character beyond the BMP is written as its surrogate pair.
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_safe(text: str) -> str:
    """A serialized JSON document with C1, bidi and other invisible controls as `\\uNNNN` escapes."""
    if _JSON_UNSAFE.search(text) is None:
        return text
    return _JSON_UNSAFE.sub(_json_escape, text)


def json_text(document: object) -> str:
    """A JSON document as a report prints it: indented, UTF-8 as is, invisible controls escaped (no newline)."""
    return json_safe(json.dumps(document, indent=2, ensure_ascii=False))
