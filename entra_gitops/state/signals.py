"""Interrupts: SIGTERM unwinds like Ctrl+C, and neither lands while the repository is being moved."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM (a CI cancel, `kill`): unwinds like Ctrl+C, so locks are released and journals closed."""


_received: list[int] = []


def _terminate(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    on_interrupt = signal.getsignal(signal.SIGINT)
    if callable(on_interrupt) and on_interrupt is not signal.default_int_handler:
        # Inside asyncio.run, whose own SIGINT handler cancels the main task: an exception raised at an
        # arbitrary point of the event loop can land between creating an async context manager's exit
        # and awaiting it, and be lost; a cancellation arrives at an await, where every library expects
        # it. asyncio.run then raises KeyboardInterrupt, which terminated() tells apart.
        on_interrupt(signal.SIGINT, frame)
        return
    raise Terminated()


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, except that a SIGTERM whose cancellation some library swallowed still stops the run."""
    result = asyncio.run(main)
    if signal.SIGTERM in _received:
        raise Terminated()
    return result


def terminated(stop: BaseException) -> bool:
    """Whether an interrupt that stopped the run came from SIGTERM rather than Ctrl+C."""
    return isinstance(stop, Terminated) or signal.SIGTERM in _received


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
