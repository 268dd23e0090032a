"""The progress display, through the real CLI: live on a terminal, plain periodic lines in a log, nothing otherwise.

A terminal is a pseudo-terminal on the command's stderr (as a user's), stdout a pipe; a CI log is stderr as a
pipe. The emulator serves real HTTP from a thread of this process, with a delay on the users list so that a
read lasts long enough to be seen. The core is driven directly too, with a recording progress: it reports
values, and prints nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import select
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from conftest import ENTRA_GITOPS, demo_seed, git, graph_client, run, served

from entra_gitops.cli.main import cli
from entra_gitops.emulator import Emulator
from entra_gitops.model.progress import Progress
from entra_gitops.model.registry import default_registry
from entra_gitops.model.settings import Config
from entra_gitops.state.gitstore import StateRepo
from entra_gitops.state.snapshot import take_snapshot

REGISTRY = default_registry()
COUNTABLE = sorted(t.name for t in REGISTRY if t.countable)
SEED = demo_seed()
USERS = len(SEED["users"])
CLOUD = [u["id"] for u in SEED["users"] if not u.get("onPremisesSyncEnabled") and "Break" not in u["displayName"]]
SLOW_USERS = "delay=1.2,path=users"  # the users list waits; its $count (users/$count) does not
ESCAPE = "\x1b"
FAST_LOG = {"ENTRA_GITOPS_PROGRESS_INTERVAL": "0.2"}


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENTRA_GITOPS_PROGRESS")}
    return {**env, "TERM": "xterm-256color", "COLUMNS": "160", **extra}


def on_terminal(*args: Any, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """The real command with stderr on a pseudo-terminal, as a user runs it: exit code, stdout, the terminal's text."""
    master, slave = os.openpty()
    process = subprocess.Popen(
        [*ENTRA_GITOPS, *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env or child_env(),
        start_new_session=True,
    )
    os.close(slave)
    assert process.stdout is not None
    out, terminal = bytearray(), bytearray()
    streams = {master: terminal, process.stdout.fileno(): out}
    while streams:
        for fd in select.select(list(streams), [], [], 10)[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the terminal's other end closed with the process
                chunk = b""
            if chunk:
                streams[fd] += chunk
            else:
                del streams[fd]
    os.close(master)
    return process.wait(timeout=10), out.decode(), terminal.decode(errors="replace")


def in_log(*args: Any, **extra: str) -> subprocess.CompletedProcess[str]:
    """The real command with stderr a pipe, as a CI runner's log takes it."""
    return subprocess.run(
        [*ENTRA_GITOPS, *map(str, args)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=child_env(**FAST_LOG, **extra),
        timeout=60,
    )


def invoke(*args: Any, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def plain(terminal: str) -> str:
    """What a terminal shows, without its escape codes."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal)


def progress_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("progress: ")]


@pytest.fixture
def slow_users() -> Iterator[tuple[str, Emulator]]:
    with served(faults=SLOW_USERS) as (url, app):
        yield url, app


# -- the read ---------------------------------------------------------------------------------------------------


def test_a_terminal_sees_each_type_with_its_total_the_rate_and_the_time(
    tmp_path: Path, slow_users: tuple[str, Emulator]
) -> None:
    url, _ = slow_users
    code, out, terminal = on_terminal("snapshot", "--repo", tmp_path / "state", "--graph-url", url)
    assert code == 0, terminal
    shown = plain(terminal)
    assert ESCAPE in terminal  # drawn by rich, live
    assert re.search(rf"user +\S* *0/{USERS} objects", shown), shown  # Graph's $count, before a user is read
    assert re.search(r"read .*\d[\d,]* objects.* [\d,.]+/s +0:00:0\d", shown), shown  # the rate and the time
    assert re.search(r"conditionalAccessPolicy|\d+ of \d+ done", shown)
    # The summary is unchanged on stdout, the read statistics line included; the display is gone from it.
    assert out.startswith("Backup backup/") and re.search(r"Read with \d+ requests, .* in [\d.]+ s\.", out)
    assert ESCAPE not in out


def test_a_ci_log_gets_plain_periodic_lines_with_the_totals(tmp_path: Path, slow_users: tuple[str, Emulator]) -> None:
    url, _ = slow_users
    result = in_log("snapshot", "--repo", tmp_path / "state", "--graph-url", url)
    assert result.returncode == 0, result.stderr
    lines = progress_lines(result.stderr)
    assert len(lines) >= 3, result.stderr  # every 0.2 s while the users list waits
    assert ESCAPE not in result.stderr and "\r" not in result.stderr
    assert any(re.search(rf"progress: read \d+ objects, .*: user 0/{USERS} objects", line) for line in lines), lines
    assert any(re.search(r"/s, \d\.\d s", line) for line in lines), lines  # a rate and the time so far
    assert "Read with " in result.stdout and "progress" not in result.stdout


def test_nothing_is_shown_under_click_s_runner_unless_the_test_asks(
    tmp_path: Path, slow_users: tuple[str, Emulator]
) -> None:
    url, _ = slow_users
    quiet = invoke("snapshot", "--repo", tmp_path / "a", "--graph-url", url, env=FAST_LOG)  # a log would speak
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == "" and "progress" not in quiet.stdout
    asked = invoke(
        "snapshot", "--repo", tmp_path / "b", "--graph-url", url, env={"ENTRA_GITOPS_PROGRESS": "log", **FAST_LOG}
    )
    assert asked.exit_code == 0, asked.output
    assert progress_lines(asked.stderr) and ESCAPE not in asked.stderr


def test_a_count_costs_one_request_per_countable_type_and_changes_nothing_read(tmp_path: Path) -> None:
    def snapshot(where: Path, env: dict[str, str] | None) -> tuple[list[str], str, str]:
        with served() as (url, app):
            paths: list[str] = []
            handle = app.handle

            def recording(request: Any, request_id: str | None = None) -> Any:
                paths.append(request.path)
                return handle(request, request_id)

            app.handle = recording  # type: ignore[method-assign]
            result = invoke("snapshot", "--repo", where, "--graph-url", url, "--concurrency", "64", env=env)
        assert result.exit_code == 0, result.output
        return paths, git(where, "rev-parse", "HEAD^{tree}"), result.stdout

    unwatched, tree, report = snapshot(tmp_path / "unwatched", None)
    watched, same_tree, watched_report = snapshot(tmp_path / "watched", {"ENTRA_GITOPS_PROGRESS": "log"})
    counts = sorted(p for p in watched if p.endswith("/$count"))
    assert not any(p.endswith("/$count") for p in unwatched)
    expected = sorted(f"{REGISTRY.get(n).collection}/$count" for n in COUNTABLE)
    assert set(counts) <= set(expected) and len(counts) == len(set(counts))  # at most one per countable type
    assert sorted(p for p in watched if not p.endswith("/$count")) == sorted(unwatched)
    assert same_tree == tree
    with served() as (url, _), httpx.Client(base_url=url + "/", headers={"Authorization": "Bearer local"}) as http:
        for name in COUNTABLE:  # what the emulator answers, as Graph does: the live objects, as plain text
            answer = http.get(f"{REGISTRY.get(name).collection}/$count", headers={"ConsistencyLevel": "eventual"})
            assert answer.status_code == 200 and int(answer.text) == len(SEED[REGISTRY.get(name).collection]), name
    strip = re.compile(r"backup/\S+|commit \w+|Read with .*")
    assert strip.sub("", watched_report) == strip.sub("", report)


def test_a_count_graph_refuses_leaves_the_running_number(tmp_path: Path) -> None:
    spec = f"{SLOW_USERS};400,path=users/$count"
    with served(faults=spec) as (url, _):
        result = invoke(
            "snapshot",
            "--repo",
            tmp_path / "state",
            "--graph-url",
            url,
            env={"ENTRA_GITOPS_PROGRESS": "log", **FAST_LOG},
        )
    assert result.exit_code == 0, result.output
    lines = progress_lines(result.stderr)
    assert any(re.search(r": user 0 objects[,;]", line) for line in lines), lines
    assert not any(f"/{USERS} objects" in line for line in lines)


def test_diff_json_on_stdout_stays_whole_while_the_terminal_shows_progress(
    repo: Path, slow_users: tuple[str, Emulator]
) -> None:
    url, _ = slow_users
    with served() as (same_tenant, _):
        expected = invoke("diff", "--repo", repo, "--graph-url", same_tenant, "--format", "json")
    code, out, terminal = on_terminal("diff", "--repo", repo, "--graph-url", url, "--format", "json")
    assert code == expected.exit_code == 0, terminal
    assert json.loads(out) == json.loads(expected.stdout)
    assert f"0/{USERS} objects" in plain(terminal)


# -- apply ---------------------------------------------------------------------------------------------------


def drifted_plan(repo: Path, url: str, users: int = 4) -> Path:
    with httpx.Client(base_url=url + "/", headers={"Authorization": "Bearer local"}) as http:
        for user in CLOUD[:users]:
            assert http.patch(f"users/{user}", json={"department": "Moved by someone"}).status_code == 204
    path = repo.parent / "plan.json"
    result = invoke("plan", "--repo", repo, "--graph-url", url, "--type", "user", "-o", path)
    assert result.exit_code == 0, result.output
    assert len(json.loads(path.read_text())["writes"]) == users
    return path


def test_apply_shows_writes_done_of_the_total_the_step_and_the_pace(repo: Path, served_emulator: str) -> None:
    plan = drifted_plan(repo, served_emulator)
    args = ("apply", plan, "--repo", repo, "--graph-url", served_emulator, "--auto-approve", "--write-rate", "2")
    code, out, terminal = on_terminal(*args, env=child_env(NO_COLOR="1"))
    assert code == 0, terminal
    assert not re.search(r"\x1b\[(?:\d+;)*(?:3\d|9[0-7])(?:;\d+)*m", terminal)  # NO_COLOR: drawn, not coloured
    shown = plain(terminal)
    assert re.search(r"apply .*\d/4 writes", shown), shown
    assert re.search(r"update user '[^']+' \([0-9a-f-]+\) and 3 more in one \$batch", shown), shown
    assert "waiting on the write pace, 2/s" in shown
    assert "Apply succeeded: 4 of 4 write(s) done" in out


def test_apply_in_a_ci_log_says_done_of_total_and_what_it_waits_on(repo: Path, served_emulator: str) -> None:
    plan = drifted_plan(repo, served_emulator, users=3)
    result = in_log(
        "apply", plan, "--repo", repo, "--graph-url", served_emulator, "--auto-approve", "--write-rate", "2"
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in progress_lines(result.stderr) if line.startswith("progress: apply ")]
    assert lines and all(re.match(r"progress: apply \d/3 writes, ", line) for line in lines), result.stderr
    assert any("waiting on the write pace, 2/s (write " in line for line in lines), lines
    assert ESCAPE not in result.stderr


def test_ctrl_c_in_apply_says_the_journal_holds_it_and_the_rerun_continues(repo: Path, served_emulator: str) -> None:
    plan = drifted_plan(repo, served_emulator)
    args = ("apply", plan, "--repo", repo, "--graph-url", served_emulator, "--auto-approve", "--write-rate", "1")
    process = subprocess.Popen(
        [*ENTRA_GITOPS, *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(**FAST_LOG),
        start_new_session=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("progress: apply "):
            os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl+C reaches the whole group
            break
    out, rest = process.communicate(timeout=30)
    assert process.returncode == 130, rest
    said = [line for line in rest.splitlines() if line.startswith("Interrupted: ")]
    assert len(said) == 1, rest
    assert "the plan's journal holds what was done" in said[0] and "of 4 write(s)" in said[0]
    assert f"run 'entra-gitops apply {plan}' again" in said[0] and "continues where it stopped" in said[0]
    rerun = invoke("apply", plan, "--repo", repo, "--graph-url", served_emulator, "--auto-approve")
    assert rerun.exit_code == 0, rerun.output
    assert "Continuing an earlier apply of this plan" in rerun.stdout and "4 of 4 write(s) done" in rerun.stdout


# -- the core reports values and prints nothing ------------------------------------------------------------------


class Recorder:
    """A Progress that keeps what it is told."""

    wants_totals = True

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def __call__(self, label: str, count: int) -> None:
        self.events.append(("read", label, count))

    def total(self, label: str, total: int) -> None:
        self.events.append(("total", label, total))

    def phase(self, name: str, total: int | None = None, unit: str = "", done: int = 0) -> None:
        self.events.append(("phase", name, total, unit, done))

    def advance(self, count: int = 1, current: str | None = None) -> None:
        self.events.append(("advance", count, current))

    def waiting(self, seconds: float, reason: str) -> None:
        self.events.append(("waiting", seconds, reason))

    def phases(self) -> list[tuple[Any, ...]]:
        return [e[1:] for e in self.events if e[0] == "phase"]

    def advanced(self, name: str) -> int:
        """The items advanced in the (last) phase called `name`."""
        start = max(i for i, e in enumerate(self.events) if e[0] == "phase" and e[1] == name)
        following = [e for e in self.events[start + 1 :]]
        end = next((i for i, e in enumerate(following) if e[0] == "phase"), len(following))
        return sum(e[1] for e in following[:end] if e[0] == "advance")


def test_a_snapshot_reports_each_phase_with_its_counts_and_prints_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert isinstance(Recorder(), Progress)
    store = StateRepo.open(tmp_path / "state", create=True)
    recorder = Recorder()
    with served() as (_, app):

        async def go() -> Any:
            client = graph_client(app)
            try:
                return await take_snapshot(
                    client,
                    store,
                    REGISTRY,
                    tuple(REGISTRY),
                    Config(),
                    dt.datetime(2026, 11, 21, tzinfo=dt.UTC),
                    recorder,
                )
            finally:
                await client.aclose()

        outcome = run(go())
    assert capfd.readouterr() == ("", "")
    names = [p[0] for p in recorder.phases()]
    assert names == ["read", "render", "compare", "commit", "check out"]
    objects = sum(outcome.backup.counts.values()) + sum(outcome.backup.deleted.values())
    phases = {p[0]: p for p in recorder.phases()}
    # Objects are normalized and rendered as their pages come; the render phase finishes those that waited for
    # their links (groups, guests) or children (service principals).
    assert phases["render"][2] == "files" and 0 < recorder.advanced("render") == phases["render"][1] < objects
    # The files were written to git's object store as they were rendered: the commit writes only the settings
    # file that records the tenant id, then the trees.
    assert outcome.change.added[-1:] == ("entra-gitops.yaml",)
    assert phases["commit"][1:3] == (1, "files") and recorder.advanced("commit") == 1
    totals = {e[1]: e[2] for e in recorder.events if e[0] == "total"}
    reads: dict[str, int] = {}
    for event in recorder.events:
        if event[0] == "read":
            reads[event[1]] = reads.get(event[1], 0) + event[2]
    assert totals["user"] == reads["user"] == outcome.backup.counts["user"]
    assert reads["user (deleted)"] == outcome.backup.deleted["user"]
    assert {label: totals[label] for label in reads} == reads  # every read ends with its total
