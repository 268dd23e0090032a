"""`entra-gitops show` (a saved plan, checked, printed as `plan` printed it) and `entra-gitops fmt` (state files
rewritten into canonical form, or refused), through the real CLI.

The plans are made once per module against a demo emulator served over loopback, with drift of every kind of
write made through Graph; the emulator is gone before any `show` runs, so show is seen to need no Graph.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from conftest import git, run_main, served
from test_recovery import CA_POLICY, ENGINEERING, HENRIK, KARI, NORA, PER, RESOURCE, SG_FINANCE, STRENGTH, live

from entra_gitops.model import canonical
from entra_gitops.recovery.plan import compute_checksum
from entra_gitops.state.normalize import REDACTED

SECRET = "abc8Q~" + "x" * 34  # the shape of an Entra client secret, nobody's


class Printed(NamedTuple):
    """A plan file and what `plan` printed on stdout when it saved it."""

    path: Path
    stdout: str
    code: int


@pytest.fixture(scope="module")
def plans(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Printed]]:
    """Plans saved by the real `plan -o` in each format, and one saved although the guards refused it."""
    folder = tmp_path_factory.mktemp("plans")
    repo = folder / "state"
    shutil.copytree(template, repo, symlinks=True)
    made: dict[str, Printed] = {}

    def plan(name: str, *args: str, code: int = 0) -> None:
        path = folder / f"{name}.json"
        result = run_main("plan", "--repo", repo, "--graph-url", url, "-o", path, *args)
        assert result.returncode == code, result.stdout + result.stderr
        made[name] = Printed(path, result.stdout, result.returncode)

    with served() as (url, _), live(url) as graph:
        assignment = graph.assignments()[0]
        graph.write("DELETE", f"users/{PER}")
        graph.write("PATCH", f"users/{KARI}", {"department": "Procurement", "jobTitle": "Buyer"})
        graph.write("PATCH", f"identity/conditionalAccess/policies/{CA_POLICY}", {"state": "disabled"})
        graph.add_member(SG_FINANCE, HENRIK)
        graph.write("DELETE", f"groups/{ENGINEERING}/members/{NORA}/$ref")
        graph.write("POST", "applications", {"displayName": "Created After The Backup"})
        graph.write("DELETE", f"servicePrincipals/{RESOURCE}/appRoleAssignedTo/{assignment['id']}")
        graph.write(
            "POST",
            f"policies/authenticationStrengthPolicies/{STRENGTH}/updateAllowedCombinations",
            {"allowedCombinations": ["fido2"]},
        )
        for output_format in ("text", "markdown", "json"):
            plan(output_format, "--format", output_format)
        config = repo / "entra-gitops.yaml"
        config.write_text(config.read_text() + f"protected:\n  - type: user\n    id: {KARI}\n", encoding="utf-8")
        git(repo, "commit", "-q", "-am", "Protect Kari")
        plan("refused", "--type", "user", code=3)  # saved: --force takes a protected object
    yield made


def show(*args: Any) -> Any:
    return run_main("show", *args)


# -- show ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("output_format", ["text", "markdown"])
def test_show_prints_a_saved_plan_byte_for_byte_as_plan_printed_it(
    plans: dict[str, Printed], output_format: str
) -> None:
    saved = plans[output_format]
    steps = {w["step"] for w in json.loads(saved.path.read_text(encoding="utf-8"))["writes"]}
    assert {"restore", "update", "action", "addLink", "removeLink", "create", "softDelete"} <= steps
    shown = show(saved.path, "--format", output_format)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == saved.stdout
    assert shown.stderr == ""
    assert ("Warnings" in shown.stdout) and "no breakGlass accounts" in shown.stdout  # the guards' findings too
    if output_format == "text":
        assert show(saved.path).stdout == saved.stdout  # text is the default


def test_show_json_is_the_plan_document_plan_printed(plans: dict[str, Printed]) -> None:
    saved = plans["json"]
    shown = show(saved.path, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == saved.stdout
    assert json.loads(shown.stdout) == json.loads(saved.path.read_text(encoding="utf-8"))


def test_show_renders_the_refusals_a_plan_was_saved_with(plans: dict[str, Printed]) -> None:
    saved = plans["refused"]
    document = json.loads(saved.path.read_text(encoding="utf-8"))
    assert [(r["guard"], r["id"]) for r in document["refusals"]] == [("protected", KARI)]
    for output_format in ("text", "markdown"):
        printed = run_main("show", saved.path, "--format", output_format)
        assert printed.returncode == 0, printed.stderr
        if output_format == "text":
            assert printed.stdout == saved.stdout
            assert "Unsafe (refused, exit 3; the flag in brackets takes it anyway)" in printed.stdout
            assert "[--force]" in printed.stdout
        else:
            assert "**Unsafe: refused (exit 3)**" in printed.stdout and "`--force` takes it anyway" in printed.stdout


def test_show_refuses_a_changed_or_foreign_file_with_the_reason(plans: dict[str, Printed], tmp_path: Path) -> None:
    document = json.loads(plans["refused"].path.read_text(encoding="utf-8"))

    def written(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    quieter = {**document, "refusals": []}  # a reviewer must not be shown a plan without its refusals
    tampered = written("tampered.json", json.dumps(quieter))
    body = json.loads(json.dumps(document))
    next(w for w in body["writes"] if w["id"] == KARI)["body"]["department"] = "Chosen by someone else"
    foreign = {**document, "format": "entra-gitops.plan/99"}
    foreign["checksum"] = compute_checksum(foreign)
    extra = {**document, "note": "apply me"}
    extra["checksum"] = compute_checksum(extra)
    cases = {
        written("body.json", json.dumps(body)): "the plan was changed after it was made (its checksum does not match)",
        tampered: "the plan was changed after it was made",
        written("foreign.json", json.dumps(foreign)): "plan format 'entra-gitops.plan/99' is not 'entra-gitops.plan/2'",
        written("extra.json", json.dumps(extra)): "not a well-formed plan at (the document)",
        written("cut.json", plans["json"].path.read_text(encoding="utf-8")[:200]): "cut.json:",
    }
    for path, reason in cases.items():
        result = show(path)
        assert result.returncode == 1, (path.name, result.stdout)
        assert result.stdout == ""
        assert result.stderr.startswith("error: ") and reason in result.stderr, (path.name, result.stderr)
    assert "not a plan file" in show(tmp_path / "cut.json").stderr
    assert show(tmp_path / "missing.json").returncode == 1


# -- fmt ----------------------------------------------------------------------------------------


def state_file(repo: Path, folder: str, index: int = 0) -> Path:
    return sorted((repo / "tenant-state" / folder).glob("*.yaml"))[index]


def scrambled(path: Path, **changes: Any) -> bytes:
    """The file's own values in another form: JSON (valid YAML), keys in reverse, sets unsorted, GUIDs upper case."""
    data = canonical.load(path.read_bytes(), str(path))
    for name in ("members", "owners"):
        if name in data:
            data[name] = [member.upper() for member in reversed(data[name])]
    data.update(changes)
    text = json.dumps(dict(reversed(list(data.items()))), indent=4) + "\n"
    path.write_text(text, encoding="utf-8")
    return text.encode()


def relative(repo: Path, path: Path) -> str:
    return path.relative_to(repo).as_posix()


def fmt(repo: Path, *args: Any) -> Any:
    """`entra-gitops fmt` run in the repository, as a person or pre-commit runs it."""
    here = Path.cwd()
    os.chdir(repo)
    try:
        return run_main("fmt", *args)
    finally:
        os.chdir(here)


def test_fmt_rewrites_files_into_the_form_a_snapshot_writes(repo: Path) -> None:
    group = max((repo / "tenant-state" / "groups").glob("*.yaml"), key=lambda p: p.read_text().count("\n  - "))
    user = state_file(repo, "users")
    originals = {path: path.read_bytes() for path in (group, user)}
    scrambled(group)
    assert not {"mobilePhone", "otherMails"} & set(canonical.load(user.read_bytes(), str(user)))
    scrambled(user, mobilePhone=None, otherMails=[])  # unset, as Graph says it: left out again

    checked = run_main("validate", repo / "tenant-state")
    assert checked.returncode == 1
    assert f"`entra-gitops fmt {relative(repo, user)}` rewrites it" in checked.stderr

    before = {path: path.read_bytes() for path in originals}
    check = fmt(repo, "--check")
    assert check.returncode == 1
    assert {f"would rewrite {relative(repo, p)}" for p in originals} <= set(check.stdout.splitlines())
    assert "2 would be rewritten. Run entra-gitops fmt to rewrite them." in check.stderr
    assert {path: path.read_bytes() for path in originals} == before, "--check writes nothing"

    result = fmt(repo)
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.splitlines()[:2]) == {f"rewrote {relative(repo, p)}" for p in originals}
    assert "2 rewritten." in result.stdout
    assert {path: path.read_bytes() for path in originals} == originals, "the snapshot's own bytes again"
    assert run_main("validate", repo / "tenant-state").returncode == 0
    assert git(repo, "status", "--porcelain") == ""

    again = fmt(repo, "--check")
    assert again.returncode == 0 and again.stdout.strip().endswith("0 would be rewritten.")


def test_fmt_refuses_what_it_cannot_fix_and_leaves_it_untouched(repo: Path) -> None:
    users = [state_file(repo, "users", i) for i in range(5)]
    fixable = users[0]
    fixed = fixable.read_bytes()
    scrambled(fixable)
    users[1].write_text("id: [\n", encoding="utf-8")
    scrambled(users[2], accountEnabled="yes")
    mismatched = users[3].with_name("00000000-0000-4000-8000-00000000f00d.yaml")
    users[3].rename(mismatched)
    scrambled(users[4], jobTitle=SECRET)
    refused = [users[1], users[2], mismatched, users[4]]
    before = {path: path.read_bytes() for path in refused}

    result = fmt(repo, *[relative(repo, p) for p in [fixable, *refused]])
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == f"rewrote {relative(repo, fixable)}"
    assert fixable.read_bytes() == fixed
    assert {path: path.read_bytes() for path in refused} == before
    errors = result.stderr.splitlines()
    for path, message in [
        (users[1], "invalid YAML"),
        (users[2], "accountEnabled: 'yes' is not of type 'boolean'"),
        (mismatched, "does not match the file name"),
        (users[4], "jobTitle: holds a value that looks like a client secret"),
    ]:
        prefix = f"{relative(repo, path)}:"
        assert any(e.startswith(prefix) and message in e for e in errors), (prefix, message, errors)
    assert not any(SECRET in e for e in errors) and REDACTED.encode() not in users[4].read_bytes()
    validated = run_main("validate", users[4])  # says what fmt will say, not "run fmt"
    assert "looks like a client secret" in validated.stderr and "entra-gitops fmt" not in validated.stderr
    assert errors[-1] == (
        "5 state file(s) checked: 1 rewritten, 4 left untouched (fmt cannot fix the problems above: fix them by hand)."
    )


def test_an_interrupted_fmt_leaves_every_file_whole(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    users = [state_file(repo, "users", i) for i in range(3)]
    canonical_bytes = [path.read_bytes() for path in users]
    scrambled_bytes = [scrambled(path) for path in users]
    replace = os.replace
    calls: list[str] = []

    def interrupted(source: Any, target: Any) -> None:
        calls.append(str(target))
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl+C between the scratch file and its rename
        replace(source, target)

    monkeypatch.setattr("entra_gitops.state.files.os.replace", interrupted)
    result = fmt(repo, *[relative(repo, p) for p in users])
    assert result.returncode == 130
    assert [path.read_bytes() for path in users] == [canonical_bytes[0], scrambled_bytes[1], scrambled_bytes[2]]
    assert not [p for p in (repo / "tenant-state").rglob("*") if p.name.endswith(".tmp")]
    monkeypatch.undo()
    assert fmt(repo).returncode == 0 and [path.read_bytes() for path in users] == canonical_bytes


def test_fmt_without_state_files_is_an_error(tmp_path: Path) -> None:
    nothing = fmt(tmp_path)
    assert nothing.returncode == 1 and "there is no tenant-state/" in nothing.stderr and "run fmt in" in nothing.stderr
