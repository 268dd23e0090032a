"""Object ids as file names: safe on every file system, free of collisions, and exactly reversible.

Naming scheme (the file name without its ".yaml" suffix):

- A *plain* id is one made only of lower-case ASCII letters, digits and "-", that does not start with "-" and
  is not a Windows device name (con, prn, aux, nul, com0-com9, lpt0-lpt9). It is its own file name. Graph's
  GUIDs ("0f2c8a36-4a0e-4d8e-9a57-0f3c2b6f1a11") are plain ids.
- Every other id (upper-case letters, "_", dots, "." and "..", separators such as "/" and "\\", NUL and other
  control characters, non-ASCII text, the case-sensitive base64url ids of app role assignments and permission
  grants) is written as "_" followed by the unpadded, lower-case base32 (RFC 4648) encoding of its UTF-8 bytes.

Plain names never contain "_", so the two forms cannot be confused. Every name uses only [0-9a-z_-] and is
entirely lower case, so two different ids (including ids that differ only in case) never give names that
collide on a case-insensitive file system. Decoding accepts only the names this module writes.

An id is refused (UnsafeIdError) when it is empty, longer than MAX_ID_LENGTH characters, not encodable as
UTF-8 (unpaired surrogates), or when its file name would be longer than MAX_NAME_BYTES bytes.
"""

from __future__ import annotations

import base64
import binascii
import re

from entra_gitops.model.errors import EntraGitopsError

MAX_ID_LENGTH = 400
"""Longest object id accepted, in characters."""

MAX_NAME_BYTES = 240
"""Longest file name produced (without ".yaml"), in bytes; file systems allow 255."""

ENCODED_PREFIX = "_"

_PLAIN_ID = re.compile(r"[0-9a-z][0-9a-z-]*")
_ENCODED_NAME = re.compile(r"_[a-z2-7]+")
_WINDOWS_DEVICE_NAMES = frozenset(
    {"con", "prn", "aux", "nul"} | {f"{stem}{digit}" for stem in ("com", "lpt") for digit in range(10)}
)


class UnsafeIdError(EntraGitopsError):
    """An object id that cannot safely become a file name, or a file name that is not one written for an id."""

    def __init__(self, message: str, *, value: object, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.value = value


def validate_object_id(object_id: str) -> str:
    """Return `object_id` unchanged if it can become a file name, else raise UnsafeIdError."""
    object_file_name(object_id)
    return object_id


def object_file_name(object_id: str) -> str:
    """The file name (without ".yaml") for an object id; `object_id_from_file_name` reverses it exactly."""
    if not isinstance(object_id, str):
        raise _unsafe(object_id, f"is a {type(object_id).__name__}, not a string")
    if not object_id:
        raise _unsafe(object_id, "is empty")
    if len(object_id) > MAX_ID_LENGTH:
        raise _unsafe(object_id, f"is {len(object_id)} characters long; the limit is {MAX_ID_LENGTH}")
    if _is_plain(object_id):
        name = object_id
    else:
        try:
            data = object_id.encode("utf-8")
        except UnicodeEncodeError:
            raise _unsafe(object_id, "is not valid Unicode text (it holds an unpaired surrogate)") from None
        name = ENCODED_PREFIX + base64.b32encode(data).decode("ascii").rstrip("=").lower()
    if len(name) > MAX_NAME_BYTES:
        raise _unsafe(object_id, f"would need a file name of {len(name)} bytes; the limit is {MAX_NAME_BYTES}")
    return name


def object_id_from_file_name(name: str) -> str:
    """The object id a file name (without ".yaml") was made from; UnsafeIdError for names not made that way."""
    if not isinstance(name, str):
        raise UnsafeIdError(f"file name {_describe(name)} is a {type(name).__name__}, not a string", value=name)
    if _is_plain(name):
        return name
    if len(name) > MAX_NAME_BYTES or _ENCODED_NAME.fullmatch(name) is None:
        raise _not_a_name(name)
    encoded = name[len(ENCODED_PREFIX) :].upper()
    try:
        object_id = base64.b32decode(encoded + "=" * (-len(encoded) % 8)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _not_a_name(name) from None
    # Only the one name this module writes for an id decodes to it (no plain ids in encoded form, no stray bits).
    if not object_id or _is_plain(object_id) or object_file_name(object_id) != name:
        raise _not_a_name(name)
    return object_id


def _is_plain(text: str) -> bool:
    return _PLAIN_ID.fullmatch(text) is not None and text not in _WINDOWS_DEVICE_NAMES


def _unsafe(object_id: object, problem: str) -> UnsafeIdError:
    return UnsafeIdError(f"object id {_describe(object_id)} {problem}", value=object_id)


def _not_a_name(name: str) -> UnsafeIdError:
    return UnsafeIdError(
        f"file name {_describe(name)} is not one entra-gitops writes for an object id",
        value=name,
        hint="state files are named by the plain lower-case id, or '_' and the base32 of the id",
    )


def _describe(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
