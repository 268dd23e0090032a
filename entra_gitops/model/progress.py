"""What a long run tells as it goes, as values: the stages report, only the command line shows (nothing here prints).

A run is a sequence of phases (`read`, `render`, `apply`, ...), each with its items done out of a total
when one is known. A read also reports per label (a type, `user (deleted)`, `group.members`): how many
more were read, and a label's total when Graph gives one or the read of it is done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar, runtime_checkable

T = TypeVar("T")

Reads = Callable[[str, int], None]
"""The plainest progress: called with a label and how many more of it were read."""

Advance = Callable[[int], None]
"""Told how many more items of a phase are done."""


@runtime_checkable
class Progress(Protocol):
    """A run's progress, told as values to whoever shows it."""

    wants_totals: bool  # a read asks Graph for each countable type's total ($count) only when this is true

    def __call__(self, label: str, count: int) -> None:
        """`count` more objects (or links) of `label` were read; negative when a read starts over."""

    def total(self, label: str, total: int) -> None:
        """`label` has `total` objects: Graph counted them, or the read of `label` is done."""

    def phase(self, name: str, total: int | None = None, unit: str = "", done: int = 0) -> None:
        """A phase of the run begins, with how many `unit`s it has when that is known, `done` of them already."""

    def advance(self, count: int = 1, current: str | None = None) -> None:
        """`count` more items of the phase are done; `current`, when given, is what the phase works on now."""

    def waiting(self, seconds: float, reason: str) -> None:
        """The run waits `seconds` for `reason` (the write pace, Conditional Access's request a second)."""


class Silent:
    """The progress nobody watches: every report is dropped."""

    wants_totals = False

    def __call__(self, label: str, count: int) -> None:
        pass

    def total(self, label: str, total: int) -> None:
        pass

    def phase(self, name: str, total: int | None = None, unit: str = "", done: int = 0) -> None:
        pass

    def advance(self, count: int = 1, current: str | None = None) -> None:
        pass

    def waiting(self, seconds: float, reason: str) -> None:
        pass


class _ReadsOnly(Silent):
    """A plain read callback as a Progress: reads reach it, everything else is dropped."""

    def __init__(self, reads: Reads) -> None:
        self.reads = reads

    def __call__(self, label: str, count: int) -> None:
        self.reads(label, count)


SILENT = Silent()


def watched(progress: Progress | Reads | None) -> Progress:
    """A full Progress from what a caller passed: nothing, a plain read callback, or a display."""
    if progress is None:
        return SILENT
    if isinstance(progress, Progress):
        return progress
    return _ReadsOnly(progress)


def counted(items: Iterable[T], advance: Advance | None, every: int = 1000) -> Iterator[T]:
    """`items` unchanged, telling `advance` after every `every` of them are done, and the rest at the end."""
    if advance is None:
        yield from items
        return
    pending = 0
    for item in items:
        yield item
        pending += 1
        if pending == every:
            advance(pending)
            pending = 0
    if pending:
        advance(pending)
