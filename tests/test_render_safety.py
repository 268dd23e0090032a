"""Tenant text cannot act on a reviewer's terminal or forge report lines: textsafe and every rendering of a report."""

from __future__ import annotations

import html
import json
import re
import sys
import unicodedata
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from entra_gitops.model.frozen import freeze
from entra_gitops.model.registry import default_registry
from entra_gitops.model.tenant import Lifecycle, ObjectState, TenantState
from entra_gitops.model.textsafe import json_safe, printable
from entra_gitops.report.diff import DifferenceReport, difference_report
from entra_gitops.report.jsonout import render_json
from entra_gitops.report.markdown import render_markdown
from entra_gitops.report.text import render_text
from entra_gitops.report.view import ReportView, build_view, display_names, format_value

REGISTRY = default_registry()
REPORT_SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "reports" / "difference-report.schema.json"
U1 = "11111111-1111-4111-8111-111111111111"
U2 = "22222222-2222-4222-8222-222222222222"
U3 = "44444444-4444-4444-8444-444444444444"
G1 = "33333333-3333-4333-8333-333333333333"

TITLE = "Evil\x1b]0;pwned\x07\x1b[2J\x1b[32m"  # sets the terminal title, clears the screen, fakes a colour
FORGED = "Kari\n+ user 'Fake' (id): created after the backup"  # a line of its own, unless escaped
DEPARTMENT = "Sales\x9b31m\u202etxt.exe\r\x85done"  # C1 CSI, right-to-left override, CR, C1 next line
MEMBER = "</details>[click](http://evil.example) ![x](http://evil.example/x.png) `tick` <img src=x> \u2066\u2028"
GROUP_BEFORE = "Team"
GROUP_AFTER = "Team | forged | cells |"

BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# Nothing from the tenant may leave these in any rendering (the renderers' own newlines aside).
FORBIDDEN = re.compile(f"[\x00-\x09\x0b-\x1f\x7f-\x9f{BIDI}\u2028\u2029]")
SGR = re.compile(r"\x1b\[[0-9;]*m")


def user(object_id: str, **data: Any) -> ObjectState:
    return ObjectState("user", object_id, Lifecycle.ACTIVE, freeze({"id": object_id, **data}))


def group(name: str, members: list[str]) -> ObjectState:
    return ObjectState("group", G1, Lifecycle.ACTIVE, freeze({"id": G1, "displayName": name, "members": members}))


def tenant(*objects: ObjectState) -> TenantState:
    return TenantState.of(list(objects), frozenset({"user", "group"}))


BACKUP = tenant(user(U1, displayName=TITLE, department="Finance"), group(GROUP_BEFORE, [U1]))
CURRENT = tenant(
    user(U1, displayName=TITLE, department=DEPARTMENT),
    user(U2, displayName=FORGED),
    user(U3, displayName=MEMBER),
    group(GROUP_AFTER, [U1, U2, U3]),
)


@pytest.fixture(scope="module")
def report() -> DifferenceReport:
    return difference_report(REGISTRY, BACKUP, CURRENT, backup_name="backup/1", against_name="live tenant")


@pytest.fixture(scope="module")
def view(report: DifferenceReport) -> ReportView:
    return build_view(report, display_names(report, BACKUP, CURRENT))


def _assert_inert(text: str) -> None:
    found = FORBIDDEN.search(text)
    assert found is None, (
        f"raw {found[0]!r} at {found.start()}: {text[max(0, found.start() - 40) : found.end() + 40]!r}"
    )
    assert "\x1b" not in text


# -- printable ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Kari Nordmann",
        "kari_n@contoso.com",
        "C:\\Users\\kari \\n stays a backslash and an n",
        "Ærøskøbing — 東京 — مرحبا",
        "می‌خواهم",  # Persian with a zero-width non-joiner
        "👩‍💻 and ❤️ and 👍🏽",  # zero-width joiner, variation selector, skin tone
        "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",  # the flag of England: tag characters
    ],
)
def test_printable_leaves_safe_text_as_it_is(text: str) -> None:
    assert printable(text) == text
    if "\U000e007f" not in text:  # a flag's tag characters are looked at; everything else takes the fast path
        assert printable(text) is text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\nb\rc\td", "a\\nb\\rc\\td"),
        ("Evil\x1b]0;pwned\x07", "Evil\\x1b]0;pwned\\x07"),
        ("\x00\x1f\x7f", "\\x00\\x1f\\x7f"),
        ("\x80\x85\x9b\x9f", "\\x80\\x85\\x9b\\x9f"),
        ("a\u202eb\u2066c\u2069\u061c\u200e\u200f", "a\\u202eb\\u2066c\\u2069\\u061c\\u200e\\u200f"),
        ("line\u2028para\u2029", "line\\u2028para\\u2029"),
        ("ad\u200bmin\ufeff\u00ad", "ad\\u200bmin\\ufeff\\u00ad"),
        ("hidden\U000e0041\U000e0042", "hidden\\U000e0041\\U000e0042"),  # tag characters outside a flag
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
        ("back\\slash \x1b", "back\\slash \\x1b"),
    ],
)
def test_printable_shows_each_kind_of_control_as_an_escape(text: str, shown: str) -> None:
    assert printable(text) == shown
    assert printable(shown) is shown  # the result is safe itself: escaping twice changes nothing


def test_printable_escapes_every_control_and_format_character_but_the_joiners() -> None:
    kept = {"\u200c", "\u200d"}
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp") and char not in kept:
            escaped = printable(f"a{char}b")
            assert char not in escaped and escaped.startswith("a\\") and escaped.endswith("b"), hex(code)


# -- json_safe ---------------------------------------------------------------------------------


def test_json_safe_escapes_c1_bidi_and_separators_and_parses_back_the_same() -> None:
    value = {"name": f"x\x85\x9b{BIDI}\u2028\u2029\x7f\u200b\U000e0041\ud800 \x1b\n", "n": [1, "two"]}
    document = json.dumps(value, indent=2, ensure_ascii=False)
    safe = json_safe(document)
    assert json.loads(safe) == value
    _assert_inert(safe)
    assert "\\u009b" in safe and "\\u202e" in safe and "\\u2028" in safe
    assert "\\udb40\\udc41" in safe  # beyond the BMP: JSON's surrogate pair
    assert safe.count("\n") == document.count("\n")  # the layout stays


def test_json_safe_leaves_a_safe_document_itself() -> None:
    document = json.dumps({"name": "Kari 👩‍💻 東京", "s": "a\\b"}, indent=2, ensure_ascii=False)
    assert json_safe(document) is document


def test_format_value_of_a_structure_is_valid_json_and_printable() -> None:
    value = {"a": [TITLE, DEPARTMENT], "b": {"c": MEMBER}}
    shown = format_value(freeze(value))
    assert json.loads(shown) == value
    assert printable(shown) is shown
    assert format_value(DEPARTMENT) == "Sales\\x9b31m\\u202etxt.exe\\r\\x85done"
    assert format_value({"a": ["x"]}) == '{"a": ["x"]}'


# -- the view and its renderings -----------------------------------------------------------


def test_the_view_holds_only_printable_text_and_the_tenant_values_beside(view: ReportView) -> None:
    first = next(r for r in view.rows if r.id == U1)
    assert first.display == printable(TITLE) and first.display_value == TITLE
    (department,) = first.properties
    assert department.after == printable(DEPARTMENT) and department.after_value == DEPARTMENT
    groups = next(r for r in view.rows if r.type_name == "group")
    (members,) = groups.links
    assert dict(members.added) == {U2: printable(FORGED), U3: printable(MEMBER)}
    assert members.added_values is not None and dict(members.added_values) == {U2: FORGED, U3: MEMBER}


@pytest.mark.parametrize("colour", [False, True])
def test_text_shows_hostile_names_escaped_and_only_its_own_colours(view: ReportView, colour: bool) -> None:
    text = render_text(view, colour=colour)
    plain = SGR.sub("", text)
    if colour:
        assert plain == render_text(view, colour=False)  # every escape sequence is one of the renderer's colours
        assert set(SGR.findall(text)) <= {f"\x1b[{code}m" for code in ("0", "2", "31", "32", "33", "36")}
    _assert_inert(plain)
    lines = plain.splitlines()
    assert not [line for line in lines if line.startswith("+ user 'Fake'")]
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x1b[32m" in plain  # the reviewer sees that something is odd
    assert "Kari\\n+ user 'Fake' (id): created after the backup" in plain
    assert "~ department: Finance -> Sales\\x9b31m\\u202etxt.exe\\r\\x85done" in plain
    assert f"{printable(FORGED)} ({U2})" in plain  # the member's name beside its id


def test_markdown_keeps_tenant_text_inside_its_cell_and_section(view: ReportView) -> None:
    markdown = render_markdown(view)
    _assert_inert(markdown)
    lines = markdown.splitlines()
    assert not [line for line in lines if line.startswith("+ user 'Fake'")]
    shown = html.unescape(markdown)
    assert "\\x1b]0;pwned\\x07" in shown and printable(FORGED) in shown and printable(MEMBER) in shown
    # no link, image, tag or code span made by a name; every <details> closed by the renderer
    assert "](" not in markdown and "![" not in markdown and "<img" not in markdown and "`tick`" not in markdown
    assert markdown.count("<details>") == markdown.count("</details>") == len(view.rows)
    # a table row keeps its columns: the group's renamed displayName has pipes in both cells
    rows = [line for line in lines if line.startswith("| `")]
    assert rows and all(line.count("|") == 5 for line in rows)
    renamed = next(line for line in rows if line.startswith("| `displayName`"))
    assert html.unescape(renamed).startswith(f"| `displayName` | {GROUP_BEFORE} | {GROUP_AFTER} |")
    summary = [line for line in lines if line.startswith(("| type", "| user", "| group", "| **total"))]
    assert len(summary) == 4 and all(line.count("|") == 8 for line in summary)


def test_json_keeps_the_tenant_values_and_escapes_them_when_serialized(view: ReportView) -> None:
    text = render_json(view)
    _assert_inert(text)
    document = json.loads(text)
    jsonschema.validate(document, json.loads(REPORT_SCHEMA.read_text()))
    changes = {c["id"]: c for c in document["changes"]}
    assert changes[U1]["displayName"] == TITLE
    assert changes[U1]["properties"] == [
        {"name": "department", "before": "Finance", "after": DEPARTMENT, "recoverable": True, "reason": None}
    ]
    assert changes[U2]["displayName"] == FORGED and changes[U3]["displayName"] == MEMBER
    (members,) = changes[G1]["links"]
    assert {m["id"]: m["displayName"] for m in members["added"]} == {U2: FORGED, U3: MEMBER}
    assert "\\u009b" in text and "\\u202e" in text and "\\u2066" in text and "\\u2028" in text


def test_normal_names_render_as_they_are() -> None:
    before = tenant(user(U1, displayName="Kari (Finance)", department="Finance"))
    after = tenant(user(U1, displayName="Kari (Finance)", department="Sales & Marketing"))
    normal = build_view(difference_report(REGISTRY, before, after, backup_name="backup/1", against_name="now"))
    assert "~ user 'Kari (Finance)' (" in render_text(normal)
    assert "<b>Kari (Finance)</b>" in render_markdown(normal)
    assert "| `department` | Finance | Sales &amp; Marketing | yes |" in render_markdown(normal)
    assert json.loads(render_json(normal))["changes"][0]["displayName"] == "Kari (Finance)"
