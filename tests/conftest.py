"""Shared fixtures for the emulator tests: a fresh demo tenant per test and a synchronous way to call it.

Everything runs in process: requests go to the real emulator through httpx.ASGITransport, with no socket.
pytest-asyncio is not used; `run` drives one coroutine on its own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import httpx
import pytest

from entra_gitops.emulator import Emulator
from entra_gitops.emulator.seed import SeedLoader, read_seed
from entra_gitops.emulator.store import Tenant
from entra_gitops.graph.auth import AuthMethod, AuthSettings
from entra_gitops.graph.client import GraphClient, connect
from entra_gitops.model.registry import default_registry

# The emulators here do not throttle, so the client's 1 request/s pacing of Conditional Access would only
# make every run wait; subprocesses inherit this too. Tests of pacing build their own Limiter.
os.environ.setdefault("ENTRA_GITOPS_CA_PACE_SECONDS", "0")
# A shell's background job starts with SIGINT ignored, and children inherit that: the interrupt tests would
# then test nothing. Python's own handler here makes every child start with the default again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

HOST = "http://127.0.0.1"
ENTRA_GITOPS = [sys.executable, "-m", "entra_gitops"]  # the installed CLI, whichever environment runs the tests
BASE_URL = f"{HOST}/v1.0"

T = TypeVar("T")

# Graph's v1.0 metadata (CSDL), which the schema and emulator fidelity tests check against; .ci/run names it.
GRAPH_METADATA_ENV = "ENTRA_GITOPS_GRAPH_METADATA"
DEFAULT_GRAPH_METADATA = Path(__file__).resolve().parents[2] / "shared/graph/graph-v1.0-metadata.xml"


# What a create of a user needs beside its properties (user-post-users.md): a password meeting the complexity rule.
PASSWORD_PROFILE = {"passwordProfile": {"password": "Only-For-Tests-7", "forceChangePasswordNextSignIn": True}}


def skip_or_fail(reason: str) -> NoReturn:
    """A check this machine cannot run: skipped on a workstation, failed under CI (env CI set), where every check
    must run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: this check may not be skipped)")
    pytest.skip(reason)


def graph_metadata_file() -> Path:
    """Graph's v1.0 metadata: $ENTRA_GITOPS_GRAPH_METADATA, else shared/graph/ beside the checkout."""
    path = Path(os.environ.get(GRAPH_METADATA_ENV) or DEFAULT_GRAPH_METADATA)
    if not path.is_file():
        skip_or_fail(f"Graph v1.0 metadata not found at {path} (set {GRAPH_METADATA_ENV} to its path)")
    return path


def run(coro: Awaitable[T]) -> T:
    """Run one coroutine to completion from a synchronous test."""
    return asyncio.run(coro)  # type: ignore[arg-type]


def http_client(app: Emulator) -> httpx.AsyncClient:
    """A raw httpx client whose requests the emulator answers in process."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=HOST, headers={"Authorization": "Bearer local"}
    )


def graph_client(app: Emulator) -> GraphClient:
    """The tool's own Graph client (msgraph-sdk adapter, local token) wired to the emulator."""
    return connect(BASE_URL, auth=AuthSettings(method=AuthMethod.LOCAL), transport=httpx.ASGITransport(app=app))


def with_graph(app: Emulator, work: Callable[[GraphClient], Awaitable[T]]) -> T:
    """Run `work(client)` against the emulator and close the client afterwards."""

    async def go() -> T:
        client = graph_client(app)
        try:
            return await work(client)
        finally:
            await client.aclose()

    return run(go())


class SyncGraph:
    """Raw HTTP calls to an emulator from synchronous tests.

    `path` is relative to /v1.0/ (`users?$top=5`) or an absolute URL such as an @odata.nextLink.
    """

    def __init__(self, app: Emulator) -> None:
        self.app = app

    @staticmethod
    def url(path: str) -> str:
        return path if path.startswith(("http://", "https://", "/")) else f"{BASE_URL}/{path}"

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        async def go() -> httpx.Response:
            async with http_client(self.app) as client:
                return await client.request(method, self.url(path), json=json, params=params, headers=headers)

        return run(go())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, json=body, **kwargs)

    def patch(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, json=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def list_all(
        self, path: str, *, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Every object of a collection, following @odata.nextLink (which carries the query itself)."""
        items: list[dict[str, Any]] = []
        response = self.get(path, params=params, headers=headers)
        while True:
            assert response.status_code == 200, response.text
            page = response.json()
            items.extend(page["value"])
            if "@odata.nextLink" not in page:
                return items
            response = self.get(page["@odata.nextLink"], headers=headers)


def assert_graph_error(
    response: httpx.Response, status: int | tuple[int, ...], code: str | None = None
) -> dict[str, Any]:
    """The response is Graph's error body: {"error": {"code", "message", "innerError": {date, request-id, client-request-id}}}."""
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, f"{response.status_code} {response.text}"
    error = response.json()["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert set(error["innerError"]) >= {"date", "request-id", "client-request-id"}
    if code is not None:
        assert error["code"] == code, error
    return error


class FakeClock:
    """A clock for Tenant (delta token age) and Throttle (windows) that moves only when told."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def user_objects(count: int) -> list[dict[str, Any]]:
    """`count` plain member users in Graph's shape, with predictable ids and names."""
    return [
        {
            "id": f"00000000-0000-4000-8000-{i:012d}",
            "displayName": f"User {i:04d}",
            "userPrincipalName": f"user{i:04d}@example.com",
            "givenName": "User",
            "surname": f"{i:04d}",
            "accountEnabled": True,
            "userType": "Member",
            "businessPhones": [],
        }
        for i in range(count)
    ]


def tenant_with_users(count: int) -> Tenant:
    """A tenant holding only `count` users, loaded through the seed loader."""
    return SeedLoader(default_registry(), {"users": user_objects(count)}, "users-test").load()


@functools.cache
def _demo_seed_json() -> tuple[str, str]:
    data, label = read_seed("demo")
    return json.dumps(data), label


def demo_seed() -> dict[str, Any]:
    """A private, plain copy of the demo seed mapping (the YAML is parsed once per session: it is slow)."""
    return json.loads(_demo_seed_json()[0])


def demo_tenant() -> Tenant:
    """A fresh demo tenant, as create_emulator("demo") loads it."""
    return SeedLoader(default_registry(), demo_seed(), _demo_seed_json()[1]).load()


@pytest.fixture
def emulator() -> Emulator:
    """A fresh emulator over the demo tenant (no throttling, no faults)."""
    return Emulator(demo_tenant())


@pytest.fixture
def api(emulator: Emulator) -> SyncGraph:
    """Synchronous raw HTTP access to the `emulator` fixture."""
    return SyncGraph(emulator)


@contextlib.contextmanager
def emulator_started(*extra: str) -> Iterator[subprocess.Popen[str]]:
    """A real `entra-gitops emulator` process on a free loopback port, its stdout and stderr piped; stopped with
    Ctrl+C (SIGINT) afterwards, killed if that does not do."""
    process = subprocess.Popen(
        [*ENTRA_GITOPS, "emulator", "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve_emulator(*extra: str) -> Iterator[str]:
    """A real `entra-gitops emulator` process on a free loopback port; yields its Graph URL."""
    with emulator_started(*extra) as process:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not (url.startswith("http://127.0.0.1:") and url.endswith("/v1.0")):
            raise AssertionError(f"the emulator did not start: {process.stderr.read() if process.stderr else url}")
        yield url


@pytest.fixture
def emulator_process() -> Iterator[str]:
    """The demo tenant served over HTTP by a separate `entra-gitops emulator` process (tests of that command)."""
    yield from serve_emulator("--seed", "demo")


@contextlib.contextmanager
def served(
    seed: Mapping[str, Any] | None = None, *, faults: str = "", latency_ms: int = 0
) -> Iterator[tuple[str, Emulator]]:
    """An emulator of `seed` (default: the demo tenant) served over loopback HTTP from a thread of this process:
    its Graph URL and the app. Real HTTP for real clients (the CLI in process or in a subprocess), without the
    second an emulator process takes to start."""
    from entra_gitops.emulator.limits import Faults, parse_faults
    from entra_gitops.emulator.server import serving

    tenant = demo_tenant() if seed is None else SeedLoader(default_registry(), dict(seed), "test").load()
    app = Emulator(tenant, faults=Faults(parse_faults(faults)) if faults else None, latency_ms=latency_ms)
    with serving(app) as url:
        yield url, app


@pytest.fixture
def served_emulator() -> Iterator[str]:
    """A fresh demo tenant served over loopback HTTP (from this process) for one test."""
    with served() as (url, _):
        yield url


def run_main(
    *args: Any, input: str | None = None, env: Mapping[str, str | None] | None = None
) -> subprocess.CompletedProcess[str]:
    """The command line through main(), the console script's own entry point, in this process: exit code, stdout
    and stderr as `subprocess.run([*ENTRA_GITOPS, ...])` gives them, without the half second a new interpreter
    takes. A real process is for what only a process shows: signals, a terminal, a kill, interpreter-exit noise."""
    from click.testing import CliRunner

    from entra_gitops.cli.main import main

    argv = [str(a) for a in args]
    code: object = 0
    sigterm = signal.getsignal(signal.SIGTERM)  # main() makes SIGTERM unwind; this process keeps its own handler
    with CliRunner().isolation(input=input, env=env) as (stdout, stderr, _):
        try:
            main(argv)
        except SystemExit as done:
            code = done.code
        finally:
            signal.signal(signal.SIGTERM, sigterm)
        out, err = stdout.getvalue().decode(), stderr.getvalue().decode()
    returncode = code if isinstance(code, int) else 0 if code is None else 1
    return subprocess.CompletedProcess([*ENTRA_GITOPS, *argv], int(returncode), out, err)


def take_snapshot_of(app: Emulator, store: Any, when: Any, config: Any = None, types: tuple[str, ...] = ()) -> Any:
    """Run the real snapshot against an in-process emulator, with fast retries and no pacing."""
    from entra_gitops.graph.client import RetryPolicy
    from entra_gitops.model.settings import Config
    from entra_gitops.state.snapshot import take_snapshot

    registry = default_registry()

    async def go() -> Any:
        client = graph_client(app)
        client.retry = RetryPolicy(max_retries=2, backoff_base=0.001)
        client.limiter.intervals.clear()  # the emulator here does not throttle; keep tests fast
        try:
            return await take_snapshot(client, store, registry, registry.select(list(types)), config or Config(), when)
        finally:
            await client.aclose()

    return run(go())


@functools.cache
def demo_state() -> Any:
    """The demo tenant as the product reads it (every type, through the real client): one immutable value."""
    from entra_gitops.state.sources import live_state

    registry = default_registry()
    return with_graph(Emulator(demo_tenant()), lambda client: live_state(client, registry, tuple(registry)))


@pytest.fixture(scope="session")
def demo() -> Any:
    """`demo_state()` as a fixture, for the tests of the pure core that edit it by hand."""
    return demo_state()


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` as an administrator would, and return what it prints."""
    return subprocess.run(
        ["git", "-c", "user.name=Admin", "-c", "user.email=admin@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One complete backup of the demo tenant, taken once per module through the real CLI (the seed is
    deterministic, so the backup fits every fresh demo emulator)."""
    from click.testing import CliRunner

    from entra_gitops.cli.main import cli
    from entra_gitops.emulator.server import serving

    repo = tmp_path_factory.mktemp("template") / "state"
    with serving(Emulator(demo_tenant())) as url:
        result = CliRunner().invoke(cli, ["snapshot", "--repo", str(repo), "--graph-url", url])
    assert result.exit_code == 0, result.output
    return repo


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Path:
    """A private copy of `template`, for a test that changes it."""
    copy = tmp_path / "state"
    shutil.copytree(template, copy, symlinks=True)
    return copy
