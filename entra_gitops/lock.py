"""One snapshot or recovery at a time per repository: an exclusive lock file inside .git."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from entra_gitops.errors import EntraGitopsError

LOCK_NAME = "entra-gitops.lock"


class LockedError(EntraGitopsError):
    """Another snapshot or recovery holds the repository's lock."""


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


def describe_holder(path: Path) -> str:
    """Who holds the lock and since when, in words (and whether that process is gone)."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "an unreadable lock file"
    text = f"{holder.get('command')} by {holder.get('user')} on {holder.get('host')} (pid {holder.get('pid')}) since {holder.get('since')}"
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int) and not _alive(holder["pid"]):
        text += "; that process is gone"
    return text


@contextmanager
def exclusive(git_dir: Path, command: str) -> Iterator[None]:
    """Hold the repository's lock for the duration; a second holder is refused, saying who and since when."""
    path = lock_path(git_dir)
    record = {
        "command": command,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "user": getpass.getuser(),
        "since": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    }
    try:
        handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise LockedError(
            f"another entra-gitops run holds this repository: {describe_holder(path)}",
            hint="wait for it; if that process is gone, clear the lock with 'entra-gitops unlock'",
        ) from None
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        json.dump(record, file)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def clear(git_dir: Path) -> str | None:
    """Remove a lock left behind; returns who held it, or None when there was none."""
    path = lock_path(git_dir)
    if not path.exists():
        return None
    holder = describe_holder(path)
    path.unlink()
    return holder
