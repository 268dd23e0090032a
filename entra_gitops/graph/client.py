"""The Graph edge: msgraph-sdk's request adapter with azure-identity, raw JSON pages, retries, $batch."""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit

import httpx
from azure.core.exceptions import AzureError
from kiota_abstractions.method import Method
from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from kiota_http.middleware.options import ResponseHandlerOption, RetryHandlerOption
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph_core import GraphClientFactory

from entra_gitops.graph.auth import AuthSettings, sign_in, sign_in_failure, token_scopes
from entra_gitops.graph.limiter import DEFAULT_INTERVALS, Limiter, backoff_delay
from entra_gitops.model.errors import ConfigError, GraphError
from entra_gitops.model.reads import GraphStats
from entra_gitops.model.registry import ThrottleScope

DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
ENV_CA_PACE = "ENTRA_GITOPS_CA_PACE_SECONDS"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT = frozenset({"GET", "PUT", "PATCH", "DELETE"})
MAX_BATCH = 20
CONNECT_RETRIES = 2


class GraphResponse(NamedTuple):
    """A Graph answer as bytes, with what the tool reads from its headers."""

    status: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content) if self.content else None


class BatchRequest(NamedTuple):
    """One sub-request of a `$batch` call; `url` is relative to the Graph base URL."""

    id: str
    method: str
    url: str
    body: Any = None
    depends_on: tuple[str, ...] = ()
    headers: Mapping[str, str] | None = None


@dataclass
class _Counters:
    requests: int = 0
    resource_units: int = 0
    retries: int = 0
    throttled: int = 0
    bytes_read: int = 0

    def freeze(self) -> GraphStats:
        return GraphStats(self.requests, self.resource_units, self.retries, self.throttled, self.bytes_read)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry throttled or failed requests."""

    max_retries: int = 6
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    max_wait: float = 120.0  # a Retry-After longer than this fails the run instead of sleeping through it


NOTICE_WAIT = 5.0  # waits longer than this are said aloud


class PageTokenExpired(GraphError):
    """A paged read's next-page token stopped working before the read was done: the collection starts over."""


def check_graph_url(graph_url: str) -> str:
    """The Graph base URL without a trailing slash; anything that is not one is a ConfigError."""
    url = graph_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--graph-url {graph_url!r} is not an http(s) URL", hint=f"for example {DEFAULT_GRAPH_URL}")
    if not parts.path.endswith("/v1.0") or parts.query or parts.fragment:
        raise ConfigError(
            f"--graph-url {graph_url!r} must end in /v1.0 and carry no query",
            hint=f"for example {DEFAULT_GRAPH_URL} or http://127.0.0.1:8080/v1.0",
        )
    return url


def _units(status: int, headers: Mapping[str, str]) -> int:
    """The resource units Graph charged for one answer: its x-ms-resource-unit, which only a regular (not a
    throttled) response carries (throttling-limits.md); a `$batch` envelope has none, its requests do."""
    value = headers.get("x-ms-resource-unit", "") if status != 429 else ""
    return int(value) if value.isdigit() else 0


def _error_from(method: str, url: str, response: GraphResponse) -> GraphError:
    code, message = None, response.content[:200].decode("utf-8", "replace")
    try:
        error = (response.json() or {}).get("error") or {}
        code, message = error.get("code"), error.get("message", message)
    except (ValueError, AttributeError):
        pass
    path = urlsplit(url).path
    return GraphError(
        f"{method} {path} failed: {response.status} {code or ''}: {message}".replace(" :", ":"),
        status=response.status,
        code=code,
        request_id=response.headers.get("request-id"),
    )


@dataclass
class GraphClient:
    """Talks to one Graph endpoint through msgraph-sdk's adapter; only reads raw JSON, never typed models in bulk."""

    base_url: str
    adapter: GraphRequestAdapter
    limiter: Limiter
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    counters: _Counters = field(default_factory=_Counters)
    rng: random.Random = field(default_factory=random.Random)
    on_wait: Callable[[str], None] | None = None  # told of every long wait, to say it aloud

    @property
    def sdk(self) -> GraphServiceClient:
        """The typed SDK client on the same adapter, for single-object work where models help."""
        return GraphServiceClient(request_adapter=self.adapter)

    @property
    def stats(self) -> GraphStats:
        return self.counters.freeze()

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params, safe="$,()'@/:")
        return url

    async def _send_once(self, method: str, url: str, body: Any, headers: Mapping[str, str] | None) -> GraphResponse:
        info = RequestInformation()
        info.http_method = Method[method]
        info.url = url
        info.headers.add("Accept", "application/json")
        for name, value in (headers or {}).items():
            info.headers.add(name, value)
        if body is not None:
            info.set_stream_content(json.dumps(body).encode(), "application/json")
        # Retries happen here, under the shared limiter, so a 429 pauses every request of its scope.
        info.add_request_options(
            [ResponseHandlerOption(NativeResponseHandler()), RetryHandlerOption(should_retry=False)]
        )
        failure = None
        try:
            response: httpx.Response = await self.adapter.send_async(info, None, {})  # type: ignore[arg-type]
        except AzureError as err:
            # SignIn turns azure-identity's errors into AuthError already; this holds for any other credential.
            failure = sign_in_failure(None, f"the credential for {self.base_url}", err)
        if failure is not None:
            # Raised outside the except block: the original's frames hold the credential and its secret.
            raise failure
        content = response.content
        self.counters.bytes_read += len(content)
        return GraphResponse(response.status_code, {k.lower(): v for k, v in response.headers.items()}, content)

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        scope: ThrottleScope = ThrottleScope.IDENTITY,
        accept: frozenset[int] = frozenset(),
    ) -> GraphResponse:
        """Send one request, retrying throttling and transient failures; errors raise GraphError.

        Statuses in `accept` are returned instead of raised (a 404 that means "gone").
        """
        url = self.url(path, params)
        attempt = 0
        while True:
            async with self.limiter.slot(scope):
                self.counters.requests += 1
                try:
                    response = await self._send_once(method, url, body, headers)
                except httpx.TransportError as err:
                    # Nothing listening is rarely transient: give up soon instead of backing off for a minute.
                    limit = (
                        min(self.retry.max_retries, CONNECT_RETRIES)
                        if isinstance(err, httpx.ConnectError)
                        else self.retry.max_retries
                    )
                    if method not in IDEMPOTENT or attempt >= limit:
                        raise GraphError(
                            f"cannot reach Graph at {self.base_url}: {err or type(err).__name__}",
                            hint="check --graph-url and the network; a write without an answer may have been applied",
                        ) from None
                    response = None
            if response is not None:
                self.counters.resource_units += _units(response.status, response.headers)
                if response.status < 400 or response.status in accept:
                    return response
                retryable = response.status == 429 or (response.status in RETRY_STATUSES and method in IDEMPOTENT)
                if not retryable or attempt >= self.retry.max_retries:
                    raise _error_from(method, url, response)
            delay = self._delay(response, attempt, scope)
            self._check_wait(delay, f"{method} {urlsplit(url).path}", response)
            if response is not None and response.status == 429:
                self.counters.throttled += 1
                self.limiter.back_off(scope, delay)
            else:
                await asyncio.sleep(delay)
            self.counters.retries += 1
            attempt += 1

    def _check_wait(self, delay: float, what: str, response: GraphResponse | None) -> None:
        """Say a long wait aloud, and refuse one beyond max_wait rather than sleep through it in silence."""
        status = response.status if response is not None else "no answer"
        if delay > self.retry.max_wait:
            raise GraphError(
                f"Graph asked to wait {delay:.0f} s before retrying {what} ({status}), more than --max-wait "
                f"{self.retry.max_wait:.0f} s",
                status=response.status if response is not None else None,
                hint="run again later, or allow a longer wait with --max-wait",
            )
        if delay > NOTICE_WAIT and self.on_wait is not None:
            self.on_wait(f"waiting {delay:.0f} s before retrying {what}: Graph answered {status}")

    def _delay(self, response: GraphResponse | None, attempt: int, scope: ThrottleScope) -> float:
        retry_after = response.headers.get("retry-after") if response is not None else None
        if retry_after and retry_after.strip().isdigit():
            return float(retry_after)
        pace = self.limiter.intervals.get(scope)
        if pace and attempt == 0 and response is not None and response.status == 429:
            # A paced scope's limit is a request a second: one interval on, its window has room again (another
            # client's request took this one's turn), so a first retry need not wait the exponential back-off.
            return pace
        return backoff_delay(attempt, self.retry.backoff_base, self.retry.backoff_cap, self.rng)

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        return (await self.send("GET", path, params=params, **kwargs)).json()

    async def pages(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        scope: ThrottleScope = ThrottleScope.IDENTITY,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Each page of a collection as parsed JSON, following `@odata.nextLink` to the end.

        A next link seen before in this read (the same $skiptoken again, or a cycle) is an error, not a
        loop; a next-page token that expires midway raises PageTokenExpired, for the caller to start over.
        """
        url: str | None = self.url(path, params)
        seen: set[str] = set()
        first = True
        while url:
            if url in seen:
                raise GraphError(
                    f"Graph returned a page link twice while reading {urlsplit(self.url(path)).path}: "
                    "stopping instead of reading the same pages forever",
                    hint="run again; if it repeats, Graph's paging for this collection is broken right now",
                )
            seen.add(url)
            try:
                page = (await self.send("GET", url, scope=scope, headers=headers)).json()
            except GraphError as err:
                if not first and (err.status == 410 or "skiptoken" in str(err.code or "").lower()):
                    raise PageTokenExpired(str(err), status=err.status, code=err.code) from None
                raise
            first = False
            yield page
            url = page.get("@odata.nextLink")

    async def list_all(self, path: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        """Every object of a collection, as plain dicts (started over once if a page token expires)."""
        try:
            return await self._list_once(path, params, **kwargs)
        except PageTokenExpired:
            return await self._list_once(path, params, **kwargs)

    async def _list_once(
        self, path: str, params: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> list[dict[str, Any]]:
        objects: list[dict[str, Any]] = []
        async for page in self.pages(path, params, **kwargs):
            objects.extend(page.get("value", ()))
        return objects

    async def batch(self, requests: Sequence[BatchRequest]) -> dict[str, GraphResponse]:
        """Run requests through `$batch` (20 at a time), retrying throttled sub-requests on their own.

        msgraph's middleware does not retry a 429 inside a 200 envelope, so this does.
        """
        results: dict[str, GraphResponse] = {}
        for start in range(0, len(requests), MAX_BATCH):
            pending = list(requests[start : start + MAX_BATCH])
            attempt = 0
            while pending:
                answers = await self._batch_once(pending)
                retry = [
                    r
                    for r in pending
                    if answers[r.id].status in RETRY_STATUSES
                    and (answers[r.id].status == 429 or r.method in IDEMPOTENT)
                ]
                for request in pending:
                    results[request.id] = answers[request.id]
                if not retry or attempt >= self.retry.max_retries:
                    break
                delays = [self._delay(answers[r.id], attempt, ThrottleScope.IDENTITY) for r in retry]
                self._check_wait(max(delays), f"{len(retry)} $batch request(s)", answers[retry[0].id])
                if any(answers[r.id].status == 429 for r in retry):
                    self.counters.throttled += sum(1 for r in retry if answers[r.id].status == 429)
                    self.limiter.back_off(ThrottleScope.IDENTITY, max(delays))
                else:
                    await asyncio.sleep(max(delays))
                self.counters.retries += len(retry)
                retry_ids = {r.id for r in retry}
                # A retried request's dependency already succeeded, so it no longer waits for it.
                pending = [r._replace(depends_on=tuple(d for d in r.depends_on if d in retry_ids)) for r in retry]
                attempt += 1
        return results

    async def _batch_once(self, requests: Sequence[BatchRequest]) -> dict[str, GraphResponse]:
        body = {"requests": [_batch_item(r) for r in requests]}
        envelope = (await self.send("POST", "$batch", body=body)).json()
        answers: dict[str, GraphResponse] = {}
        for item in envelope.get("responses", []):
            headers = {k.lower(): str(v) for k, v in (item.get("headers") or {}).items()}
            self.counters.resource_units += _units(int(item.get("status", 0)), headers)
            payload = item.get("body")
            content = (
                b""
                if payload is None
                else (payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
            )
            answers[str(item["id"])] = GraphResponse(int(item["status"]), headers, content)
        missing = [r.id for r in requests if r.id not in answers]
        if missing:
            raise GraphError(f"$batch answered without responses for {', '.join(missing)}")
        return answers

    async def aclose(self) -> None:
        client = getattr(self.adapter, "_http_client", None)
        if client is not None:
            await client.aclose()
        await _close_credential(self.adapter)

    async def __aenter__(self) -> GraphClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _close_credential(adapter: GraphRequestAdapter) -> None:
    """Close the adapter's credential: azure-identity's hold aiohttp sessions that warn when left open."""
    provider = getattr(adapter, "_authentication_provider", None)
    credential = getattr(getattr(provider, "access_token_provider", None), "_credentials", None)
    close = getattr(credential, "close", None)
    if close is not None:
        await close()


def _batch_item(request: BatchRequest) -> dict[str, Any]:
    item: dict[str, Any] = {"id": request.id, "method": request.method, "url": "/" + request.url.lstrip("/")}
    headers = dict(request.headers or {})
    if request.body is not None:
        item["body"] = request.body
        headers.setdefault("Content-Type", "application/json")
    if headers:
        item["headers"] = headers
    if request.depends_on:
        item["dependsOn"] = list(request.depends_on)
    return item


def connect(
    graph_url: str = DEFAULT_GRAPH_URL,
    *,
    auth: AuthSettings | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    concurrency: int = 8,
    retry: RetryPolicy | None = None,
    timeout: float = 100.0,
) -> GraphClient:
    """A GraphClient for `graph_url`: azure-identity credentials, or a local token on loopback.

    `transport` lets tests and the demo serve an in-process ASGI emulator with no socket.
    """
    base_url = check_graph_url(graph_url)
    credential = sign_in(base_url, auth or AuthSettings.from_env())
    host = urlsplit(base_url).hostname or ""
    provider = AzureIdentityAuthenticationProvider(credential, scopes=token_scopes(base_url), allowed_hosts=[host])
    http_client = (
        httpx.AsyncClient(transport=transport, timeout=timeout) if transport else httpx.AsyncClient(timeout=timeout)
    )
    # Building through the factory keeps msgraph's middleware (redirects, headers, telemetry) in the pipeline.
    http_client = GraphClientFactory.create_with_default_middleware(client=http_client)
    adapter = GraphRequestAdapter(provider, client=http_client)
    adapter.base_url = base_url
    return GraphClient(base_url, adapter, Limiter(concurrency, pacing_from_env()), retry or RetryPolicy())


def pacing_from_env() -> dict[ThrottleScope, float]:
    """Conditional Access's pace: Graph's 1 request/s, or ENTRA_GITOPS_CA_PACE_SECONDS (0 for an unthrottled
    emulator)."""
    text = os.environ.get(ENV_CA_PACE)
    if text is None or not text.strip():
        return dict(DEFAULT_INTERVALS)
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 60:
        raise ConfigError(
            f"{ENV_CA_PACE}={text!r} is not a number of seconds from 0 to 60",
            hint=f"the default is {DEFAULT_INTERVALS[ThrottleScope.CONDITIONAL_ACCESS]:g}, Graph's 1 request/s",
        )
    return {ThrottleScope.CONDITIONAL_ACCESS: seconds} if seconds else {}


def batch_error(answer: GraphResponse, request: str) -> GraphError:
    """A failed sub-request (`request`: its method and path) as the same error a direct request would raise."""
    error = (answer.json() or {}).get("error", {}) if answer.content else {}
    return GraphError(
        f"{request} failed in $batch: {answer.status} {error.get('code', '')}: {error.get('message', '')}",
        status=answer.status,
        code=error.get("code"),
        request_id=answer.headers.get("request-id"),
    )
