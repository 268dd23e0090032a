"""The command line as a user meets it: help, the emulator as a real server, the demo, one-line errors."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ENTRA_GITOPS, run_main

from entra_gitops.cli.main import cli
from entra_gitops.graph.client import connect
from entra_gitops.state.gitstore import StateRepo


def run_cli(*args: str, env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line through main(), in process; `env` changes the environment (None removes a name)."""
    return run_main(*args, env=env)


def process(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m entra_gitops` as its own process: for the interpreter's own output, and for the emulator command,
    which would serve forever in process if it failed to refuse."""
    return subprocess.run([*ENTRA_GITOPS, *args], capture_output=True, text=True, timeout=120)


def test_help_teaches_where_to_start() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "entra-gitops demo" in result.output
    assert "emulator" in result.output


def test_python_dash_m_reports_the_version() -> None:
    result = process("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("entra-gitops, version ")


def test_the_emulator_serves_graph_to_any_client(emulator_process: str) -> None:
    async def read() -> list[dict[str, object]]:
        async with connect(emulator_process) as client:
            return await client.list_all("users", {"$select": "id,displayName"})

    users = asyncio.run(read())
    assert len(users) > 20
    # Objects of a derived type (an agent user) also carry their @odata.type, as Graph serves them.
    assert all(set(u) - {"@odata.type"} == {"id", "displayName"} for u in users)


def test_demo_tells_the_whole_story(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    steps = [line for line in result.output.splitlines() if line.startswith("==> ")]
    assert [s.split()[1] for s in steps] == [
        "Starting",
        "Creating",
        "Taking",
        "Making",
        "Taking",
        "The",
        "What",
        "The",
        "Planning",
        "Applying",
        "A",
        "Done.",
    ]
    for drift in (
        "Disabled the Conditional Access policy",
        "department from",
        "Deleted the user",
        "to the group",
        "Created the application",
    ):
        assert drift in result.output
    assert "-state: enabled" in result.output and "+state: disabled" in result.output
    assert "rename to tenant-state/deleted/users/" in result.output
    report = result.output.split("==> The difference report")[1]
    assert "~ conditionalAccessPolicy 'CA001 - Require MFA for all users'" in report
    assert "~ state: enabled -> disabled" in report
    assert "recovery: restore it, then write back what differs" in report
    assert "6 object(s) differ" in report and "5 recoverable" in report
    assert "Apply succeeded: 5 of 5 write(s) done" in result.output
    final = result.output.split("==> A fresh difference report")[1]
    assert "No differences between" in final
    assert len(StateRepo.open(tmp_path / "demo").backups()) == 2


def test_demo_refuses_a_directory_with_content(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["demo", str(tmp_path)])
    assert result.exit_code == 1
    assert "is not empty" in result.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["emulator", "--seed", "no-such-seed.yaml"], "seed 'no-such-seed.yaml': no such file"),
        (["emulator", "--seed", "synthetic:users=lots"], "seed 'synthetic:users=lots'"),
        (["emulator", "--host", "0.0.0.0", "--port", "0"], "--host '0.0.0.0' is not a loopback address"),
        (["emulator", "--faults", "418"], "--faults: status 418"),
        (["snapshot", "--graph-url", "graph.microsoft.com"], "--graph-url 'graph.microsoft.com' is not an http(s) URL"),
        pytest.param(  # the client's retries of a refused connection take their time
            ["snapshot", "--graph-url", "http://127.0.0.1:9/v1.0"],
            "cannot reach Graph at http://127.0.0.1:9/v1.0",
            marks=pytest.mark.slow,
        ),
        (["snapshot", "--graph-url", "http://graph.example/v1.0"], "http"),
        (["snapshot", "--type", "usr"], "unknown resource type 'usr' (did you mean 'user'?)"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(args: list[str], expected: str, tmp_path: Path) -> None:
    if args[0] == "snapshot":
        args = [*args, "--repo", str(tmp_path / "state")]
    result = (process if args[0] == "emulator" else run_cli)(*args)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_credentials_are_one_line_naming_what_to_set(tmp_path: Path) -> None:
    env: dict[str, str | None] = {
        k: None for k in os.environ if k.startswith(("AZURE_", "ACTIONS_ID_TOKEN", "ENTRA_GITOPS_"))
    }
    result = run_cli(
        "snapshot",
        "--repo",
        str(tmp_path / "state"),
        "--graph-url",
        "https://graph.microsoft.com/v1.0",
        "--auth",
        "client-secret",
        env=env,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "--tenant-id or AZURE_TENANT_ID" in lines[0]


def test_a_malformed_seed_file_names_file_and_line(tmp_path: Path) -> None:
    seed = tmp_path / "tenant.yaml"
    seed.write_text("users:\n  - id: 6f1d0c1e-0a52-4a4e-9b6c-2d1f3b8a9c01\ngrups: []\n", encoding="utf-8")
    result = process("emulator", "--seed", str(seed), "--port", "0")
    assert result.returncode == 1
    assert f"{seed}:3: grups: unknown collection" in result.stderr


def test_debug_shows_the_traceback() -> None:
    result = process("--debug", "emulator", "--seed", "no-such-seed.yaml")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "SeedError" in result.stderr


def test_usage_errors_exit_1_not_2() -> None:
    # 2 means "differences present" for every command, so a typo must never look like drift.
    result = run_cli("no-such-command")
    assert result.returncode == 1


@pytest.mark.slow
def test_graph_url_comes_from_the_environment(tmp_path: Path) -> None:
    result = run_cli("snapshot", "--repo", str(tmp_path), env={"ENTRA_GITOPS_GRAPH_URL": "http://127.0.0.1:9/v1.0"})
    assert result.returncode == 1
    assert "cannot reach Graph at http://127.0.0.1:9/v1.0" in result.stderr
