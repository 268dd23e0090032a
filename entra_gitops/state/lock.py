"""One snapshot or recovery at a time per repository: a lock file inside .git that only its owner releases.

The lock records a random id, the pid, host, user, command and start time. Releasing removes the file
only while it still holds our id, so a run whose lock was forcibly taken over never deletes its
successor's. A lock whose holder is gone (its pid is dead on this host, or it is older than
STALE_AFTER and from another host: a CI runner that died) is taken over with a word to the user; a
live holder's lock is cleared only by `unlock --force LOCK-ID`, as Terraform's `force-unlock` does.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import secrets
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entra_gitops.model.errors import EntraGitopsError
from entra_gitops.model.ids import utc_text

LOCK_NAME = "entra-gitops.lock"
# A lock from another host cannot be checked for a live process; after this long its run is taken to be dead.
STALE_AFTER = dt.timedelta(hours=6)


class LockedError(EntraGitopsError):
    """Another snapshot or recovery holds the repository's lock."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its file says."""

    lock_id: str
    command: str
    pid: int | None
    host: str
    user: str
    since: str

    def describe(self) -> str:
        return (
            f"{self.command} by {self.user} on {self.host} (pid {self.pid}) since {self.since}, lock id {self.lock_id}"
        )

    def alive(self, now: dt.datetime) -> bool:
        """Whether the holder may still run: a live pid here; elsewhere, a lock younger than STALE_AFTER."""
        if self.host == socket.gethostname() and isinstance(self.pid, int):
            return _alive(self.pid)
        try:
            started = dt.datetime.fromisoformat(self.since.replace("Z", "+00:00"))
        except ValueError:
            return True  # cannot tell: fail closed
        return now - started < STALE_AFTER


def lock_path(git_dir: Path) -> Path:
    return git_dir / LOCK_NAME


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_holder(path: Path) -> Holder | None:
    """The lock's holder; None when there is no lock. An unreadable file is a holder of unknown age."""
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        raw = {}
    if not isinstance(raw, dict):
        raw = {}
    pid = raw.get("pid")
    return Holder(
        str(raw.get("id") or "unknown"),
        str(raw.get("command") or "unknown"),
        pid if isinstance(pid, int) else None,
        str(raw.get("host") or "unknown"),
        str(raw.get("user") or "unknown"),
        str(raw.get("since") or "unknown"),
    )


def describe_holder(path: Path) -> str:
    """Who holds the lock and since when, in words (and whether that run is gone)."""
    holder = read_holder(path)
    if holder is None:
        return "nobody"
    text = holder.describe()
    if not holder.alive(dt.datetime.now(dt.UTC)):
        text += "; that run is gone"
    return text


def _take(path: Path, record: dict[str, Any]) -> bool:
    try:
        handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        json.dump(record, file)
        file.flush()
        os.fsync(file.fileno())
    return True


def _release(path: Path, lock_id: str) -> None:
    """Remove the lock only while it is ours: a forced takeover's successor keeps its own."""
    holder = read_holder(path)
    if holder is not None and holder.lock_id == lock_id:
        path.unlink(missing_ok=True)


@contextmanager
def exclusive(git_dir: Path, command: str, notice: Callable[[str], None] | None = None) -> Iterator[str]:
    """Hold the repository's lock for the duration; yields the lock id. A live holder is refused, a dead one
    taken over (said through `notice`)."""
    path = lock_path(git_dir)
    lock_id = secrets.token_hex(8)
    record = {
        "id": lock_id,
        "command": command,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "user": getpass.getuser(),
        "since": utc_text(dt.datetime.now(dt.UTC)),
    }
    if not _take(path, record):
        holder = read_holder(path)
        if holder is not None and holder.alive(dt.datetime.now(dt.UTC)):
            raise LockedError(
                f"another entra-gitops run holds this repository: {holder.describe()}",
                hint=f"wait for it; if it is really gone, 'entra-gitops unlock --force {holder.lock_id}'",
            )
        if holder is not None:
            # Only the stale file we just read goes: a run that took it meanwhile keeps its lock.
            _release(path, holder.lock_id)
            if notice:
                notice(f"took over the lock of a run that is gone: {holder.describe()}")
        if not _take(path, record):
            raise LockedError(f"another entra-gitops run took this repository's lock just now: {describe_holder(path)}")
    try:
        yield lock_id
    finally:
        _release(path, lock_id)


def clear(git_dir: Path, force_id: str | None = None) -> Holder | None:
    """Remove the lock of a run that is gone, or, with its lock id, of any run; returns who held it."""
    path = lock_path(git_dir)
    holder = read_holder(path)
    if holder is None:
        return None
    if holder.alive(dt.datetime.now(dt.UTC)) and force_id != holder.lock_id:
        hint = f"if it really is not running, 'entra-gitops unlock --force {holder.lock_id}'"
        if force_id is not None:
            hint = f"--force {force_id} is not this lock's id ({holder.lock_id})"
        raise LockedError(f"the lock's holder is still running: {holder.describe()}", hint=hint)
    _release(path, holder.lock_id)
    return holder
