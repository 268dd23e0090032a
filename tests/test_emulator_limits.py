"""Injected faults, Graph's documented throttling limits and latency, as a Graph client sees them."""

from __future__ import annotations

import time
from collections.abc import Mapping

import httpx
import pytest
from conftest import (
    BASE_URL,
    FakeClock,
    SyncGraph,
    assert_graph_error,
    demo_tenant,
    http_client,
    run,
    tenant_with_users,
)

from entra_gitops.emulator import Emulator, create_emulator
from entra_gitops.emulator.limits import FaultRule, Faults, Throttle, parse_faults
from entra_gitops.errors import ConfigError

INGRID = "612d7050-db34-4834-96a9-fc94a9c226a7"
SG_FINANCE = "47469706-55e1-4537-a7f8-5bf63e58ff06"
HR_SP = "e0cfb4b7-8b9b-45eb-ad1a-3a89e308d451"


def burst(
    app: Emulator, requests: list[tuple[str, str]], headers: Mapping[str, str] | None = None
) -> list[httpx.Response]:
    """Send (method, path) requests one after another over one client: fast enough for budgets of dozens."""

    async def go() -> list[httpx.Response]:
        async with http_client(app) as client:
            return [
                await client.request(
                    method, f"{BASE_URL}/{path}", headers=headers, json={"jobTitle": "x"} if method == "PATCH" else None
                )
                for method, path in requests
            ]

    return run(go())


def statuses(responses: list[httpx.Response]) -> list[int]:
    return [r.status_code for r in responses]


def faulty(spec: str) -> SyncGraph:
    return SyncGraph(Emulator(demo_tenant(), faults=Faults(parse_faults(spec))))


def throttled(user_count: int | None = None, scale: float = 1.0) -> tuple[SyncGraph, FakeClock]:
    clock = FakeClock()
    tenant = demo_tenant()
    users = user_count if user_count is not None else tenant.count(tenant.registry.get("user"))
    return SyncGraph(Emulator(tenant, throttle=Throttle(users, scale=scale, clock=clock))), clock


# ---------------------------------------------------------------------------- parse_faults


def test_parse_faults_reads_every_option():
    rules = parse_faults(
        "429,retry-after=7,first=2; 503,every=3,path=users*,method=get;504,after-commit,method=POST;500,p=0.25"
    )
    assert rules == (
        FaultRule(status=429, retry_after=7, first=2),
        FaultRule(status=503, every=3, path="users*", method="GET"),
        FaultRule(status=504, after_commit=True, method="POST"),
        FaultRule(status=500, probability=0.25),
    )


def test_parse_faults_defaults_and_no_retry_after():
    assert parse_faults("429")[0].retry_after == 1
    assert parse_faults("429,retry-after=none")[0].retry_after is None
    assert parse_faults("503")[0].retry_after is None
    assert parse_faults("") == () and parse_faults(" ; ") == ()


@pytest.mark.parametrize(
    "spec,named",
    [
        ("abc", "'abc'"),
        ("418", "418"),
        ("429,every=often", "every=often"),
        ("503,bogus=1", "bogus=1"),
        ("504,after-commit=yes", "after-commit=yes"),
        ("429,retry-after=soon", "retry-after=soon"),
        ("500,p=half", "p=half"),
        ("429;nope", "'nope'"),
    ],
)
def test_parse_faults_refuses_bad_parts_by_name(spec: str, named: str):
    with pytest.raises(ConfigError) as caught:
        parse_faults(spec)
    assert named in str(caught.value)


# ---------------------------------------------------------------------------- injected faults


def test_injected_429_with_retry_after():
    api = faulty("429,retry-after=7,first=1")
    first = api.get("users")
    assert_graph_error(first, 429, "TooManyRequests")
    assert first.headers["Retry-After"] == "7"
    assert api.get("users").status_code == 200


def test_injected_429_without_retry_after():
    api = faulty("429,retry-after=none,first=2")
    responses = [api.get("users"), api.get("users"), api.get("users")]
    assert statuses(responses) == [429, 429, 200]
    assert all("retry-after" not in r.headers for r in responses)


def test_injected_503_every_second_request():
    api = faulty("503,every=2")
    responses = [api.get(f"users/{INGRID}") for _ in range(6)]
    assert statuses(responses) == [200, 503, 200, 503, 200, 503]
    assert_graph_error(responses[1], 503, "ServiceUnavailable")


def test_injected_504_only_on_matching_path_and_method():
    api = faulty("504,path=groups*,method=GET")
    assert api.get("users").status_code == 200
    assert_graph_error(api.get("groups"), 504, "GatewayTimeout")
    assert_graph_error(api.get(f"groups/{SG_FINANCE}/members"), 504)
    assert api.patch(f"groups/{SG_FINANCE}", {"description": "Still writable"}).status_code == 204


def test_fault_before_commit_does_not_write():
    api = faulty("504,method=POST,first=1")
    body = {"displayName": "Lost group", "mailEnabled": False, "mailNickname": "lost", "securityEnabled": True}
    assert_graph_error(api.post("groups", body), 504)
    assert not api.list_all("groups", params={"$filter": "displayName eq 'Lost group'"})


def test_after_commit_fault_still_applies_the_write():
    api = SyncGraph(create_emulator("demo", faults="504,after-commit,method=POST,first=1"))
    body = {
        "displayName": "Committed group",
        "mailEnabled": False,
        "mailNickname": "committed",
        "securityEnabled": True,
    }
    assert_graph_error(api.post("groups", body), 504)
    assert len(api.list_all("groups", params={"$filter": "displayName eq 'Committed group'"})) == 1
    assert api.post("groups", {**body, "displayName": "Second group"}).status_code == 201


# ---------------------------------------------------------------------------- throttling


@pytest.mark.parametrize("users,budget", [(0, 3500), (49, 3500), (50, 5000), (500, 5000), (501, 8000)])
def test_resource_unit_budget_by_tenant_size(users: int, budget: int):
    api, _ = throttled(users, scale=0.01)
    allowed = budget // 100
    responses = burst(api.app, [("GET", f"users/{INGRID}")] * (allowed + 1))
    assert statuses(responses) == [200] * allowed + [429]


def test_create_emulator_throttles_by_the_seeded_tenant_size():
    app = create_emulator("demo", throttle=True, throttle_scale=0.01)  # 31 users: 3,500 units, scaled to 35
    responses = burst(app, [("GET", f"users/{INGRID}")] * 36)
    assert statuses(responses) == [200] * 35 + [429]
    assert int(responses[-1].headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    "path,cost",
    [
        ("users", 2),
        ("users?$select=id,displayName", 1),
        ("users?$top=5", 1),
        ("users?$top=19", 1),
        ("users?$top=20", 2),
        ("users?$select=id&$top=5", 1),
        ("users?$expand=manager", 3),
        (f"users/{INGRID}", 1),
        ("groups", 1),
        ("groups?$select=id", 1),
        (f"groups/{SG_FINANCE}/members", 3),
        (f"groups/{SG_FINANCE}/members?$select=id", 2),
        (f"groups/{SG_FINANCE}/owners", 1),
        ("applications", 2),
        ("oauth2PermissionGrants", 2),
        (f"servicePrincipals/{HR_SP}/appRoleAssignedTo", 2),
        ("users/delta", 2),
    ],
)
def test_request_costs_in_resource_units(path: str, cost: int):
    api, _ = throttled()
    response = api.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["x-ms-resource-unit"] == str(cost)


def test_writes_cost_one_unit():
    api, _ = throttled()
    assert api.patch(f"users/{INGRID}", {"jobTitle": "Chair"}).headers["x-ms-resource-unit"] == "1"


def test_exceeding_the_budget_is_429_until_the_window_passes():
    api, clock = throttled(scale=0.01)  # 35 units per 10 s
    responses = burst(api.app, [("GET", "users")] * 18)  # 2 units each
    assert statuses(responses) == [200] * 17 + [429]
    assert "x-ms-throttle-limit-percentage" in responses[16].headers
    refused = responses[-1]
    assert_graph_error(refused, 429, "TooManyRequests")
    assert refused.headers["Retry-After"] == "10"
    assert refused.headers["x-ms-throttle-scope"] and refused.headers["x-ms-throttle-information"]
    assert api.get("users?$select=id").status_code == 200  # one unit still fits
    clock.advance(9)
    assert api.get("users").status_code == 429
    clock.advance(1)
    assert api.get("users").status_code == 200


def test_write_budget_is_its_own_window():
    api, clock = throttled(scale=0.01)  # 30 writes per 150 s, 35 units per 10 s
    writes = burst(api.app, [("PATCH", f"users/{INGRID}")] * 31)
    assert statuses(writes) == [204] * 30 + [429]
    assert writes[-1].headers["x-ms-throttle-information"] == "WriteLimitExceeded"
    assert int(writes[-1].headers["Retry-After"]) == 150
    clock.advance(10)
    assert api.get(f"users/{INGRID}").status_code == 200  # reads are fine again
    refused = api.patch(f"users/{INGRID}", {"jobTitle": "Still no"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) == 140
    clock.advance(140)
    assert api.patch(f"users/{INGRID}", {"jobTitle": "Now"}).status_code == 204


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_conditional_access_one_request_per_second_without_retry_after(scale: float):
    api, clock = throttled(scale=scale)
    assert api.get("identity/conditionalAccess/policies").status_code == 200
    for path in ("identity/conditionalAccess/policies", "identity/conditionalAccess/namedLocations"):
        refused = api.get(path)
        assert_graph_error(refused, 429, "TooManyRequests")
        assert "retry-after" not in refused.headers
    assert api.get("users").status_code == 200  # the identity budget is separate
    clock.advance(1.0 / scale)
    assert api.get("identity/conditionalAccess/namedLocations").status_code == 200


def test_batch_sub_requests_are_throttled_on_their_own():
    api, _ = throttled(scale=0.01)  # 35 units: 17 list requests at 2 units
    requests = [{"id": str(i), "method": "GET", "url": "/users"} for i in range(20)]
    envelope = api.post("$batch", {"requests": requests})
    assert envelope.status_code == 200
    answers = {a["id"]: a for a in envelope.json()["responses"]}
    refused = [i for i, a in answers.items() if a["status"] == 429]
    assert len(refused) == 3 and sum(a["status"] == 200 for a in answers.values()) == 17
    for i in refused:
        assert answers[i]["headers"]["Retry-After"] == "10"
        assert answers[i]["body"]["error"]["code"] == "TooManyRequests"


def test_no_throttling_by_default():
    api = SyncGraph(Emulator(tenant_with_users(10)))
    responses = burst(api.app, [("GET", "users")] * 60)
    assert set(statuses(responses)) == {200}
    assert "x-ms-resource-unit" not in responses[0].headers


# ---------------------------------------------------------------------------- latency


def test_latency_delays_each_response():
    api = SyncGraph(Emulator(tenant_with_users(3), latency_ms=50))
    started = time.perf_counter()
    assert api.get("users").status_code == 200
    assert time.perf_counter() - started >= 0.05
