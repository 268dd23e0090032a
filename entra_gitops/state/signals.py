"""Interrupts: SIGTERM unwinds like Ctrl+C, and neither lands while the repository is being moved."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM (a CI cancel, `kill`): unwinds like Ctrl+C, so locks are released and journals closed."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def install() -> None:
    """Make SIGTERM unwind the way SIGINT does (the CLI's entry point calls this once)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block is done, then act on them: a move of refs and files is whole.

    git's children run in sessions of their own (gitstore), so the group's signal reaches only this
    process, which lets the move finish and then stops.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if received:
            raise Terminated() if signal.SIGTERM in received else KeyboardInterrupt()
