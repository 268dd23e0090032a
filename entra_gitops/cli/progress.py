"""The progress display of a long run, on stderr: live on a terminal (rich), a plain line every 10 s in a log.

The stages tell their progress as values (model.progress.Progress); this is the one place that shows it.
A terminal gets a live display, cleared when the run ends: the phase with its items done out of the total,
the rate and the time so far, and during a read a row per type. A log (stderr a file or a pipe, as in
CI) gets one plain line every ENTRA_GITOPS_PROGRESS_INTERVAL seconds (10) saying the same, with no escape
codes. Where stderr is neither (click's CliRunner), nothing is shown. ENTRA_GITOPS_PROGRESS=terminal, log or
off overrides the choice. stdout is never touched, so JSON output stays parseable.
"""

from __future__ import annotations

import enum
import io
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any

import click
from rich.console import Console, RenderableType
from rich.progress import BarColumn, ProgressColumn, Task, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bars
from rich.text import Text

from entra_gitops.cli.output import use_colour
from entra_gitops.model.errors import ConfigError
from entra_gitops.model.progress import SILENT, Progress
from entra_gitops.model.textsafe import printable

ENV_MODE = "ENTRA_GITOPS_PROGRESS"
ENV_INTERVAL = "ENTRA_GITOPS_PROGRESS_INTERVAL"
LOG_INTERVAL = 10.0  # seconds between two lines in a log
SHOW_AFTER = 0.5  # a terminal sees nothing of a run quicker than this
WAIT_SHOWN = 1.0  # how long a wait stays on the display after it ended
LOG_ROWS = 6  # the rows a log line names (the ones still being read), before "and N more"


class Mode(enum.Enum):
    """Where the progress goes."""

    TERMINAL = "terminal"
    LOG = "log"
    OFF = "off"


def chosen_mode(stream: IO[str]) -> Mode:
    """The mode for `stream`: ENTRA_GITOPS_PROGRESS when set, else a terminal, a log (file or pipe), or off."""
    setting = os.environ.get(ENV_MODE, "").strip().lower() or "auto"
    if setting != "auto":
        try:
            return Mode(setting)
        except ValueError:
            raise ConfigError(
                f"{ENV_MODE}={setting!r} is not a progress mode", hint="use auto, terminal, log or off"
            ) from None
    if _isatty(stream):
        return Mode.TERMINAL
    try:
        stream.fileno()
    except (OSError, ValueError, io.UnsupportedOperation, AttributeError):
        return Mode.OFF  # a stream in memory (click's CliRunner, a test capturing output): nobody to tell
    return Mode.LOG


def log_interval() -> float:
    """Seconds between two log lines: ENTRA_GITOPS_PROGRESS_INTERVAL, else 10."""
    text = os.environ.get(ENV_INTERVAL, "").strip()
    try:
        seconds = float(text) if text else LOG_INTERVAL
    except ValueError:
        seconds = -1.0
    if not 0.05 <= seconds <= 3600:
        raise ConfigError(f"{ENV_INTERVAL}={text!r} is not a number of seconds from 0.05 to 3600", hint="default 10")
    return seconds


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError, AttributeError):
        return False


def _count(task: Task) -> str:
    """`12/30 files`, `1,234 objects, 56 links`; nothing for a phase that counts nothing (only its time shows)."""
    if not task.fields.get("unit") and task.total is None:
        return ""
    unit = f" {task.fields['unit']}" if task.fields.get("unit") else ""
    done = f"{task.completed:,.0f}" if task.total is None else f"{task.completed:,.0f}/{task.total:,.0f}"
    links = task.fields.get("links")
    return f"{done}{unit}" + (f", {links:,} links" if links else "")


def _rate(task: Task) -> str:
    """Items a second since the task began, not counting what an earlier run did: steadier than the last burst."""
    elapsed = task.elapsed or 0.0
    if elapsed < 0.5:
        return ""
    per_second = (task.completed - task.fields.get("initial", 0)) / elapsed
    if per_second <= 0:
        return ""
    return f"{per_second:,.0f}/s" if per_second >= 10 else f"{per_second:.1f}/s"


def _seconds(elapsed: float) -> str:
    """Time so far, for a log: `4.2 s`, `38 s`, `2 min 05 s`."""
    if elapsed < 10:
        return f"{elapsed:.1f} s"
    if elapsed < 60:
        return f"{elapsed:.0f} s"
    minutes, seconds = divmod(int(elapsed), 60)
    return f"{minutes} min {seconds:02d} s"


def _notes(task: Task, now: float) -> list[str]:
    """What the phase works on now, and the wait it is in (until a moment after it ends)."""
    notes = [task.fields["current"]] if task.fields.get("current") else []
    reason, ends = task.fields.get("wait") or ("", 0.0)
    if reason and now < ends + WAIT_SHOWN:
        left = ends - now
        notes.append(f"waiting {left:.0f} s on {reason}" if left >= 2 else f"waiting on {reason}")
    return notes


class _CountColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(_count(task))


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(_rate(task))


class _Bars(Bars):
    """rich's progress display, with the phase's notes (the step at hand, the wait) on lines below it."""

    header: TaskID | None = None

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        header = next((task for task in self.tasks if task.id == self.header), None)
        for note in _notes(header, time.monotonic()) if header is not None else ():
            yield Text(f"  {note}", overflow="fold")


class Display:
    """One run's progress on stderr, as a terminal's live display or a log's periodic lines."""

    wants_totals = True

    def __init__(self, mode: Mode, stream: IO[str], interval: float = LOG_INTERVAL) -> None:
        self.mode = mode
        self.interval = interval
        # Colour as everything else on stderr has it: never after --no-color or NO_COLOR.
        console = Console(
            file=stream, force_terminal=mode is Mode.TERMINAL, no_color=not use_colour(err=True), highlight=False
        )
        self.bars = _Bars(
            TextColumn("{task.description}", markup=False),
            BarColumn(bar_width=24),
            _CountColumn(),
            _RateColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,  # the command's own output follows on a clean terminal
            redirect_stdout=False,  # stdout is the command's: JSON stays whole
            redirect_stderr=True,  # warnings print above the display instead of through it
            refresh_per_second=8,
            disable=mode is not Mode.TERMINAL,  # a log keeps the tasks, and says them in lines of its own
        )
        self.lock = threading.RLock()
        self.stopped = threading.Event()
        self.header: TaskID | None = None
        self.rows: dict[str, TaskID] = {}
        self.done = 0  # rows whose read is done
        self.links = 0  # links read in this phase (the header counts objects)
        self.worker: threading.Thread | None = None

    # -- model.progress.Progress ----------------------------------------------------------------

    def __call__(self, label: str, count: int) -> None:
        with self.lock:
            if self.header is None:
                self.phase("read", unit="objects")
            row = self.rows.get(label)
            if row is None:
                unit = "links" if "." in label else "objects"
                row = self.rows[label] = self.bars.add_task(f"  {printable(label)}", total=None, unit=unit)
                self._tally()
            self.bars.update(row, advance=count)
            assert self.header is not None
            if "." in label:
                self.links += count
                self.bars.update(self.header, links=self.links)
            else:
                self.bars.update(self.header, advance=count)

    def _tally(self) -> None:
        """The header of a read says how many of its rows are done (those rows leave the display)."""
        assert self.header is not None
        self.bars.update(self.header, current=f"{self.done} of {len(self.rows)} done")

    def total(self, label: str, total: int) -> None:
        with self.lock:
            if label not in self.rows:
                self(label, 0)
            row = self.rows[label]
            self.bars.update(row, total=total)
            if next(task for task in self.bars.tasks if task.id == row).finished:
                # A row whose read is done gives its place to the ones still reading; the header counts it.
                self.bars.update(row, visible=False)
                self.done += 1
                self._tally()

    def phase(self, name: str, total: int | None = None, unit: str = "", done: int = 0) -> None:
        with self.lock:
            for task in self.bars.task_ids:
                self.bars.remove_task(task)
            self.rows = {}
            self.done = self.links = 0
            self.header = self.bars.header = self.bars.add_task(
                printable(name), total=total, completed=done, unit=unit, initial=done
            )

    def advance(self, count: int = 1, current: str | None = None) -> None:
        with self.lock:
            if self.header is None:
                self.phase("work")
            assert self.header is not None
            fields: dict[str, Any] = {"current": printable(current)} if current else {}
            self.bars.update(self.header, advance=count, **fields)

    def waiting(self, seconds: float, reason: str) -> None:
        with self.lock:
            if self.header is not None:
                self.bars.update(self.header, wait=(printable(reason), time.monotonic() + seconds))

    # -- showing --------------------------------------------------------------------------------

    def line(self) -> str | None:
        """The progress as one plain line, for a log; None before anything began."""
        with self.lock:
            tasks = {task.id: task for task in self.bars.tasks}
            header = tasks.get(self.header) if self.header is not None else None
            if header is None:
                return None
            rows = [tasks[r] for r in self.rows.values() if r in tasks]
        rate = _rate(header)
        counted = f" {_count(header)}," if _count(header) else ""
        text = f"progress: {header.description}{counted} {rate + ', ' if rate else ''}{_seconds(header.elapsed or 0.0)}"
        busy = [r for r in rows if not r.finished]
        if busy:
            named = [f"{r.description.strip()} {_count(r)}" for r in busy[:LOG_ROWS]]
            if len(busy) > LOG_ROWS:
                named.append(f"{len(busy) - LOG_ROWS} more")
            text += ": " + ", ".join(named)
        return "; ".join([text, *_notes(header, time.monotonic())])

    def _log(self) -> None:
        while not self.stopped.wait(self.interval):
            text = self.line()
            if text is not None:
                click.echo(text, err=True)

    def _show(self) -> None:
        if not self.stopped.wait(SHOW_AFTER):
            with self.lock:
                if not self.stopped.is_set():
                    self.bars.start()

    def start(self) -> None:
        self.worker = threading.Thread(
            target=self._show if self.mode is Mode.TERMINAL else self._log, name="progress", daemon=True
        )
        self.worker.start()

    def stop(self) -> None:
        with self.lock:
            self.stopped.set()
            self.bars.stop()  # clears the display on a terminal; nothing when it never started
        if self.worker is not None and self.worker is not threading.current_thread():
            self.worker.join(timeout=1)


@contextmanager
def progress_display(stream: IO[str] | None = None) -> Iterator[Progress]:
    """The progress of the run in the block, shown on `stream` (stderr) as its mode says; gone afterwards."""
    stream = stream or sys.stderr
    mode = chosen_mode(stream)
    if mode is Mode.OFF:
        yield SILENT
        return
    display = Display(mode, stream, log_interval() if mode is Mode.LOG else LOG_INTERVAL)
    display.start()
    try:
        yield display
    finally:
        display.stop()
