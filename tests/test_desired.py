"""Desired-state edits: `plan --desired REF` plans the live tenant towards hand-edited files in a commit."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from conftest import git
from conftest import run_main as run_cli

from entra_gitops.graph.client import connect

POLICIES = "tenant-state/conditionalAccessPolicies"


def live_state_of(url: str, policy_id: str) -> str:
    async def read() -> str:
        async with connect(url) as client:
            return (await client.get_json(f"identity/conditionalAccess/policies/{policy_id}"))["state"]

    return asyncio.run(read())


def test_a_reviewed_edit_of_the_files_is_planned_and_applied(repo: Path, tmp_path: Path, served_emulator: str) -> None:
    # `repo` holds a backup of the demo tenant, as served_emulator serves it.
    disabled = next(p for p in sorted((repo / POLICIES).iterdir()) if "\nstate: disabled\n" in p.read_text())
    policy_id = disabled.stem
    # An administrator re-enables the policy in a pull request: the desired state is that commit.
    disabled.write_text(disabled.read_text().replace("\nstate: disabled\n", "\nstate: enabled\n"))
    assert run_cli("validate", disabled).returncode == 0
    git(repo, "checkout", "-q", "-b", "enable-policy")
    git(repo, "commit", "-q", "-am", "Enable the policy")

    plan_file = tmp_path / "plan.json"
    planned = run_cli(
        "plan",
        "--repo",
        repo,
        "--graph-url",
        served_emulator,
        "--desired",
        "HEAD",
        "-o",
        plan_file,
        "--detailed-exitcode",
    )
    assert planned.returncode == 2, planned.stdout + planned.stderr
    document = json.loads(plan_file.read_text())
    assert [(w["step"], w["id"], w["body"]) for w in document["writes"]] == [
        ("update", policy_id, {"state": "enabled"})
    ]
    assert document["backup"]["tag"] == "HEAD"

    applied = run_cli("apply", plan_file, "--repo", repo, "--graph-url", served_emulator, "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert live_state_of(served_emulator, policy_id) == "enabled"
    again = run_cli("plan", "--repo", repo, "--graph-url", served_emulator, "--desired", "HEAD", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout


def test_desired_and_backup_together_are_refused(repo: Path, served_emulator: str) -> None:
    result = run_cli("plan", "--repo", repo, "--graph-url", served_emulator, "--desired", "HEAD", "--backup", "latest")
    assert result.returncode == 1
    assert "--desired and --backup" in result.stderr
