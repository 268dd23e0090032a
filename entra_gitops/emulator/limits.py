"""Graph's documented throttling limits and injectable faults, applied to each emulated request."""

from __future__ import annotations

import collections
import fnmatch
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from entra_gitops.emulator.protocol import GraphFault
from entra_gitops.errors import ConfigError
from entra_gitops.registry import ThrottleScope

WINDOW_SECONDS = 10.0
WRITE_WINDOW_SECONDS = 150.0
WRITES_PER_WINDOW = 3000
CA_REQUESTS_PER_SECOND = 1


def resource_units_per_window(user_count: int) -> int:
    """The identity budget per app per tenant per 10 s, by tenant size (Graph's documented tiers)."""
    if user_count < 50:
        return 3500
    if user_count <= 500:
        return 5000
    return 8000


def request_cost(base_cost: int, *, selected: bool, expanded: bool, top: int | None) -> int:
    """Graph's resource-unit cost of one request: $select -1, $expand +1, $top under 20 -1, never below 1."""
    cost = base_cost - (1 if selected else 0) + (1 if expanded else 0) - (1 if top is not None and top < 20 else 0)
    return max(1, cost)


class _Window:
    """A sliding window of (time, weight) that answers how long until `weight` more fits."""

    def __init__(self, limit: float, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.events: collections.deque[tuple[float, int]] = collections.deque()
        self.used = 0

    def _expire(self, now: float) -> None:
        while self.events and self.events[0][0] <= now - self.seconds:
            self.used -= self.events.popleft()[1]

    def wait_for(self, weight: int, now: float) -> float:
        self._expire(now)
        if self.used + weight <= self.limit:
            return 0.0
        needed = self.used + weight - self.limit
        for moment, used in self.events:
            needed -= used
            if needed <= 0:
                return moment + self.seconds - now
        return self.seconds

    def add(self, weight: int, now: float) -> None:
        self.events.append((now, weight))
        self.used += weight

    def percentage(self) -> float:
        return 100.0 * self.used / self.limit if self.limit else 0.0


@dataclass(frozen=True)
class Charge:
    """What one request cost and the headers Graph sends about it."""

    resource_units: int
    headers: dict[str, str]


class Throttle:
    """Enforces the identity resource-unit budget, the write budget and Conditional Access's 1 request/s.

    `scale` multiplies every limit alike, so a benchmark can run the same shape of limits faster or slower.
    """

    def __init__(self, user_count: int, scale: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.units = _Window(resource_units_per_window(user_count) * scale, WINDOW_SECONDS)
        self.writes = _Window(WRITES_PER_WINDOW * scale, WRITE_WINDOW_SECONDS)
        # One request per 1/(rate*scale) s: a 1 s window holding rate*scale < 1 requests would admit none.
        self.conditional_access = _Window(1, 1.0 / (CA_REQUESTS_PER_SECOND * scale))
        self.lock = threading.Lock()

    def charge(self, scope: ThrottleScope, cost: int, is_write: bool) -> Charge:
        """Record one request or raise Graph's 429 when it does not fit."""
        with self.lock:
            now = self.clock()
            if scope is ThrottleScope.CONDITIONAL_ACCESS:
                if self.conditional_access.wait_for(1, now) > 0:
                    # Graph sends no Retry-After for this limit: clients must back off on their own.
                    raise GraphFault(429, "TooManyRequests", "Too many requests.", {"x-ms-throttle-scope": "Tenant"})
                self.conditional_access.add(1, now)
            wait = self.units.wait_for(cost, now)
            if is_write:
                wait = max(wait, self.writes.wait_for(1, now))
            if wait > 0:
                raise GraphFault(
                    429,
                    "TooManyRequests",
                    "Too many requests, please retry after some time.",
                    {
                        "Retry-After": str(max(1, math.ceil(wait))),
                        "x-ms-throttle-scope": "Application_Tenant",
                        "x-ms-throttle-information": "ResourceUnitLimitExceeded"
                        if not is_write
                        else "WriteLimitExceeded",
                        "x-ms-resource-unit": str(cost),
                    },
                )
            self.units.add(cost, now)
            if is_write:
                self.writes.add(1, now)
            headers = {"x-ms-resource-unit": str(cost)}
            if self.units.percentage() >= 80:
                headers["x-ms-throttle-limit-percentage"] = f"{self.units.percentage() / 100:.1f}"
            return Charge(cost, headers)


@dataclass(frozen=True)
class FaultRule:
    """One injected fault: which requests it hits and what it answers."""

    status: int
    every: int = 1
    first: int | None = None
    probability: float | None = None
    retry_after: int | None = None
    path: str = "*"
    method: str | None = None
    after_commit: bool = False


_FAULT_CODES = {
    429: ("TooManyRequests", "Too many requests, please retry after some time."),
    500: ("InternalServerError", "An internal server error occurred."),
    502: ("BadGateway", "Bad gateway."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable."),
    504: ("GatewayTimeout", "The operation timed out."),
}

FAULTS_HELP = (
    "RULE[;RULE...] where RULE is STATUS[,every=N][,first=N][,p=0.1][,retry-after=N|none]"
    "[,path=GLOB][,method=M][,after-commit]; STATUS is 429, 500, 502, 503 or 504"
)


def parse_faults(spec: str) -> tuple[FaultRule, ...]:
    """Parse a `--faults` spec; a malformed one is a ConfigError naming the bad part."""
    rules = []
    for text in filter(None, (part.strip() for part in spec.split(";"))):
        head, *options = [p.strip() for p in text.split(",")]
        try:
            status = int(head)
        except ValueError:
            raise ConfigError(f"--faults: {head!r} is not a status code", hint=FAULTS_HELP) from None
        if status not in _FAULT_CODES:
            raise ConfigError(f"--faults: status {status} is not one Graph throttles or fails with", hint=FAULTS_HELP)
        values: dict[str, object] = {"retry_after": 1 if status == 429 else None}
        for option in options:
            name, _, value = option.partition("=")
            try:
                if name in ("every", "first"):
                    values[name] = int(value)
                elif name == "p":
                    values["probability"] = float(value)
                elif name == "retry-after":
                    values["retry_after"] = None if value == "none" else int(value)
                elif name in ("path", "method"):
                    values[name] = value if name == "path" else value.upper()
                elif name == "after-commit" and not value:
                    values["after_commit"] = True
                else:
                    raise ValueError
            except ValueError:
                raise ConfigError(f"--faults: bad option {option!r} in {text!r}", hint=FAULTS_HELP) from None
        rules.append(FaultRule(status=status, **values))  # type: ignore[arg-type]
    return tuple(rules)


class Faults:
    """Decides, per request, whether an injected fault answers instead of (or after) the handler."""

    def __init__(self, rules: tuple[FaultRule, ...], seed: int = 0) -> None:
        self.rules = rules
        self.seen = [0] * len(rules)
        self.random = random.Random(seed)
        self.lock = threading.Lock()

    def pick(self, method: str, path: str) -> FaultRule | None:
        with self.lock:
            for index, rule in enumerate(self.rules):
                if rule.method and rule.method != method:
                    continue
                if not fnmatch.fnmatchcase(path, rule.path):
                    continue
                self.seen[index] += 1
                count = self.seen[index]
                if rule.first is not None and count > rule.first:
                    continue
                if count % rule.every:
                    continue
                if rule.probability is not None and self.random.random() >= rule.probability:
                    continue
                return rule
        return None

    @staticmethod
    def fault(rule: FaultRule) -> GraphFault:
        code, message = _FAULT_CODES[rule.status]
        headers = {"Retry-After": str(rule.retry_after)} if rule.retry_after is not None else {}
        return GraphFault(rule.status, code, message, headers)
