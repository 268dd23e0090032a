"""The apply journal: each write's intent and result, appended and flushed before the next write is sent."""

from __future__ import annotations

import datetime as dt
import enum
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entra_gitops.model.ids import utc_text
from entra_gitops.recovery.plan import Plan
from entra_gitops.recovery.steps import Write


class JournalEvent(enum.Enum):
    """What the journal knows of one write: sent (in doubt until a result follows), done, confirmed, failed."""

    SENT = "sent"
    DONE = "done"
    CONFIRMED = "confirmed"  # took effect, seen in the tenant, although its answer was lost or refused
    FAILED = "failed"


FINISHED = frozenset({JournalEvent.DONE, JournalEvent.CONFIRMED})


@dataclass(frozen=True)
class Entry:
    """One journal line as read back: which write (None when the line names none), what happened, and when."""

    write: int | None
    event: JournalEvent
    time: str | None


def now_text() -> str:
    """The journal's and history's clock, in UTC."""
    # Milliseconds: a quick rerun of the same plan must not get the same history id (and file) as the first run.
    return utc_text(dt.datetime.now(dt.UTC), "milliseconds")


def journal_path(git_dir: Path, plan: Plan) -> Path:
    """Where a plan's journal lives: inside .git, named by the plan's checksum, so each plan has its own."""
    return git_dir / "entra-gitops" / "journal" / f"{plan.checksum.removeprefix('sha256:')}.jsonl"


def _record(line: str) -> dict[str, Any] | None:
    """One line as written, or None when it cannot be read or names an event this tool never writes."""
    try:
        record = json.loads(line)
        JournalEvent(record["event"])
    except (ValueError, KeyError, TypeError):
        return None
    return record


def _records(text: str) -> list[dict[str, Any]]:
    # A line cut short by a crash is left out, so its write stays in doubt.
    return [record for record in map(_record, text.splitlines()) if record is not None]


def _entry(record: Mapping[str, Any]) -> Entry:
    write, time = record.get("write"), record.get("time")
    return Entry(
        write if isinstance(write, int) else None,
        JournalEvent(record["event"]),
        time if isinstance(time, str) else None,
    )


def replay(text: str) -> tuple[Entry, ...]:
    """The entries of a journal's text; a line cut short by a crash is left out, so its write stays in doubt."""
    return tuple(map(_entry, _records(text)))


def last_events(entries: Iterable[Entry]) -> dict[int, JournalEvent]:
    """Each write's latest event: what the journal knows of it now."""
    return {e.write: e.event for e in entries if e.write is not None}


def span(entries: Iterable[Entry]) -> tuple[str, str]:
    """The times of the first and the last entry, as a run's start and end."""
    times = [e.time for e in entries if e.time is not None]
    return (min(times), max(times)) if times else ("", "")


class Journal:
    """One plan's journal file, read back when opened and appended to as the apply writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        self.entries: list[dict[str, Any]] = _records(text)  # each line as written, details and all
        self.handle: Any = None
        self.cut = bool(text) and not text.endswith("\n")

    def record(self, index: int, event: JournalEvent, write: Write, **details: Any) -> None:
        entry = {
            "write": index,
            "event": event.value,
            "time": now_text(),
            "method": write.method,
            "path": write.path,
            **details,
        }
        self.entries.append(entry)
        if self.handle is None:
            # Opened at the first write's intent: a run refused before writing leaves no journal behind.
            self.handle = self.path.open("a", encoding="utf-8")
            if self.cut:
                self.handle.write("\n")  # end the cut line, or the next entry would be lost with it
        self.handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def replayed(self) -> tuple[Entry, ...]:
        """The entries as typed values, oldest first."""
        return tuple(map(_entry, self.entries))

    def last_events(self) -> dict[int, JournalEvent]:
        return last_events(self.replayed())

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
