"""Object ids as file names: exact round trips, no collisions on case-insensitive file systems, unsafe ids refused."""

from __future__ import annotations

import random
import re

import pytest

from entra_gitops.model.errors import EntraGitopsError
from entra_gitops.state.paths import (
    MAX_ID_LENGTH,
    MAX_NAME_BYTES,
    UnsafeIdError,
    object_file_name,
    object_id_from_file_name,
    validate_object_id,
)

SAFE_NAME = re.compile(r"[0-9a-z][0-9a-z-]*|_[a-z2-7]+")

IDS = [
    "0f2c8a36-4a0e-4d8e-9a57-0f3c2b6f1a11",
    "0F2C8A36-4A0E-4D8E-9A57-0F3C2B6F1A11",
    "xR5pLp0rU0O4Fb8oB2Qw3kZ0yQ2r8fEhA1cT7pWq9sM",
    "xr5plp0ru0o4fb8ob2qw3kz0yq2r8fehA1cT7pWq9sM",
    "rZ8ZVz-xFkiQ0vN3aB_c1dE2fG3hI4jK5lM6nO7pQ8",
    "_starts-with-underscore",
    "x-plain",
    "-leading-dash",
    ".",
    "..",
    "a/b",
    "a\\b",
    "../../etc/passwd",
    "C:",
    "a.b",
    "a\x00b",
    "\x00",
    "tab\there",
    "Bjørn",
    "日本語",
    "🎉",
    "con",
    "CON",
    "nul",
    "lpt9",
    "com1",
    "Ｇｕｉｄ",
    "a" * MAX_NAME_BYTES,
]


@pytest.mark.parametrize("object_id", IDS, ids=[repr(i)[:40] for i in IDS])
def test_ids_round_trip_through_safe_names(object_id: str) -> None:
    name = object_file_name(object_id)
    assert object_id_from_file_name(name) == object_id
    assert SAFE_NAME.fullmatch(name), name
    assert name == name.lower()
    assert name not in (".", "..") and len(name.encode()) <= MAX_NAME_BYTES
    assert validate_object_id(object_id) == object_id


def test_plain_ids_are_their_own_names() -> None:
    for object_id in ("0f2c8a36-4a0e-4d8e-9a57-0f3c2b6f1a11", "abc", "x-plain", "9", "a-"):
        assert object_file_name(object_id) == object_id


def test_other_ids_are_prefixed_base32() -> None:
    assert object_file_name("A") == "_ie"
    assert object_file_name("..") == "_fyxa"
    assert object_file_name("0F2C8A36-4A0E-4D8E-9A57-0F3C2B6F1A11").startswith("_")
    assert object_file_name("con") == "_mnxw4"


def test_names_never_collide_even_case_insensitively() -> None:
    rng = random.Random(7)
    alphabet = "aAbBzZ09-_./\\é\x00"
    ids = set(IDS)
    ids.update("".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 12))) for _ in range(5000))
    base = "xR5pLp0rU0O4Fb8oB2Qw3kZ0yQ2r8fEhA1cT7pWq9sM"
    for _ in range(200):  # ids that differ only in case
        ids.add("".join(c.upper() if rng.random() < 0.5 else c.lower() for c in base))
    names = [object_file_name(object_id) for object_id in ids]
    assert len({name.lower() for name in names}) == len(ids)
    assert all(object_id_from_file_name(object_file_name(object_id)) == object_id for object_id in ids)


@pytest.mark.parametrize(
    ("object_id", "words"),
    [
        ("", "is empty"),
        ("a" * (MAX_ID_LENGTH + 1), "characters long"),
        ("a" * (MAX_NAME_BYTES + 1), "file name of 241 bytes"),
        ("A" * 200, "file name of"),
        ("ø" * 100, "file name of"),
        ("bad \ud800 surrogate", "unpaired surrogate"),
        (None, "not a string"),
        (12, "not a string"),
    ],
)
def test_unsafe_ids_are_refused_with_the_id_in_the_message(object_id: object, words: str) -> None:
    with pytest.raises(UnsafeIdError) as caught:
        object_file_name(object_id)  # type: ignore[arg-type]
    message = str(caught.value)
    assert words in message
    assert repr(object_id)[:20] in message
    assert len(message) < 200  # long ids are shortened
    assert isinstance(caught.value, EntraGitopsError)
    with pytest.raises(UnsafeIdError):
        validate_object_id(object_id)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    [
        "",
        "A",
        "-x",
        ".",
        "..",
        "a.yaml",
        "a/b",
        "_",
        "_IE",
        "_ie=",
        "_i",  # a length base32 never produces
        "_if",  # "A" with stray low bits set
        "_mfrgg",  # "abc": a plain id written in encoded form
        "_mnxw4x",
        "con",
        "_" + "a" * 300,
        "x_y",
    ],
)
def test_only_names_written_for_ids_are_decoded(name: str) -> None:
    with pytest.raises(UnsafeIdError, match="not one entra-gitops writes"):
        object_id_from_file_name(name)
