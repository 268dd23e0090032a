"""The fault suite: every way a run is interrupted, throttled, refused or misconfigured, through the real CLI.

Each case asserts the outcome (exit code, the one line a person reads) *and* that nothing was lost: the
branch, every backup tag, recovery history and apply journals are as they were (or hold exactly the new
backup), `git status` is clean, and a rerun just works. Signals go to the whole process group, as a
terminal's Ctrl+C or a cancelled CI job sends them. The emulators run in this process (loopback HTTP,
served from a thread); the command under test runs in process through click's runner, or as a real
subprocess where only a real process can show it (signals, the lock of a live process).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from conftest import ENTRA_GITOPS, demo_seed, demo_tenant, git

from entra_gitops.cli.main import cli
from entra_gitops.emulator import Emulator, create_emulator
from entra_gitops.emulator.limits import Faults, parse_faults
from entra_gitops.emulator.seed import SeedLoader
from entra_gitops.emulator.server import serving
from entra_gitops.model.registry import default_registry
from entra_gitops.recovery.plan import compute_checksum
from entra_gitops.state.lock import exclusive, lock_path

SEED = demo_seed()
USERS = {u["displayName"]: u["id"] for u in SEED["users"]}
KARI, LARS, PER, SOFIA = (USERS[n] for n in ("Kari Nordmann", "Lars Haugen", "Per Aas", "Sofia Andersson"))
AUTH = {"Authorization": "Bearer local"}
SYNTHETIC = "synthetic:users=6000,groups=300,apps=10"
# Cloud users an administrator can change (not synchronised from on-premises, not break-glass).
CLOUD = [
    u["id"]
    for u in SEED["users"]
    if not u.get("onPremisesSyncEnabled") and not u["displayName"].startswith("Break Glass") and u["id"] != SOFIA
]


def faults(spec: str) -> Faults:
    return Faults(parse_faults(spec))


# -- running it ---------------------------------------------------------------------------------------------


def run(*args: Any) -> Result:
    """The real command line, in process."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def start(*args: Any, **kwargs: Any) -> subprocess.Popen[str]:
    """The real command as its own process group, as a terminal or a CI runner starts it."""
    return subprocess.Popen(
        [*ENTRA_GITOPS, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        **kwargs,
    )


def one_error(result: Result | subprocess.CompletedProcess[str]) -> str:
    """The single error line a person reads (and no traceback)."""
    stderr = result.stderr
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


@contextlib.contextmanager
def graph(app: Emulator | None = None) -> Iterator[tuple[str, Emulator]]:
    app = app or Emulator(demo_tenant())
    with serving(app) as url:
        yield url, app


def with_faults(spec: str, seed: dict[str, Any] | None = None) -> Emulator:
    tenant = SeedLoader(default_registry(), seed or demo_seed(), "demo").load()
    return Emulator(tenant, faults=faults(spec))


class Live:
    """An administrator's plain HTTP to the emulator."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url + "/", headers=AUTH, timeout=30)

    def write(self, method: str, path: str, body: Any = None) -> None:
        response = self.http.request(method, path, json=body)
        assert response.status_code < 300, response.text

    def get(self, path: str) -> dict[str, Any]:
        response = self.http.get(path)
        assert response.status_code == 200, response.text
        return response.json()


# -- what "nothing lost" means ---------------------------------------------------------------------------------


def holdings(repo: Path) -> dict[str, Any]:
    """Everything a run must not lose: the branch, every backup tag, history and journals."""
    journal = repo / ".git" / "entra-gitops" / "journal"
    return {
        "head": git(repo, "rev-parse", "HEAD").strip(),
        "tags": git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/tags/").splitlines(),
        "history": sorted(p.name for p in (repo / "history").glob("*.yaml")) if (repo / "history").exists() else [],
        "journal": {p.name: p.read_text() for p in journal.glob("*.jsonl")} if journal.exists() else {},
    }


def assert_intact(repo: Path, before: dict[str, Any]) -> None:
    """Nothing lost or half done: the holdings unchanged, a clean tree, no lock left behind."""
    assert holdings(repo) == before
    assert git(repo, "status", "--porcelain") == ""
    assert not lock_path(repo / ".git").exists()


def plan_file(repo: Path, url: str, *extra: str, name: str = "plan.json") -> tuple[Path, dict[str, Any]]:
    path = repo.parent / name
    result = run("plan", "--repo", repo, "--graph-url", url, "-o", path, *extra)
    assert result.exit_code == 0, result.output
    return path, json.loads(path.read_text())


def apply(repo: Path, url: str, path: Path, *extra: str) -> Result:
    return run("apply", path, "--repo", repo, "--graph-url", url, "--auto-approve", *extra)


# -- plans that cannot be applied ---------------------------------------------------------------------------------


def test_a_stale_plan_writes_nothing(repo: Path) -> None:
    with graph() as (url, _):
        live = Live(url)
        live.write("PATCH", f"users/{KARI}", {"department": "Procurement"})
        path, _ = plan_file(repo, url, "--type", "user")
        live.write("PATCH", f"users/{KARI}", {"jobTitle": "Newer than the plan"})
        before = holdings(repo)
        result = apply(repo, url, path)
        assert result.exit_code == 4 and "changed since the plan was made" in one_error(result)
        assert live.get(f"users/{KARI}?$select=department")["department"] == "Procurement"
    assert_intact(repo, before)


def test_a_plan_whose_backup_tag_moved_is_refused(repo: Path) -> None:
    with graph() as (url, _):
        Live(url).write("PATCH", f"users/{KARI}", {"department": "Procurement"})
        path, document = plan_file(repo, url, "--type", "user")
        (repo / "notes.txt").write_text("moved on\n")
        git(repo, "add", "notes.txt")
        git(repo, "commit", "-qm", "the repository moved on")
        git(repo, "tag", "-f", "-a", "-m", "moved", document["backup"]["tag"], "HEAD")
        before = holdings(repo)
        result = apply(repo, url, path)
        assert result.exit_code == 1 and "now points at" in one_error(result)
    assert_intact(repo, before)


@pytest.mark.parametrize("forgery", ["checksum", "tenant"])
def test_a_tampered_plan_or_one_for_another_tenant_is_refused(repo: Path, forgery: str) -> None:
    with graph() as (url, _):
        Live(url).write("PATCH", f"users/{KARI}", {"department": "Procurement"})
        path, document = plan_file(repo, url, "--type", "user")
        if forgery == "checksum":
            document["writes"][0]["body"]["department"] = "Chosen by someone else"
        else:
            document["tenant"] = "00000000-0000-4000-8000-00000000beef"
            document["checksum"] = compute_checksum(document)
        path.write_text(json.dumps(document))
        before = holdings(repo)
        result = apply(repo, url, path)
        expected = "checksum does not match" if forgery == "checksum" else "the plan is for tenant"
        assert result.exit_code == 1 and expected in one_error(result)
    assert_intact(repo, before)


# -- reads that fail ---------------------------------------------------------------------------------------------


def test_a_type_graph_refuses_to_read_makes_no_backup(repo: Path) -> None:
    before = holdings(repo)
    with graph(with_faults("403,path=identity/conditionalAccess/policies*")) as (url, _):
        result = run("snapshot", "--repo", repo, "--graph-url", url)
    assert result.exit_code == 1
    line = one_error(result)
    assert "403" in line and "identity/conditionalAccess/policies" in line
    assert_intact(repo, before)


def test_a_transient_server_error_is_retried(repo: Path) -> None:
    with graph(with_faults("503,first=2,retry-after=0,path=users")) as (url, app):
        result = run("snapshot", "--repo", repo, "--graph-url", url, "--type", "user")
    assert result.exit_code == 0, result.output
    assert "2 retries" in result.stdout


@pytest.mark.parametrize(("dropped", "words"), [(28, "user: 4 read"), (32, "user: 0 read")])
def test_a_truncated_or_empty_read_is_not_a_backup(repo: Path, dropped: int, words: str) -> None:
    before = holdings(repo)
    with graph(with_faults(f"truncate={dropped},path=users")) as (url, _):
        result = run("snapshot", "--repo", repo, "--graph-url", url, "--type", "user")
    assert result.exit_code == 1
    line = one_error(result)
    assert "suspect read" in line and words in line and "--accept-shrink user" in line
    assert_intact(repo, before)


def test_an_expired_page_token_restarts_that_collection(tmp_path: Path) -> None:
    with graph(create_emulator("synthetic:users=1500,groups=20,apps=3", faults="expire-token,first=1,path=users")) as (
        url,
        _,
    ):
        result = run("snapshot", "--repo", tmp_path / "state", "--graph-url", url, "--type", "user")
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "state" / "tenant-state" / "users").iterdir())) == 1500


def test_a_repeated_page_token_is_an_error_not_a_loop(tmp_path: Path) -> None:
    with graph(create_emulator("synthetic:users=1500,groups=20,apps=3", faults="repeat-skiptoken,path=users")) as (
        url,
        app,
    ):
        result = run("snapshot", "--repo", tmp_path / "state", "--graph-url", url, "--type", "user")
        requests = app.request_count
    assert result.exit_code == 1
    assert "page link twice" in one_error(result)
    assert requests < 20  # it stopped at the first repeat
    assert git(tmp_path / "state", "tag", "--list") == ""


# -- throttling --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_throttled_read_without_retry_after_backs_off_and_succeeds(repo: Path) -> None:
    with graph(with_faults("429,first=2,retry-after=none,path=users")) as (url, _):
        result = run("snapshot", "--repo", repo, "--graph-url", url, "--type", "user")
    assert result.exit_code == 0, result.output
    assert "2 throttled" in result.stdout


def test_a_retry_after_beyond_max_wait_fails_at_once(repo: Path) -> None:
    before = holdings(repo)
    started = time.monotonic()
    # The users' delta round, which continues from the template's backup.
    with graph(with_faults("429,first=1,retry-after=400,path=users/delta")) as (url, _):
        result = run("snapshot", "--repo", repo, "--graph-url", url, "--type", "user")
    assert result.exit_code == 1
    assert "asked to wait 400 s" in one_error(result) and "--max-wait" in result.stderr
    assert time.monotonic() - started < 30
    assert_intact(repo, before)


@pytest.mark.slow
def test_a_long_wait_is_said_aloud(repo: Path) -> None:
    with graph(with_faults("429,first=1,retry-after=6,path=users")) as (url, _):
        result = run("snapshot", "--repo", repo, "--graph-url", url, "--type", "user")
    assert result.exit_code == 0, result.output
    assert "warning: waiting 6 s before retrying GET /v1.0/users: Graph answered 429" in result.stderr


@pytest.mark.slow
def test_the_overall_deadline_gives_up_with_one_line(repo: Path) -> None:
    before = holdings(repo)
    # Each answer takes 2 s, twice the deadline (the emulator's stop then waits out the answer it was holding).
    with graph(with_faults("delay=2,path=users")) as (url, _):
        result = run("snapshot", "--repo", repo, "--graph-url", url, "--type", "user", "--timeout", "1")
    assert result.exit_code == 1 and "gave up after --timeout 1 s" in one_error(result)
    assert_intact(repo, before)


# -- writes that fail, and answers that are lost -------------------------------------------------------------


def test_a_partial_failure_is_recorded_and_a_new_plan_finishes_it(repo: Path) -> None:
    with graph() as (url, app):
        live = Live(url)
        for user in (KARI, LARS):
            live.write("PATCH", f"users/{user}", {"department": "Procurement"})
        path, document = plan_file(repo, url, "--type", "user")
        assert len(document["writes"]) == 2
        app.faults = faults(f"400,first=1,method=PATCH,path=users/{LARS}")
        partial = apply(repo, url, path)
        assert partial.exit_code == 1 and "partiallyApplied" in partial.stdout
        app.faults = None
        again, document = plan_file(repo, url, "--type", "user", name="again.json")
        assert [w["id"] for w in document["writes"]] == [LARS]
        assert apply(repo, url, again).exit_code == 0
        assert live.get(f"users/{LARS}?$select=department")["department"] != "Procurement"
    assert [r["status"] for r in json.loads(run("history", "--repo", repo, "--format", "json").stdout)] == [
        "succeeded",
        "partiallyApplied",
    ]


def test_an_answer_lost_after_the_write_is_confirmed_not_resent(repo: Path) -> None:
    with graph() as (url, app):
        Live(url).write("DELETE", f"users/{PER}")
        path, _ = plan_file(repo, url, "--type", "user")
        app.faults = faults("504,first=1,method=POST,after-commit,path=directory/deletedItems/*")
        result = apply(repo, url, path)
        assert result.exit_code == 0, result.output
    events = [json.loads(line) for text in holdings(repo)["journal"].values() for line in text.splitlines()]
    assert [(e["event"], e.get("status")) for e in events] == [("sent", None), ("confirmed", 504)]


def test_a_write_right_after_a_restore_waits_for_graph_to_catch_up(repo: Path) -> None:
    with graph() as (url, app):
        Live(url).write("DELETE", f"users/{PER}")
        app.tenant.deleted["user"][PER].obj["department"] = "Changed while deleted"
        path, document = plan_file(repo, url, "--type", "user")
        assert [w["step"] for w in document["writes"]] == ["restore", "update"]
        # Graph's replication lag: the object just restored is not found for a moment.
        app.faults = faults(f"404,first=1,method=PATCH,path=users/{PER}")
        result = apply(repo, url, path)
        assert result.exit_code == 0, result.output
    events = [json.loads(line) for text in holdings(repo)["journal"].values() for line in text.splitlines()]
    assert [e for e in events if e["write"] == 1][-1]["retried"] is True


# -- the guards -----------------------------------------------------------------------------------------------------


def test_a_mass_change_and_a_protected_object_are_refused(repo: Path) -> None:
    config = repo / "entra-gitops.yaml"
    config.write_text(config.read_text() + f"protected:\n  - type: user\n    id: {SOFIA}\n")
    git(repo, "commit", "-qam", "protect Sofia")
    before = holdings(repo)
    with graph() as (url, _):
        live = Live(url)
        for user in [SOFIA, *CLOUD[:13]]:
            live.write("PATCH", f"users/{user}", {"jobTitle": "Mass change"})
        result = run("plan", "--repo", repo, "--graph-url", url, "--type", "user")
    assert result.exit_code == 3
    assert "more than the 30% threshold" in result.output and f"({SOFIA}) is protected" in result.output
    assert_intact(repo, before)


# -- the lock -------------------------------------------------------------------------------------------------------


def test_a_live_holder_blocks_and_unlock_needs_its_id(repo: Path) -> None:
    before = holdings(repo)
    with graph() as (url, _), exclusive(repo / ".git", "apply") as lock_id:
        held = run("snapshot", "--repo", repo, "--graph-url", url, "--type", "user")
        assert held.exit_code == 1 and f"unlock --force {lock_id}" in one_error(held)
        refused = run("unlock", "--repo", repo)
        assert refused.exit_code == 1 and "still running" in one_error(refused)
    assert_intact(repo, before)


def test_a_stale_lock_is_taken_over(repo: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    record = {"id": "0123456789abcdef", "command": "snapshot", "pid": dead.pid, "host": socket.gethostname(),
              "user": "ci", "since": "2026-12-01T10:00:00Z"}  # fmt: skip
    lock_path(repo / ".git").write_text(json.dumps(record))
    with graph() as (url, _):
        result = run("snapshot", "--repo", repo, "--graph-url", url, "--type", "user")
    assert result.exit_code == 0, result.output
    assert "took over the lock of a run that is gone" in result.stderr and "0123456789abcdef" in result.stderr
    assert not lock_path(repo / ".git").exists()


@pytest.mark.slow
def test_two_snapshots_at_once_one_refused(repo: Path) -> None:
    with graph(with_faults("delay=2,path=organization")) as (url, _):
        first = start("snapshot", "--repo", repo, "--graph-url", url, "--type", "user")
        deadline = time.monotonic() + 30
        while not lock_path(repo / ".git").exists():
            assert time.monotonic() < deadline and first.poll() is None, "the first snapshot never took the lock"
            time.sleep(0.01)
        second = run("snapshot", "--repo", repo, "--graph-url", url, "--type", "user")
        out, err = first.communicate(timeout=60)
    assert second.exit_code == 1 and "another entra-gitops run holds this repository" in one_error(second)
    assert first.returncode == 0, err
    assert len(git(repo, "tag", "--list", "backup/*").split()) == 2
    assert git(repo, "status", "--porcelain") == ""


# -- signals mid-apply and mid-snapshot ------------------------------------------------------------------------


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGKILL, -9)])
def test_an_interrupted_apply_releases_its_lock_and_resumes(repo: Path, signum: int, code: int) -> None:
    with graph() as (url, _):
        live = Live(url)
        movers = CLOUD[3:7]
        for user in movers:
            live.write("PATCH", f"users/{user}", {"department": "Moved"})
        path, document = plan_file(repo, url, "--type", "user")
        process = start("apply", path, "--repo", repo, "--graph-url", url, "--auto-approve", "--write-rate", "0.5")
        journal = repo / ".git" / "entra-gitops" / "journal"
        deadline = time.monotonic() + 60
        # The writes' intents are journalled, and the run waits for its write pace to send them.
        while not any('"sent"' in p.read_text() for p in journal.glob("*.jsonl")) if journal.exists() else True:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.01)
        os.killpg(process.pid, signum)
        _, err = process.communicate(timeout=60)
        assert process.returncode == code, err
        # SIGINT and SIGTERM release the lock on the way out; after SIGKILL the next run sees its holder is gone.
        assert lock_path(repo / ".git").exists() is (signum == signal.SIGKILL)
        resumed = apply(repo, url, path)
        assert resumed.exit_code == 0, resumed.output
        assert "Continuing an earlier apply" in resumed.stdout
        assert ("took over the lock of a run that is gone" in resumed.stderr) is (signum == signal.SIGKILL)
        assert all(live.get(f"users/{u}?$select=department").get("department") != "Moved" for u in movers)
    events = [json.loads(line) for text in holdings(repo)["journal"].values() for line in text.splitlines()]
    finished = [e["write"] for e in events if e["event"] in ("done", "confirmed")]
    assert sorted(finished) == list(range(len(document["writes"])))  # each write exactly once


@pytest.fixture(scope="module")
def synthetic_url() -> Iterator[str]:
    with serving(create_emulator(SYNTHETIC)) as url:
        yield url


def _wait_for(path_test: Callable[[], bool], process: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 120
    while not path_test():
        assert process.poll() is None, f"the snapshot ended before {what}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.002)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("point", "signum"),
    [
        ("objects", signal.SIGINT),
        ("moving", signal.SIGTERM),
        ("moving", signal.SIGKILL),
        ("objects", signal.SIGKILL),
    ],
)
def test_a_snapshot_interrupted_while_writing_leaves_the_old_state_or_the_new_backup(
    tmp_path: Path, synthetic_url: str, point: str, signum: int
) -> None:
    repo = tmp_path / "state"
    first = run("snapshot", "--repo", repo, "--graph-url", synthetic_url, "--type", "organization")
    assert first.exit_code == 0, first.output
    before = holdings(repo)
    packs = repo / ".git" / "objects" / "pack"
    packed = set(packs.iterdir())
    marker = repo / ".git" / "entra-gitops" / "worktree-pending.json"

    def reached() -> bool:
        if point == "moving":
            return marker.exists()
        # git fast-import is writing the new objects: its temporary pack, or the pack it just finished.
        return any(p.name.startswith("tmp_pack_") or p not in packed for p in packs.iterdir())

    process = start("snapshot", "--repo", repo, "--graph-url", synthetic_url)
    _wait_for(reached, process, f"the {point} phase")
    os.killpg(process.pid, signum)
    process.communicate(timeout=120)
    after = holdings(repo)
    backed_up = after["head"] != before["head"]
    if backed_up:  # the signal came once the refs had moved: the new backup is whole
        assert len(after["tags"]) == len(before["tags"]) + 1
    else:
        assert after == before
    if signum is not signal.SIGKILL:
        assert git(repo, "status", "--porcelain") == "" and not lock_path(repo / ".git").exists()
    # Whatever happened, the next run finishes the job and needs no one's help.
    again = run("snapshot", "--repo", repo, "--graph-url", synthetic_url)
    assert again.exit_code == 0, again.output
    assert git(repo, "status", "--porcelain") == ""
    assert len(list((repo / "tenant-state" / "users").iterdir())) == 6000
    scratch = repo / ".git" / "entra-gitops" / "tmp"
    assert not scratch.exists() or not any(scratch.iterdir())  # no scratch index left behind
    final = holdings(repo)
    assert set(before["tags"]) <= set(final["tags"])  # no earlier backup lost


# -- the disk and the repository -------------------------------------------------------------------------------


def _tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True)
    return os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                                                capture_output=True).returncode == 0  # fmt: skip


def test_a_full_disk_fails_with_one_line_and_loses_nothing(template: Path, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    if not _tmpfs(disk, "3m"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        repo = disk / "state"
        shutil.copytree(template, repo, symlinks=True)
        before = holdings(repo)
        seed = copy.deepcopy(SEED)
        for user in seed["users"]:
            user["jobTitle"] = "A very long job title " * 40
        filler = disk / "filler"
        free = shutil.disk_usage(disk).free
        filler.write_bytes(b"\0" * max(free - 40_000, 0))  # leave too little for the new objects
        with graph(Emulator(SeedLoader(default_registry(), seed, "demo").load())) as (url, _):
            result = run("snapshot", "--repo", repo, "--graph-url", url, "--type", "user")
        assert result.exit_code == 1
        assert "No space left on device" in one_error(result)
        filler.unlink()
        assert holdings(repo) == before and git(repo, "status", "--porcelain") == ""
    finally:
        # GitPython's long-lived cat-file processes may still sit in the repository: detach the mount lazily.
        subprocess.run(["umount", "-l", str(disk)], check=False)
