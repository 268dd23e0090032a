"""The plan file, in process: what write_plan_file saves read_plan_file gives back, and nothing else gets through.

The CLI's own refusals (a changed body, another format, another tenant) are in test_recovery.py; these tests hold
the pair of functions to the same contract without a process or Graph.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import demo_seed
from test_safety import edit, soft_delete

from entra_gitops.model.errors import OutputError
from entra_gitops.model.registry import default_registry
from entra_gitops.model.tenant import TenantState
from entra_gitops.recovery.errors import PlanFileError
from entra_gitops.recovery.plan import Plan, build_plan, compute_checksum, plan_json, with_checksum
from entra_gitops.recovery.planfile import read_plan_file, write_plan_file
from entra_gitops.report.diff import difference_report

REGISTRY = default_registry()
USERS = {u["displayName"]: u["id"] for u in demo_seed()["users"]}
KARI, PER = USERS["Kari Nordmann"], USERS["Per Aas"]


@pytest.fixture(scope="module")
def plan(demo: TenantState) -> Plan:
    live = soft_delete(edit(demo, "user", KARI, department="Procurement"), "user", PER)
    report = difference_report(REGISTRY, demo, live, backup_name="backup/test", against_name="live")
    return with_checksum(
        build_plan(
            REGISTRY,
            report,
            demo,
            live,
            tool="test",
            tenant="4c1a7f3e-92b5-4d08-8e6f-3b2d9a0c5e71",
            backup_commit="0" * 40,
            created="2026-11-22T09:00:00Z",
        )  # fmt: skip
    )


def saved(plan: Plan, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    path = tmp_path / "plans" / "plan.json"
    write_plan_file(path, plan)
    return path, json.loads(path.read_text(encoding="utf-8"))


def resave(path: Path, document: dict[str, Any], *, checksum: bool) -> Path:
    """`document` written over the plan file, its checksum made again when `checksum` (a careful forger)."""
    if checksum:
        document["checksum"] = compute_checksum(document)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_a_saved_plan_reads_back_as_the_same_plan(plan: Plan, tmp_path: Path) -> None:
    assert len(plan.writes) == 2
    path, _ = saved(plan, tmp_path)
    assert path.read_text(encoding="utf-8") == plan_json(plan)
    again = read_plan_file(path)
    assert plan_json(again) == plan_json(plan)
    assert (again.checksum, again.writes[0].step, again.writes[0].object_id) == (
        plan.checksum,
        plan.writes[0].step,
        plan.writes[0].object_id,
    )
    assert [p.name for p in path.parent.iterdir()] == ["plan.json"], "no scratch file is left behind"


def test_saving_over_a_plan_replaces_it_whole(plan: Plan, tmp_path: Path) -> None:
    path, _ = saved(plan, tmp_path)
    path.write_text("half a plan", encoding="utf-8")
    write_plan_file(path, plan)
    assert read_plan_file(path).checksum == plan.checksum


def test_a_plan_that_cannot_be_saved_names_the_file_asked_for(plan: Plan, tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()  # a folder where the file should go
    with pytest.raises(OutputError, match="taken"):
        write_plan_file(target, plan)
    assert [p.name for p in tmp_path.iterdir()] == ["taken"] and not any(target.iterdir())


@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: d["writes"].reverse(),  # the same writes in another order
        lambda d: d["writes"].pop(),  # a write left out
        lambda d: d["options"].update(allowDelete=True),
        lambda d: d.update(checksum="sha256:" + "0" * 64),  # the checksum alone
    ],
    ids=["reordered", "shortened", "options", "checksum"],
)
def test_a_changed_plan_file_is_refused_by_its_checksum(plan: Plan, tmp_path: Path, tamper: Any) -> None:
    path, document = saved(plan, tmp_path)
    tamper(document)
    with pytest.raises(PlanFileError, match=r"changed after it was made \(its checksum does not match\)"):
        read_plan_file(resave(path, document, checksum=False))


def test_a_plan_file_without_a_checksum_is_refused(plan: Plan, tmp_path: Path) -> None:
    path, document = saved(plan, tmp_path)
    del document["checksum"]
    with pytest.raises(PlanFileError, match="not a well-formed plan at \\(the document\\): 'checksum' is a required"):
        read_plan_file(resave(path, document, checksum=False))


def test_a_plan_file_that_is_not_json_says_where(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text('{"format": "entra-gitops.plan/2",\n  "writes": [,]}', encoding="utf-8")
    with pytest.raises(PlanFileError, match=r"plan\.json:2:14: not a plan file"):
        read_plan_file(path)


def test_a_missing_plan_file_is_a_plan_file_error(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match="cannot read the plan file"):
        read_plan_file(tmp_path / "absent.json")


def test_a_re_checksummed_plan_still_has_to_be_well_formed(plan: Plan, tmp_path: Path) -> None:
    path, document = saved(plan, tmp_path)
    del document["writes"][0]["fingerprint"]
    document["writes"][0]["step"] = "purge"
    with pytest.raises(PlanFileError, match="not a well-formed plan at writes/0"):
        read_plan_file(resave(path, document, checksum=True))
