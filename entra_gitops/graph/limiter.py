"""One throttle-aware gate for every Graph request: bounded concurrency, paced scopes, shared back-off."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

from entra_gitops.model.registry import ThrottleScope

# Conditional Access and named locations allow 1 request/s per tenant and send no Retry-After,
# so pacing below the limit beats discovering it through 429s.
DEFAULT_INTERVALS: Mapping[ThrottleScope, float] = {ThrottleScope.CONDITIONAL_ACCESS: 1.0}


class Limiter:
    """Requests wait here: for a free slot, for their scope's pace, and for any back-off a 429 set."""

    def __init__(
        self,
        concurrency: int = 8,
        intervals: Mapping[ThrottleScope, float] = DEFAULT_INTERVALS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.concurrency = concurrency
        self.intervals = dict(intervals)
        self.clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        # A paced scope sends one request at a time anyway: its own slot, so it never queues behind a burst of
        # other requests and loses its turn.
        self._paced = {scope: asyncio.Semaphore(1) for scope, seconds in self.intervals.items() if seconds}
        self._paused_until: dict[ThrottleScope, float] = {}
        self._next_start: dict[ThrottleScope, float] = {}
        self.on_wait: Callable[[float, str], None] | None = None  # told of each paced or backed-off wait, and why

    def _delay(self, scope: ThrottleScope) -> float:
        now = self.clock()
        return max(self._paused_until.get(scope, 0.0), self._next_start.get(scope, 0.0)) - now

    async def _wait(self, scope: ThrottleScope) -> None:
        while (delay := self._delay(scope)) > 0:
            if self.on_wait is not None:
                paused = self._paused_until.get(scope, 0.0) >= self._next_start.get(scope, 0.0)
                interval = self.intervals.get(scope)
                pace = f"the {scope.value} pace, {1 / interval:g} request/s" if interval else "the pace"
                self.on_wait(delay, f"Graph's back-off ({scope.value})" if paused else pace)
            await asyncio.sleep(delay)

    @asynccontextmanager
    async def slot(self, scope: ThrottleScope) -> AsyncIterator[None]:
        """Hold one of the concurrent slots for a request in `scope`, once that scope may send."""
        await self._wait(scope)
        async with self._paced.get(scope, self._slots):
            # Another request may have been throttled or paced while this one waited for a slot.
            await self._wait(scope)
            interval = self.intervals.get(scope)
            if interval:
                self._next_start[scope] = self.clock() + interval
            try:
                yield
            finally:
                if interval:
                    # Also counted from the answer: the request reached Graph before it, so the next one arrives
                    # a whole interval later even when this one left late (a busy event loop) or the network
                    # jittered; one 429 here costs a second.
                    self._next_start[scope] = max(self._next_start[scope], self.clock() + interval)

    def back_off(self, scope: ThrottleScope, seconds: float) -> None:
        """Pause every request of `scope` for `seconds` (Graph said 429)."""
        self._paused_until[scope] = max(self._paused_until.get(scope, 0.0), self.clock() + seconds)


def backoff_delay(attempt: int, base: float, cap: float = 60.0, rng: random.Random | None = None) -> float:
    """Exponential back-off with jitter for answers that carry no Retry-After."""
    spread = (rng or random).uniform(0.5, 1.0)
    return min(cap, base * (2**attempt)) * spread
