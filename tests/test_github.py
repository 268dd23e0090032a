"""Running under GitHub Actions: error annotations and the markdown job summary."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import run_main

from entra_gitops.workflow.github import error_annotation

USER_ID = "6f1d0c1e-0a52-4a4e-9b6c-2d1f3b8a9c01"


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The real command line in process, with `env` added to the environment."""
    return run_main(*args, env=env)


def test_annotations_escape_what_would_break_the_workflow_command() -> None:
    line = error_annotation("bad: 100%\nsecond line", file="tenant-state/users/a,b.yaml", line=3, column=7)
    assert (
        line == "::error title=entra-gitops,file=tenant-state/users/a%2Cb.yaml,line=3,col=7::bad: 100%25%0Asecond line"
    )


def test_errors_become_annotations_inside_actions(tmp_path: Path) -> None:
    result = run_cli("backups", "--repo", str(tmp_path), env={"GITHUB_ACTIONS": "true"})
    assert result.returncode == 1
    assert result.stdout.startswith("::error title=entra-gitops::")
    assert "is not a git repository" in result.stdout
    outside = run_cli("backups", "--repo", str(tmp_path), env={"GITHUB_ACTIONS": ""})
    assert "::error" not in outside.stdout


def test_validate_annotates_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "tenant-state" / "users" / f"{USER_ID}.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(f"id: {USER_ID}\ncity: Oslo\ncity: Bergen\n")
    result = run_cli("validate", str(path), env={"GITHUB_ACTIONS": "true"})
    assert result.returncode == 1
    assert f"::error title=entra-gitops,file=tenant-state/users/{USER_ID}.yaml,line=3,col=1::" in result.stdout


def test_diff_writes_its_report_to_the_job_summary(repo: Path, tmp_path: Path, served_emulator: str) -> None:
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    result = run_cli("diff", "--repo", str(repo), "--graph-url", served_emulator, env=env)
    assert result.returncode == 0, result.stderr
    assert summary.read_text().startswith("## entra-gitops difference report")
    assert "No differences" in summary.read_text()
    planned = run_cli("plan", "--repo", str(repo), "--graph-url", served_emulator, env=env)
    assert planned.returncode == 0, planned.stderr
    assert "## entra-gitops recovery plan" in summary.read_text()
