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

from entra_gitops.emulator.auth import unauthenticated
from entra_gitops.emulator.protocol import GraphFault, not_found
from entra_gitops.model.errors import ConfigError
from entra_gitops.model.registry import ThrottleScope

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
    """One injected fault: which requests it hits, at most one action (status or paging fault) and a delay."""

    status: int | None = None
    every: int = 1
    first: int | None = None
    probability: float | None = None
    retry_after: int | None = None
    path: str = "*"
    method: str | None = None
    after_commit: bool = False
    delay: float = 0.0
    truncate: int = 0
    repeat_skiptoken: bool = False
    expire_token: bool = False

    def applies(self, *, paged: bool, skiptoken: bool, token: bool) -> bool:
        """Whether this rule can act on a request: paging faults need a page, a $skiptoken or a token to act on."""
        if self.truncate:
            return paged
        if self.repeat_skiptoken:
            return skiptoken
        if self.expire_token:
            return token
        return True


# Graph's error code and message for each status a rule may answer with (concepts/errors.md names the statuses;
# the codes are the ones Graph's directory endpoints send); `Faults.fault` adds what 401, 404 and delta's 410 carry.
_FAULT_CODES = {
    400: ("Request_BadRequest", "One or more properties contains invalid values."),
    401: ("InvalidAuthenticationToken", "Access token has expired or is not yet valid."),
    403: ("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
    404: (
        "Request_ResourceNotFound",
        "Resource does not exist or one of its queried reference-property objects are not present.",
    ),
    409: ("Conflict", "The request conflicts with the current state of the resource."),
    410: ("Gone", "The requested resource is no longer available."),
    412: (
        "PreconditionFailed",
        "The precondition given in one or more of the request-header fields evaluated to false.",
    ),
    429: ("TooManyRequests", "Too many requests, please retry after some time."),
    500: ("InternalServerError", "An internal server error occurred."),
    502: ("BadGateway", "Bad gateway."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable."),
    504: ("GatewayTimeout", "The operation timed out."),
}
_METHODS = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"})
_ACTIONS = "STATUS, delay=SECONDS, truncate=N, repeat-skiptoken or expire-token"

FAULTS_HELP = (
    "RULE[;RULE...] where RULE is ACTION[,delay=SECONDS][,every=N][,first=N][,p=0.1][,path=GLOB][,method=M]; "
    "ACTION is STATUS[,retry-after=N|none][,after-commit], truncate=N, repeat-skiptoken or expire-token, or none "
    f"when the rule has a delay; STATUS is one of {', '.join(map(str, _FAULT_CODES))}"
)


def sync_state_not_found(location: str) -> GraphFault:
    """Graph's answer to a delta token it no longer holds: 410 with the initial query in `Location`."""
    # delta-query-overview.md: an expired token is "a 40X-series error with error codes such as
    # syncStateNotFound", and a reset is 410 with a Location header holding the initial query.
    return GraphFault(
        410,
        "syncStateNotFound",
        "The sync state generation is not found or has expired. Restart synchronization.",
        {"Location": location},
    )


def parse_faults(spec: str) -> tuple[FaultRule, ...]:
    """Parse a `--faults` spec; a malformed one is a ConfigError naming the rule and the bad part."""
    return tuple(_parse_rule(text) for text in filter(None, (part.strip() for part in spec.split(";"))))


def _parse_rule(text: str) -> FaultRule:
    """One rule: parts in any order, at most one action besides `delay`, and at least one of the two."""

    def refuse(problem: str) -> ConfigError:
        return ConfigError(f"--faults: {problem}, in rule {text!r}", hint=FAULTS_HELP)

    values: dict[str, object] = {}
    actions: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        name, equals, value = part.partition("=")
        if not part:
            raise refuse("an empty part")
        if part.isdigit():
            if int(part) not in _FAULT_CODES:
                raise refuse(
                    f"status {part} is not one the emulator answers with ({', '.join(map(str, _FAULT_CODES))})"
                )
            key, parsed = "status", int(part)
        elif name in _OPTIONS:
            key, read = _OPTIONS[name]
            try:
                parsed = read(value) if equals else None
            except ValueError:
                parsed = None
            if parsed is None and not (name == "retry-after" and value == "none"):
                raise refuse(f"bad value in {part!r}")
        elif name in _FLAGS and not equals:
            key, parsed = _FLAGS[name], True
        elif name in _FLAGS:
            raise refuse(f"{name!r} takes no value, not {part!r}")
        else:
            raise refuse(f"unknown part {part!r}")
        if key in values:
            raise refuse(f"{part!r} repeats what the rule already says")
        values[key] = parsed
        if key in ("status", "truncate", "repeat_skiptoken", "expire_token"):
            actions.append(part)
    if len(actions) > 1:
        raise refuse(f"{actions[0]!r} and {actions[1]!r} are two actions: give each its own rule")
    if not actions and "delay" not in values:
        raise refuse(f"no action: give one of {_ACTIONS}")
    if "status" not in values:
        for option, key in (("retry-after", "retry_after"), ("after-commit", "after_commit")):
            if key in values:
                raise refuse(f"{option!r} needs a STATUS to answer with")
    elif "retry_after" not in values:
        # Graph's 429 always names a wait; other statuses carry one only when the rule says so.
        values["retry_after"] = 1 if values["status"] == 429 else None
    return FaultRule(**values)  # type: ignore[arg-type]


def _number(text: str, kind: type[int] | type[float], *, minimum: float, maximum: float | None = None) -> float:
    """A finite number within bounds, or ValueError."""
    number = kind(text)
    if not math.isfinite(number) or number < minimum or (maximum is not None and number > maximum):
        raise ValueError(text)
    return number


_OPTIONS: dict[str, tuple[str, Callable[[str], object]]] = {
    "every": ("every", lambda v: _number(v, int, minimum=1)),
    "first": ("first", lambda v: _number(v, int, minimum=0)),
    "p": ("probability", lambda v: _number(v, float, minimum=0.0, maximum=1.0)),
    "retry-after": ("retry_after", lambda v: None if v == "none" else _number(v, int, minimum=0)),
    "delay": ("delay", lambda v: _number(v, float, minimum=0.0)),
    "truncate": ("truncate", lambda v: _number(v, int, minimum=1)),
    "path": ("path", lambda v: v or None),
    "method": ("method", lambda v: v.upper() if v.upper() in _METHODS else None),
}
_FLAGS = {"after-commit": "after_commit", "repeat-skiptoken": "repeat_skiptoken", "expire-token": "expire_token"}


class Faults:
    """Decides, per request, which injected fault rule (if any) acts on it."""

    def __init__(self, rules: tuple[FaultRule, ...], seed: int = 0) -> None:
        self.rules = rules
        self.seen = [0] * len(rules)
        self.random = random.Random(seed)
        self.lock = threading.Lock()

    def pick(
        self, method: str, path: str, *, paged: bool = False, skiptoken: bool = False, token: bool = False
    ) -> FaultRule | None:
        """The first rule that fires for this request; a rule counts only requests it could act on."""
        with self.lock:
            for index, rule in enumerate(self.rules):
                if rule.method and rule.method != method:
                    continue
                if not fnmatch.fnmatchcase(path, rule.path):
                    continue
                # `first=2` on a paging fault means two pages it acted on, not two requests of any kind.
                if not rule.applies(paged=paged, skiptoken=skiptoken, token=token):
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
    def fault(rule: FaultRule, path: str = "", delta_location: str | None = None) -> GraphFault:
        """The error a status rule answers with; a 410 on a delta path is Graph's syncStateNotFound."""
        assert rule.status is not None
        if rule.status == 410 and delta_location is not None:
            fault = sync_state_not_found(delta_location)
        elif rule.status == 401:
            fault = unauthenticated(_FAULT_CODES[401][1])
        elif rule.status == 404:
            fault = not_found(path.rsplit("/", 1)[-1] or path)
        else:
            fault = GraphFault(rule.status, *_FAULT_CODES[rule.status])
        if rule.retry_after is not None:
            fault = GraphFault(
                fault.status, fault.code, fault.message, {**fault.headers, "Retry-After": str(rule.retry_after)}
            )
        return fault
