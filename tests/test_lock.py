"""The repository lock: only its owner releases it, a dead holder is recognised, a live one needs its id to clear."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from entra_gitops.state.lock import STALE_AFTER, LockedError, clear, exclusive, lock_path


def write_lock(git_dir: Path, **fields: object) -> None:
    record = {"id": "feedfacecafebeef", "command": "snapshot", "pid": os.getpid(), "host": "this-host", "user": "ci",
              "since": "2026-12-01T10:00:00Z", **fields}  # fmt: skip
    lock_path(git_dir).write_text(json.dumps(record), encoding="utf-8")


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_only_the_owner_releases_its_lock(tmp_path: Path) -> None:
    with exclusive(tmp_path, "apply") as first:
        lock = json.loads(lock_path(tmp_path).read_text())
        assert lock["id"] == first and lock["pid"] == os.getpid() and lock["command"] == "apply"
        with pytest.raises(LockedError, match=f"unlock --force {first}"), exclusive(tmp_path, "snapshot"):
            pass
        clear(tmp_path, first)  # forced: someone decided the first run is gone
        with exclusive(tmp_path, "snapshot") as second:
            assert json.loads(lock_path(tmp_path).read_text())["id"] == second
        assert not lock_path(tmp_path).exists()
        with exclusive(tmp_path, "snapshot") as third:
            pass
        assert third != first
    # The first run's exit found another id (or none) and removed nothing of anyone else's.
    assert not lock_path(tmp_path).exists()


def test_a_lock_whose_process_is_gone_is_taken_over_and_said_so(tmp_path: Path) -> None:
    import socket

    write_lock(tmp_path, host=socket.gethostname(), pid=dead_pid())
    said: list[str] = []
    with exclusive(tmp_path, "snapshot", notice=said.append):
        assert json.loads(lock_path(tmp_path).read_text())["pid"] == os.getpid()
    assert len(said) == 1 and "took over the lock of a run that is gone" in said[0] and "feedfacecafebeef" in said[0]


def test_a_lock_from_another_host_counts_as_gone_only_after_the_stale_age(tmp_path: Path) -> None:
    recent = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    write_lock(tmp_path, host="a-ci-runner", since=recent)
    with pytest.raises(LockedError, match="a-ci-runner"), exclusive(tmp_path, "snapshot"):
        pass
    old = (dt.datetime.now(dt.UTC) - STALE_AFTER - dt.timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    write_lock(tmp_path, host="a-ci-runner", since=old)
    with exclusive(tmp_path, "snapshot"):
        pass


def test_unlock_refuses_a_live_holder_and_takes_its_id(tmp_path: Path) -> None:
    import socket

    write_lock(tmp_path, host=socket.gethostname())  # this very process: alive
    with pytest.raises(LockedError, match="still running"):
        clear(tmp_path)
    with pytest.raises(LockedError, match="not this lock's id"):
        clear(tmp_path, "0000")
    holder = clear(tmp_path, "feedfacecafebeef")
    assert holder is not None and holder.lock_id == "feedfacecafebeef" and not lock_path(tmp_path).exists()
    assert clear(tmp_path) is None


def test_an_unreadable_lock_is_refused_not_ignored(tmp_path: Path) -> None:
    lock_path(tmp_path).write_text("{not json", encoding="utf-8")
    with pytest.raises(LockedError, match="lock id unknown"), exclusive(tmp_path, "snapshot"):
        pass


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_release_the_lock(tmp_path: Path, signum: int) -> None:
    # A process holding the lock, signalled as a terminal or a CI cancel signals its whole group.
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from entra_gitops.state import signals\n"
        "from entra_gitops.state.lock import exclusive\n"
        "signals.install()\n"
        "try:\n"
        f"    with exclusive(Path({str(tmp_path)!r}), 'snapshot'):\n"
        "        print('locked', flush=True)\n"
        "        time.sleep(60)\n"
        "except KeyboardInterrupt:\n"
        "    sys.exit(130)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "locked"
    os.killpg(process.pid, signum)
    assert process.wait(timeout=20) == 130
    deadline = time.monotonic() + 5
    while lock_path(tmp_path).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not lock_path(tmp_path).exists()
