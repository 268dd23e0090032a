"""`--format json` of validate, fmt, snapshot and apply through the real CLI: the JSON alone on stdout (so `| jq`
works), everything else on stderr, each document valid against its schema in schemas/reports/."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import git, run_main
from test_recovery import KARI, PEOPLE, live

REPORTS = Path(__file__).resolve().parents[1] / "schemas" / "reports"


@functools.cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((REPORTS / f"{name}.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def report(name: str, *args: Any, code: int = 0) -> dict[str, Any]:
    """Run a command with --format json: its exit code as expected, stdout one JSON document of schema `name`."""
    result = run_main(*args, "--format", "json")
    assert result.returncode == code, result.stdout + result.stderr
    document = json.loads(result.stdout)  # nothing else on stdout
    validator(name).validate(document)
    assert document["format"] == f"entra-gitops.{name}/1"
    return document


def test_every_report_schema_is_a_valid_schema_with_a_format() -> None:
    for path in REPORTS.glob("*.schema.json"):
        schema = json.loads(path.read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
        name = path.name.removesuffix(".schema.json")
        assert schema["properties"]["format"] == {"const": f"entra-gitops.{name}/1"}
        assert schema["$id"] == f"urn:entra-gitops:schema:report:{name}"


def test_validate_json_lists_files_checked_and_problems(repo: Path) -> None:
    state = repo / "tenant-state"
    valid = report("validation-report", "validate", state)
    assert valid["valid"] and valid["problems"] == [] and valid["checked"] > 90

    user = sorted((state / "users").glob("*.yaml"))[0]
    user.write_text(user.read_text(encoding="utf-8").replace("accountEnabled: true", "accountEnabled: 'yes'"))
    invalid = report("validation-report", "validate", state, code=1)
    assert not invalid["valid"] and invalid["checked"] == valid["checked"]
    (problem,) = invalid["problems"]
    assert problem["file"] == f"tenant-state/users/{user.name}" and problem["line"] == 2
    assert "accountEnabled: 'yes' is not of type 'boolean'" in problem["message"]

    in_actions = run_main("validate", state, "--format", "json", env={"GITHUB_ACTIONS": "true"})
    assert json.loads(in_actions.stdout) == invalid  # the annotation goes beside it, on stderr
    assert in_actions.stderr.startswith(f"::error title=entra-gitops,file=tenant-state/users/{user.name},line=2,")


def test_fmt_json_lists_what_changed_and_what_was_refused(repo: Path) -> None:
    users = sorted((repo / "tenant-state" / "users").glob("*.yaml"))
    users[0].write_text("\n" + users[0].read_text(encoding="utf-8"), encoding="utf-8")  # a blank first line
    users[1].write_text("id: [\n", encoding="utf-8")
    check = report("fmt-report", "fmt", repo / "tenant-state", "--check", code=1)
    assert check["written"] is False and check["changed"] == [f"tenant-state/users/{users[0].name}"]
    assert [p["file"] for p in check["problems"]] == [f"tenant-state/users/{users[1].name}"]
    done = report("fmt-report", "fmt", repo / "tenant-state", code=1)
    assert done["written"] is True and done["changed"] == check["changed"]
    assert git(repo, "status", "--porcelain") == f" M tenant-state/users/{users[1].name}\n"


def test_snapshot_json_reports_the_backup_counts_and_cost(tmp_path: Path, served_emulator: str) -> None:
    repo = tmp_path / "state"
    first = report("snapshot-report", "snapshot", "--repo", repo, "--graph-url", served_emulator, *PEOPLE)
    backup = first["backup"]
    assert backup["tag"] == f"backup/{backup['id']}" and backup["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert backup["complete"] is False and set(backup["counts"]) == {"user", "group"} and backup["counts"]["user"] > 10
    written = backup["counts"]["user"] + backup["deleted"].get("user", 0)  # a file per live and deleted user
    assert first["createdCommit"] is True and first["changes"]["user"] == {
        "added": written,
        "modified": 0,
        "removed": 0,
    }
    stats = first["statistics"]
    assert stats["requests"] > 0 and stats["bytes"] > 0 and stats["seconds"] > 0 and stats["retries"] == 0

    again = report("snapshot-report", "snapshot", "--repo", repo, "--graph-url", served_emulator, *PEOPLE)
    assert again["createdCommit"] is False and again["backup"]["commit"] == backup["commit"]
    assert again["changes"] == {} and again["backup"]["tag"] != backup["tag"]


def test_apply_json_reports_status_writes_and_history(repo: Path, served_emulator: str) -> None:
    url = served_emulator
    plan_file = repo.parent / "plan.json"
    with live(url) as graph:
        graph.write("PATCH", f"users/{KARI}", {"department": "Procurement"})
        planned = run_main("plan", "--repo", repo, "--graph-url", url, "-o", plan_file, *PEOPLE)
        assert planned.returncode == 0, planned.stderr
        checksum = json.loads(plan_file.read_text(encoding="utf-8"))["checksum"]
        apply = ("apply", plan_file, "--repo", repo, "--graph-url", url)

        asking = run_main(*apply, "--format", "json")
        assert asking.returncode == 1 and "--format json needs --auto-approve" in asking.stderr

        done = report("apply-report", *apply, "--auto-approve")
        assert done["status"] == "succeeded" and done["writes"] == {"done": 1, "total": 1}
        assert done["failures"] == [] and done["plan"]["checksum"] == checksum
        assert done["history"].startswith("history/") and done["history"] in git(repo, "show", "--stat", "HEAD")
        assert graph.user(KARI)["department"] != "Procurement"

        again = report("apply-report", *apply, "--auto-approve")
        assert again["status"] == "alreadyApplied" and again["writes"] == {"done": 1, "total": 1}


@pytest.mark.parametrize(
    "args",
    [("backups",), ("history",), ("permissions",)],
    ids=lambda a: a[0],
)
def test_the_commands_that_had_json_still_print_only_json(args: tuple[str, ...], repo: Path) -> None:
    extra = () if args[0] == "permissions" else ("--repo", repo)
    result = run_main(*args, *extra, "--format", "json")
    assert result.returncode == 0, result.stderr
    json.loads(result.stdout)
