"""The command line as people use it at a terminal: finding the repository from where they stand, hints that work
as printed, a declined prompt, help with examples and exit codes, colour only where wanted, shell completion.

Through the real CLI: main() in process (conftest.run_main) where that proves it, a real process where only one
does (a terminal for colour, the installed console script for completion, the emulator's start-up hint).
"""

from __future__ import annotations

import os
import pty
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import ENTRA_GITOPS, emulator_started, git, run_main

from entra_gitops.cli.demo import EMULATOR_URL
from entra_gitops.cli.emulator import emulator_command
from entra_gitops.cli.main import cli
from entra_gitops.state.gitstore import StateRepo

README = Path(__file__).resolve().parent.parent / "README.md"
AIDEN = "tenant-state/users/0199cd42-5a32-405f-86e9-a38e95fbe399.yaml"  # a demo user: department Sales


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A current folder in no git repository, whatever holds the temporary folder (git looks no higher)."""
    folder = tmp_path / "nowhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.delenv("ENTRA_GITOPS_REPO", raising=False)
    return folder


def backup_ids(repo: Path) -> list[str]:
    return [b.id for b in StateRepo.open(repo).backups()]


def one_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


# -- finding the repository ----------------------------------------------------------------------------------


def test_every_command_finds_the_repository_from_a_folder_inside_it(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENTRA_GITOPS_REPO", raising=False)
    monkeypatch.chdir(repo / "tenant-state" / "users")
    (backup,) = backup_ids(repo)
    listed = run_main("backups")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].startswith(backup)
    assert run_main("history").stdout == "No recoveries recorded yet.\n"
    assert run_main("unlock").stdout == "There was no lock.\n"
    # Offline, so no Graph is needed: the newest backup against its own commit.
    same = run_main("diff", "--against", "HEAD")
    assert same.returncode == 0 and "No differences" in same.stdout, same.stderr
    drift = run_main("drift", "--baseline", "HEAD")
    assert drift.returncode == 0, drift.stderr


def test_an_explicit_repo_wins_then_the_environment_then_the_current_folder(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = StateRepo.open(tmp_path / "other", create=True).root  # a state repository without backups
    (backup,) = backup_ids(repo)
    monkeypatch.chdir(other)
    assert "No backups in" in run_main("backups", env={"ENTRA_GITOPS_REPO": None}).stdout
    from_env = run_main("backups", env={"ENTRA_GITOPS_REPO": str(repo)})
    assert backup in from_env.stdout, from_env.stderr
    explicit = run_main("backups", "--repo", other, env={"ENTRA_GITOPS_REPO": str(repo)})
    assert "No backups in" in explicit.stdout
    empty = run_main("backups", env={"ENTRA_GITOPS_REPO": ""})  # an empty variable is no setting
    assert "No backups in" in empty.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["backups"],
        ["history"],
        ["unlock"],
        ["diff", "--against", "HEAD"],
        ["plan", "--graph-url", "http://127.0.0.1:9/v1.0"],
        ["apply", "plan.json", "--graph-url", "http://127.0.0.1:9/v1.0"],
        ["drift", "--baseline", "main"],
        ["snapshot", "--graph-url", "http://127.0.0.1:9/v1.0"],
    ],
    ids=lambda args: args[0],
)
def test_outside_any_repository_is_one_error_naming_the_folder_and_the_way_out(nowhere: Path, args: list[str]) -> None:
    (nowhere / "plan.json").write_text("{}")
    result = run_main(*args)
    assert result.returncode == 1
    line = one_error(result.stderr)
    assert f"{nowhere} is in no git repository" in line
    assert "--repo DIR" in line and "ENTRA_GITOPS_REPO" in line
    # snapshot refuses rather than make the current folder a repository.
    assert sorted(p.name for p in nowhere.iterdir()) == ["plan.json"]


def test_snapshot_creates_the_repository_it_is_told_of(nowhere: Path, served_emulator: str) -> None:
    by_option = run_main("snapshot", "--repo", "fresh", "--type", "organization", "--graph-url", served_emulator)
    assert by_option.returncode == 0, by_option.stderr
    assert len(backup_ids(nowhere / "fresh")) == 1
    env = {"ENTRA_GITOPS_REPO": str(nowhere / "from-env")}
    by_env = run_main("snapshot", "--type", "organization", "--graph-url", served_emulator, env=env)
    assert by_env.returncode == 0, by_env.stderr
    assert len(backup_ids(nowhere / "from-env")) == 1


def test_permissions_outside_any_repository_uses_the_default_settings(nowhere: Path) -> None:
    result = run_main("permissions", "--for", "snapshot")
    assert result.returncode == 0, result.stderr
    assert "Directory.Read.All" in result.stdout


# -- hints that work as printed ------------------------------------------------------------------------------


def printed_commands(lines: list[str]) -> list[list[str]]:
    """The commands of a hint: its indented lines, each split as a shell splits it (the `# what` dropped)."""
    return [shlex.split(line, comments=True) for line in lines if line.startswith("  ")]


def run_printed(command: list[str], graph_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """One printed command, as a shell would run it here; `graph_url` stands in for the one it printed."""
    if command[0] == "cd":
        os.chdir(command[1])
        return subprocess.CompletedProcess(command, 0, "", "")
    if command[0] == "git":
        return subprocess.run(command, capture_output=True, text=True, check=False)
    assert command[0] == "entra-gitops", command
    args = [graph_url if graph_url and arg == EMULATOR_URL else arg for arg in command[1:]]
    return run_main(*args)


def test_the_demo_ends_with_commands_that_work_as_printed(
    tmp_path: Path, served_emulator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = CliRunner().invoke(cli, ["demo", str(tmp_path / "demo")])
    assert demo.exit_code == 0, demo.output
    closing = demo.output.split("==> Done.")[1].splitlines()
    offline_end = closing.index("")
    offline, live = printed_commands(closing[:offline_end]), printed_commands(closing[offline_end:])
    assert offline[0] == ["cd", str(tmp_path / "demo")]
    # The live part starts the emulator on its default port, and uses the URL it prints there.
    assert live[0] == ["entra-gitops", "emulator", "--seed", "demo"]
    port = next(p for p in emulator_command.params if p.name == "port").default
    assert f"http://127.0.0.1:{port}/v1.0" == EMULATOR_URL
    assert all(EMULATOR_URL in command for command in live[1:])
    monkeypatch.chdir(tmp_path)  # the shell the person types in; `cd` moves it, and the test puts it back
    results = [run_printed(command) for command in offline]
    # That emulator is a fresh demo tenant: the served one here is one too, on a port of its own.
    results += [run_printed(command, served_emulator) for command in live[1:]]
    # diff exits 2: there are differences, as each hint says.
    assert [r.returncode for r in results] == [0, 0, 0, 2, 0, 2, 0], [(r.args, r.stderr) for r in results]
    assert "Snapshot: " in results[1].stdout  # git log
    assert "succeeded" in results[4].stdout  # the history of the demo's apply
    assert len(backup_ids(tmp_path / "demo")) == 3  # the printed snapshot made a third backup


@pytest.fixture
def emulator_hint() -> Iterator[tuple[str, list[str]]]:
    """A real `entra-gitops emulator` process: the URL it prints on stdout and the hint lines on stderr."""
    with emulator_started("--seed", "demo") as process:
        assert process.stdout is not None and process.stderr is not None
        url = process.stdout.readline().strip()
        yield url, [process.stderr.readline().rstrip("\n") for _ in range(6)]


def test_the_emulator_suggests_commands_that_exist_and_work(
    emulator_hint: tuple[str, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, lines = emulator_hint
    assert lines[0].startswith("Seeded tenant ") and "Try, in another terminal:" in lines[1]
    commands = printed_commands(lines[2:])
    assert [c[1] for c in commands if c[0] == "entra-gitops"] == ["snapshot", "diff", "plan"]
    assert "demo" not in "\n".join(lines[1:])
    monkeypatch.chdir(tmp_path)
    results = [run_printed(command) for command in commands]
    assert [r.returncode for r in results] == [0, 0, 0, 0], [r.stderr for r in results]
    assert all(url in c for c in commands if c[0] == "entra-gitops")
    assert "No differences" in results[2].stdout
    assert (tmp_path / "tenant" / "plan.json").is_file()


# -- help that teaches ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", cli.list_commands(click.Context(cli)))
def test_every_command_has_examples_and_its_exit_codes(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "  Examples:" in lines, f"{name} --help has no Examples: block"
    start = lines.index("  Examples:") + 1
    exits = next((i for i in range(start, len(lines)) if lines[i].startswith("  Exit 0 ")), None)
    assert exits is not None, f"{name} --help lists no exit codes ('Exit 0 ..., 1 ...') after its examples"
    examples = lines[start:exits]
    # Each example whole on its own line (click's \b kept them from being re-wrapped), for this command.
    assert examples and all(line.startswith(f"    entra-gitops {name}") for line in examples), examples
    codes = " ".join(lines[exits:]).split("Options:")[0]
    assert re.search(r"\b1 ", codes), f"{name}: exit 1 is not named: {codes}"


# -- colour --------------------------------------------------------------------------------------------------


def at_a_terminal(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """The CLI as its own process with stdout a terminal (a pty): exit code and what the terminal showed."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [*ENTRA_GITOPS, *args], stdin=subprocess.DEVNULL, stdout=terminal, stderr=subprocess.PIPE, env=env, cwd=cwd
    )
    os.close(terminal)
    shown = bytearray()
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal's other end is closed: the process is done writing
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    process.communicate(timeout=60)
    return process.returncode, shown.decode()


@pytest.mark.parametrize(
    ("global_options", "no_color", "coloured"),
    [
        ((), None, True),
        ((), "", True),  # NO_COLOR set but empty is no request (no-color.org)
        ((), "1", False),
        ((), "false", False),  # any non-empty value
        (("--no-color",), None, False),
    ],
    ids=["terminal", "empty-NO_COLOR", "NO_COLOR=1", "NO_COLOR=false", "--no-color"],
)
def test_colour_only_on_a_terminal_and_never_when_refused(
    repo: Path, global_options: tuple[str, ...], no_color: str | None, coloured: bool
) -> None:
    state = repo / AIDEN
    state.write_text(state.read_text().replace("department: Sales", "department: Marketing"))
    git(repo, "commit", "-qam", "Aiden moved to marketing")
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "ENTRA_GITOPS_REPO")}
    if no_color is not None:
        env["NO_COLOR"] = no_color
    code, shown = at_a_terminal(*global_options, "diff", "--against", "HEAD", env=env, cwd=repo)
    assert code == 2, shown
    assert "~ department: Sales -> Marketing" in re.sub(r"\x1b\[[0-9;]*m", "", shown)
    assert ("\x1b[" in shown) is coloured, shown
    # Never in a pipe, whatever is asked.
    piped = subprocess.run(
        [*ENTRA_GITOPS, *global_options, "diff", "--against", "HEAD"], capture_output=True, text=True, cwd=repo
    )
    assert piped.returncode == 2 and "\x1b" not in piped.stdout


# -- shell completion ----------------------------------------------------------------------------------------


def installed_command() -> str:
    """The console script pip installed beside this interpreter (else the one on PATH)."""
    beside = Path(sys.executable).parent / "entra-gitops"
    found = str(beside) if beside.is_file() else shutil.which("entra-gitops")
    assert found, "the entra-gitops console script is not installed"
    return found


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _entra_gitops_completion entra-gitops"),
        ("zsh", "#compdef entra-gitops"),
        ("fish", "complete --no-files --command entra-gitops"),
    ],
)
def test_the_installed_command_prints_its_completion_script(shell: str, marker: str) -> None:
    result = subprocess.run(
        [installed_command()],
        env={**os.environ, "_ENTRA_GITOPS_COMPLETE": f"{shell}_source"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert marker in result.stdout
    readme = README.read_text(encoding="utf-8")
    assert f"_ENTRA_GITOPS_COMPLETE={shell}_source entra-gitops" in readme.split("## Commands")[1]


def test_the_readmes_bash_line_completes_commands_and_options() -> None:
    if shutil.which("bash") is None:
        pytest.skip("no bash here")
    (line,) = [
        line.split("  #")[0].strip()
        for line in README.read_text(encoding="utf-8").splitlines()
        if "bash_source" in line and line.startswith("eval")
    ]
    script = (
        f"{line}\n"
        'COMP_WORDS=(entra-gitops ba); COMP_CWORD=1; _entra_gitops_completion entra-gitops; echo "${COMPREPLY[@]}"\n'
        "COMP_WORDS=(entra-gitops diff --fo); COMP_CWORD=2; COMPREPLY=(); _entra_gitops_completion entra-gitops\n"
        'echo "${COMPREPLY[@]}"\n'
    )
    path = f"{Path(installed_command()).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    result = subprocess.run(
        ["bash", "-c", script], env={**os.environ, "PATH": path}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["backups", "--format"], result.stdout + result.stderr
