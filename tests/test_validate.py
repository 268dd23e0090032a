"""`entra-gitops validate`: strict loading, schemas, file names and canonical form, with file:line:column."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import take_snapshot_of

from entra_gitops.cli.main import cli
from entra_gitops.emulator import create_emulator
from entra_gitops.model.registry import default_registry
from entra_gitops.state.gitstore import StateRepo

REGISTRY = default_registry()
USER_ID = "6f1d0c1e-0a52-4a4e-9b6c-2d1f3b8a9c01"


@pytest.fixture(scope="module")
def snapshot_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state repository holding one snapshot of the demo tenant."""
    store = StateRepo.open(tmp_path_factory.mktemp("state"), create=True)
    take_snapshot_of(create_emulator("demo"), store, dt.datetime(2026, 11, 21, tzinfo=dt.UTC))
    return store.root


def validate(*paths: Path | str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["validate", *map(str, paths)])
    return result.exit_code, result.output.splitlines()


def user_file(root: Path, text: str, name: str = USER_ID) -> Path:
    path = root / "tenant-state" / "users" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_fresh_snapshot_is_valid(snapshot_repo: Path) -> None:
    code, lines = validate(snapshot_repo / "tenant-state")
    assert code == 0, lines
    assert lines[-1].endswith("state file(s) valid.")


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        (f"id: {USER_ID}\ncity: Oslo\ncity: Bergen\n", 3, 1, "duplicate key"),
        (f"id: {USER_ID}\ncity: !!str Oslo\n", 2, 7, "tag"),
        (f"id: {USER_ID}\ncity: &home Oslo\nstate: *home\n", 2, 7, "anchor"),
        (f"id: {USER_ID}\naccountEnabled: 'yes'\n", 2, 1, "accountEnabled: 'yes' is not of type 'boolean', 'null'"),
        (
            f"id: {USER_ID}\nfavouriteColour: blue\n",
            2,
            1,
            "favouriteColour: unknown property 'favouriteColour' for user",
        ),
        (f"id: {USER_ID}\ncitty: Oslo\n", 2, 1, "unknown property 'citty' for user; did you mean 'city'?"),
        (f"id: {USER_ID}\ncity:   Oslo\n", 2, 1, "not in canonical form"),
        (f"city: Oslo\nid: {USER_ID}\n", 1, 1, "not in canonical form"),
        ("id: 00000000-0000-4000-8000-000000000009\n", 1, 1, "does not match the file name"),
        (f"id: {USER_ID}\ncity: 'Oslo\n", 2, 7, ""),
    ],
)
def test_every_problem_names_file_line_and_column(
    tmp_path: Path, text: str, line: int, column: int, message: str
) -> None:
    path = user_file(tmp_path, text)
    code, lines = validate(path)
    assert code == 1
    problem = lines[0]
    assert problem.startswith(f"tenant-state/users/{USER_ID}.yaml:{line}:{column}: "), problem
    assert message in problem
    assert lines[-1].startswith("1 problem(s)") or "problem(s) in 1 of 1 file(s)" in lines[-1]


def test_hostile_files_are_refused_and_the_process_survives(tmp_path: Path) -> None:
    deep = user_file(
        tmp_path, f"id: {USER_ID}\nemployeeOrgData: " + "[" * 50000 + "\n", "00000000-0000-4000-8000-000000000001"
    )
    big = user_file(
        tmp_path, f"id: {USER_ID}\ncity: '" + "x" * (33 * 1024 * 1024) + "'\n", "00000000-0000-4000-8000-000000000002"
    )
    code, lines = validate(deep, big)
    assert code == 1
    assert any("00000000-0000-4000-8000-000000000001.yaml:" in line for line in lines)
    assert any("00000000-0000-4000-8000-000000000002.yaml:1:1:" in line for line in lines)


def test_a_file_outside_the_layout_is_reported(tmp_path: Path) -> None:
    stray = tmp_path / "tenant-state" / "widgets" / "w1.yaml"
    stray.parent.mkdir(parents=True)
    stray.write_text("id: w1\n")
    code, lines = validate(stray)
    assert code == 1
    assert "tenant-state/widgets/w1.yaml:1:1: not a state file" in lines[0]


def test_validate_defaults_to_tenant_state_here(snapshot_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(snapshot_repo)
    code, lines = validate()
    assert code == 0
    assert int(lines[-1].split()[0]) > 90
