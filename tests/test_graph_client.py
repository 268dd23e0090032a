"""The Graph edge against the emulator: paging, retries, throttling, $batch, stats, reading a tenant."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest

from entra_gitops.emulator import Emulator, create_emulator
from entra_gitops.emulator.limits import Faults, parse_faults
from entra_gitops.emulator.seed import SeedLoader
from entra_gitops.graph.client import BatchRequest, GraphClient, RetryPolicy, check_graph_url, connect
from entra_gitops.graph.reader import read_tenant
from entra_gitops.model.errors import ConfigError, GraphError
from entra_gitops.model.registry import ThrottleScope, default_registry

LOCAL = "http://127.0.0.1/v1.0"
FAST = RetryPolicy(max_retries=4, backoff_base=0.001)


def users_seed(count: int) -> dict[str, Any]:
    return {
        "users": [
            {
                "id": f"00000000-0000-4000-8000-{i:012d}",
                "displayName": f"User {i}",
                "userPrincipalName": f"u{i}@contoso.com",
            }
            for i in range(count)
        ]
    }


def emulator_for(seed: dict[str, Any], faults: str = "") -> Emulator:
    tenant = SeedLoader(default_registry(), seed, "test seed").load()
    rules = parse_faults(faults)
    return Emulator(tenant, faults=Faults(rules) if rules else None)


def run_with(
    app: Emulator,
    body: Callable[[GraphClient], Coroutine[Any, Any, Any]],
    retry: RetryPolicy = FAST,
    concurrency: int = 8,
) -> Any:
    async def main() -> Any:
        async with connect(
            LOCAL, transport=httpx.ASGITransport(app=app), retry=retry, concurrency=concurrency
        ) as client:
            return await body(client)

    return asyncio.run(main())


def test_list_all_follows_next_links_to_every_object() -> None:
    app = emulator_for(users_seed(1234))

    async def body(client: GraphClient) -> tuple[list[dict[str, Any]], Any]:
        return await client.list_all("users", {"$select": "id,displayName", "$top": 500}), client.stats

    users, stats = run_with(app, body)
    assert len(users) == 1234
    assert len({u["id"] for u in users}) == 1234
    assert set(users[0]) == {"id", "displayName"}
    assert stats.requests == 3  # 500 + 500 + 234


def test_retry_after_is_honoured_and_counted() -> None:
    app = emulator_for(users_seed(3), faults="429,first=1,retry-after=1")

    async def body(client: GraphClient) -> tuple[list[dict[str, Any]], Any, float]:
        started = time.monotonic()
        found = await client.list_all("users")
        return found, client.stats, time.monotonic() - started

    users, stats, elapsed = run_with(app, body)
    assert len(users) == 3
    assert (stats.requests, stats.retries, stats.throttled) == (2, 1, 1)
    assert elapsed >= 1.0


def test_429_without_retry_after_backs_off_exponentially() -> None:
    app = emulator_for(users_seed(3), faults="429,first=3,retry-after=none")
    retry = RetryPolicy(max_retries=5, backoff_base=0.05)

    async def body(client: GraphClient) -> tuple[Any, float]:
        started = time.monotonic()
        await client.list_all("users")
        return client.stats, time.monotonic() - started

    stats, elapsed = run_with(app, body, retry=retry)
    assert (stats.retries, stats.throttled) == (3, 3)
    # 0.05 * (1 + 2 + 4) with at least half of each delay kept by the jitter.
    assert elapsed >= 0.05 * 7 * 0.5


def test_transient_5xx_on_reads_is_retried() -> None:
    app = emulator_for(users_seed(3), faults="503,first=1;504,first=1")

    async def body(client: GraphClient) -> Any:
        await client.list_all("users")
        return client.stats

    stats = run_with(app, body)
    assert stats.retries == 2
    assert stats.throttled == 0


def test_a_post_that_fails_with_5xx_is_not_repeated() -> None:
    # The group exists although the answer was 504: sending the POST again would duplicate it.
    app = emulator_for(users_seed(1), faults="504,first=1,method=POST,after-commit")
    group = {"displayName": "Ops", "mailEnabled": False, "mailNickname": "ops", "securityEnabled": True}

    async def body(client: GraphClient) -> None:
        await client.send("POST", "groups", body=group)

    with pytest.raises(GraphError) as raised:
        run_with(app, body)
    assert raised.value.status == 504
    assert len(app.tenant.objects(default_registry().get("group"))) == 1


def test_retries_give_up_with_graphs_error() -> None:
    app = emulator_for(users_seed(1), faults="503")

    async def body(client: GraphClient) -> None:
        await client.list_all("users")

    with pytest.raises(GraphError) as raised:
        run_with(app, body, retry=RetryPolicy(max_retries=2, backoff_base=0.001))
    assert raised.value.status == 503
    assert raised.value.code == "ServiceUnavailable"
    assert raised.value.request_id
    assert "GET /v1.0/users" in str(raised.value)


def test_client_errors_are_not_retried_and_name_the_request() -> None:
    app = emulator_for(users_seed(1))

    async def body(client: GraphClient) -> None:
        await client.get_json("users/11111111-1111-4111-8111-111111111111")

    with pytest.raises(GraphError) as raised:
        run_with(app, body)
    assert raised.value.status == 404
    assert raised.value.code == "Request_ResourceNotFound"


def test_a_429_pauses_every_request_of_its_scope() -> None:
    # One throttled request must hold back the others, not let them hammer Graph meanwhile.
    app = emulator_for(users_seed(3), faults="429,first=1,retry-after=1")

    async def body(client: GraphClient) -> list[float]:
        async def read() -> float:
            await client.get_json("users", {"$top": 1})
            return time.monotonic()

        started = time.monotonic()
        ends = await asyncio.gather(*(read() for _ in range(4)))
        return [end - started for end in ends]

    ends = run_with(app, body, concurrency=1)
    assert min(ends) >= 1.0


@pytest.mark.slow
def test_conditional_access_reads_are_paced_to_one_per_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENTRA_GITOPS_CA_PACE_SECONDS", raising=False)  # Graph's pace, which conftest turns off
    app = create_emulator("demo")

    async def body(client: GraphClient) -> float:
        started = time.monotonic()
        for _ in range(3):
            await client.get_json("identity/conditionalAccess/policies", scope=ThrottleScope.CONDITIONAL_ACCESS)
        return time.monotonic() - started

    assert run_with(app, body) >= 2.0


def test_batch_retries_throttled_sub_requests_on_their_own() -> None:
    app = emulator_for(users_seed(30), faults="429,first=2,retry-after=0,path=users/*")
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(25)]
    requests = [BatchRequest(str(n), "GET", f"users/{i}?$select=id,displayName") for n, i in enumerate(ids)]

    async def body(client: GraphClient) -> tuple[dict[str, Any], Any]:
        return await client.batch(requests), client.stats

    answers, stats = run_with(app, body)
    assert sorted(answers, key=int) == [str(n) for n in range(25)]
    assert all(a.status == 200 for a in answers.values())
    assert [answers[str(n)].json()["id"] for n in range(25)] == ids
    assert stats.throttled == 2
    assert stats.requests == 3  # 20 + 5, then one retry envelope for the two throttled ones


def test_batch_reports_failed_dependencies() -> None:
    app = emulator_for(users_seed(2))
    requests = [
        BatchRequest("a", "GET", "users/99999999-9999-4999-8999-999999999999"),
        BatchRequest(
            "b", "PATCH", "users/00000000-0000-4000-8000-000000000001", body={"jobTitle": "x"}, depends_on=("a",)
        ),
    ]

    answers = run_with(app, lambda client: client.batch(requests))
    assert answers["a"].status == 404
    assert answers["b"].status == 424


def test_stats_count_graphs_resource_units() -> None:
    app = create_emulator("demo", throttle=True)

    async def body(client: GraphClient) -> Any:
        await client.get_json("users", {"$top": 5})  # 2, -1 for $top under 20
        await client.get_json("users", {"$select": "id"})  # 2, -1 for $select
        await client.get_json(
            "groups/" + next(iter(app.tenant.objects(default_registry().get("group")))) + "/members"
        )  # 3
        return client.stats

    assert run_with(app, body).resource_units == 1 + 1 + 3


def test_requests_units_refusals_and_bytes_counted_as_the_server_counts_them() -> None:
    # Refusals on the way, in pages and inside $batch: a 429 costs nothing and an envelope has no cost of its own.
    # A count for the progress display that answers after its read is done: awaited, not dropped in flight.
    app = create_emulator("demo", faults="delay=1,path=*$count;429,every=3,retry-after=0,path=users*")
    registry = default_registry()

    class Watching:
        wants_totals = True

        def __call__(self, label: str, count: int) -> None: ...
        def phase(self, name: str, total: int | None = None, unit: str = "", done: int = 0) -> None: ...
        def advance(self, count: int = 1, current: str | None = None) -> None: ...
        def waiting(self, seconds: float, reason: str) -> None: ...
        def total(self, label: str, total: int) -> None:
            totals.append(label)

    totals: list[str] = []

    async def body(client: GraphClient) -> Any:
        await read_tenant(client, registry, tuple(registry), Watching())  # type: ignore[arg-type]
        await client.batch([BatchRequest(str(i), "GET", f"users?$top={i + 1}") for i in range(30)])
        return client.stats

    stats = run_with(app, body)
    assert totals.count("user") == 2  # Graph's count, after the read, and the read's own
    assert stats.throttled > 0 and app.served.throttled == stats.throttled
    assert app.served.resource_units > stats.requests  # costs add up per request, not one each
    assert (stats.requests, stats.resource_units, stats.bytes_read) == (
        app.served.requests,
        app.served.resource_units,
        app.served.bytes_sent,
    )


def test_read_tenant_reads_every_type_with_links_and_deleted_objects() -> None:
    app = create_emulator("demo")
    registry = default_registry()
    seen: dict[str, int] = {}

    def progress(name: str, count: int) -> None:
        seen[name] = seen.get(name, 0) + count

    result = run_with(app, lambda client: read_tenant(client, registry, tuple(registry), progress))
    tenant = app.tenant
    for rtype in registry:
        expected = 1 if rtype.singleton_path else tenant.count(rtype)
        assert result.count(rtype.name) == expected, rtype.name
    assert {u["id"] for u in result.deleted["user"]} == set(tenant.deleted["user"])
    members = result.links[("group", "members")]
    assert members and all(set(v) == set(tenant.members(("group", "members"), k)) for k, v in members.items())
    assert seen["user"] == tenant.count(registry.get("user"))
    assert seen["user (deleted)"] == len(tenant.deleted["user"])
    assert result.stats.requests > len(registry)


@pytest.mark.parametrize(
    "url",
    [
        "graph.microsoft.com/v1.0",
        "ftp://graph.microsoft.com/v1.0",
        "https://graph.microsoft.com",
        "https://graph.microsoft.com/v1.0?x=1",
        "https:///v1.0",
    ],
)
def test_bad_graph_urls_are_refused_with_an_example(url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        check_graph_url(url)
    assert "--graph-url" in str(raised.value)
    assert "/v1.0" in str(raised.value)


def test_unreachable_graph_is_one_clear_error() -> None:
    async def main() -> None:
        # Port 9 (discard) on loopback has no listener here; connecting fails at once.
        async with connect("http://127.0.0.1:9/v1.0", retry=RetryPolicy(max_retries=1, backoff_base=0.001)) as client:
            await client.get_json("users")

    with pytest.raises(GraphError) as raised:
        asyncio.run(main())
    assert "cannot reach Graph at http://127.0.0.1:9/v1.0" in str(raised.value)


def test_conditional_access_pacing_is_graphs_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from entra_gitops.graph.client import ENV_CA_PACE, pacing_from_env
    from entra_gitops.model.errors import ConfigError
    from entra_gitops.model.registry import ThrottleScope

    monkeypatch.delenv(ENV_CA_PACE, raising=False)
    assert pacing_from_env() == {ThrottleScope.CONDITIONAL_ACCESS: 1.0}
    monkeypatch.setenv(ENV_CA_PACE, "0.25")
    assert pacing_from_env() == {ThrottleScope.CONDITIONAL_ACCESS: 0.25}
    monkeypatch.setenv(ENV_CA_PACE, "0")
    assert pacing_from_env() == {}
    for bad in ("fast", "-1", "3600"):
        monkeypatch.setenv(ENV_CA_PACE, bad)
        with pytest.raises(ConfigError, match=ENV_CA_PACE):
            pacing_from_env()


def test_a_paced_scope_has_a_slot_of_its_own() -> None:
    # Conditional Access loses its turn, a second each, when it queues behind a burst of other reads.
    from entra_gitops.graph.limiter import Limiter

    async def body() -> list[str]:
        limiter = Limiter(concurrency=1, intervals={ThrottleScope.CONDITIONAL_ACCESS: 0.001})
        order: list[str] = []
        release = asyncio.Event()

        async def identity() -> None:
            async with limiter.slot(ThrottleScope.IDENTITY):
                await release.wait()
                order.append("identity")

        async def paced() -> None:
            async with limiter.slot(ThrottleScope.CONDITIONAL_ACCESS):
                order.append("conditional access")
            release.set()

        await asyncio.wait_for(asyncio.gather(identity(), paced()), timeout=10)
        return order

    assert asyncio.run(body()) == ["conditional access", "identity"]


def test_a_429_without_retry_after_in_a_paced_scope_waits_one_interval_first(monkeypatch: pytest.MonkeyPatch) -> None:
    from entra_gitops.graph.client import GraphResponse

    monkeypatch.delenv("ENTRA_GITOPS_CA_PACE_SECONDS", raising=False)  # Graph's pace, which conftest turns off
    client = connect("http://127.0.0.1:9/v1.0", transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    throttled = GraphResponse(429, {}, b"")
    pace = client.limiter.intervals[ThrottleScope.CONDITIONAL_ACCESS]
    assert client._delay(throttled, 0, ThrottleScope.CONDITIONAL_ACCESS) == pace
    assert client._delay(GraphResponse(429, {"retry-after": "7"}, b""), 0, ThrottleScope.CONDITIONAL_ACCESS) == 7
    assert client._delay(throttled, 0, ThrottleScope.IDENTITY) <= client.retry.backoff_base


def test_the_pace_counts_from_the_answer_too() -> None:
    # A request that leaves late (a busy event loop) must not bring the next one within a second of it at Graph.
    from entra_gitops.graph.limiter import Limiter

    now = [100.0]
    limiter = Limiter(intervals={ThrottleScope.CONDITIONAL_ACCESS: 1.0}, clock=lambda: now[0])

    async def body() -> float:
        async with limiter.slot(ThrottleScope.CONDITIONAL_ACCESS):
            now[0] += 0.6  # the answer comes 0.6 s after the request started
        return limiter._delay(ThrottleScope.CONDITIONAL_ACCESS)

    assert asyncio.run(body()) == pytest.approx(1.0)  # not 0.4: a whole interval after the answer
