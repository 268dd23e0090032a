"""Injected faults, Graph's documented throttling limits and latency, as a Graph client sees them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
from entra_gitops.model.errors import ConfigError

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
        ("path=users*", "no action"),
        ("503,truncate=2", "'503' and 'truncate=2' are two actions"),
        ("expire-token,repeat-skiptoken", "two actions"),
        ("delay=soon", "delay=soon"),
        ("delay=-1,path=users", "delay=-1"),
        ("truncate=0", "truncate=0"),
        ("truncate", "truncate"),
        ("repeat-skiptoken=2", "repeat-skiptoken=2"),
        ("delay=1,after-commit", "'after-commit' needs a STATUS"),
        ("truncate=1,retry-after=5", "'retry-after' needs a STATUS"),
        ("429,every=0", "every=0"),
        ("500,p=1.5", "p=1.5"),
        ("503,method=FETCH", "method=FETCH"),
        ("503,first=1,first=2", "'first=2' repeats"),
        ("429,", "an empty part"),
        ("405", "status 405"),
    ],
)
def test_parse_faults_refuses_bad_parts_by_name(spec: str, named: str):
    with pytest.raises(ConfigError) as caught:
        parse_faults(spec)
    assert named in str(caught.value)
    assert str(caught.value).startswith("--faults: ")


def test_parse_faults_names_the_rule_with_the_bad_part():
    with pytest.raises(ConfigError) as caught:
        parse_faults("429,first=1; 503,bogus")
    assert "unknown part 'bogus', in rule '503,bogus'" in str(caught.value)


def test_parse_faults_reads_the_new_actions_in_any_order():
    rules = parse_faults(
        "delay=2,path=users*; 503,delay=0.5,retry-after=30; truncate=3,first=1,method=get;"
        "first=2,repeat-skiptoken; expire-token,path=users/delta; path=groups*,410"
    )
    assert rules == (
        FaultRule(delay=2.0, path="users*"),
        FaultRule(status=503, delay=0.5, retry_after=30),
        FaultRule(truncate=3, first=1, method="GET"),
        FaultRule(repeat_skiptoken=True, first=2),
        FaultRule(expire_token=True, path="users/delta"),
        FaultRule(status=410, path="groups*"),
    )


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
        ("users?$expand=sponsors", 3),
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
    # Graph says each request's cost whether or not a limit is near: only the warning header is absent.
    assert responses[0].headers["x-ms-resource-unit"] == "2"
    assert "x-ms-throttle-limit-percentage" not in responses[0].headers


# ---------------------------------------------------------------------------- latency


def test_latency_delays_each_response():
    api = SyncGraph(Emulator(tenant_with_users(3), latency_ms=50))
    started = time.perf_counter()
    assert api.get("users").status_code == 200
    assert time.perf_counter() - started >= 0.05


# ---------------------------------------------------------------------------- any status


@pytest.mark.parametrize(
    "status,code",
    [
        (400, "Request_BadRequest"),
        (401, "InvalidAuthenticationToken"),
        (403, "Authorization_RequestDenied"),
        (404, "Request_ResourceNotFound"),
        (409, "Conflict"),
        (410, "Gone"),
        (412, "PreconditionFailed"),
        (429, "TooManyRequests"),
        (500, "InternalServerError"),
        (502, "BadGateway"),
        (503, "ServiceUnavailable"),
        (504, "GatewayTimeout"),
    ],
)
def test_any_status_with_graphs_error_code(status: int, code: str):
    api = faulty(f"{status},first=1,path=users/*")
    refused = api.get(f"users/{INGRID}")
    assert_graph_error(refused, status, code)
    assert api.get(f"users/{INGRID}").status_code == 200
    assert ("retry-after" in refused.headers) == (status == 429)


def test_statuses_carry_what_graph_sends_with_them():
    api = faulty("401,first=1;403,first=1;404,first=1")
    unauthenticated = api.get("users")
    assert_graph_error(unauthenticated, 401, "InvalidAuthenticationToken")
    assert unauthenticated.headers["WWW-Authenticate"].startswith("Bearer")
    denied = assert_graph_error(api.get("users"), 403, "Authorization_RequestDenied")
    assert denied["message"] == "Insufficient privileges to complete the operation."
    missing = assert_graph_error(api.get(f"users/{INGRID}"), 404, "Request_ResourceNotFound")
    assert INGRID in missing["message"]


def test_retry_after_on_any_status():
    api = faulty("503,retry-after=30,first=1;500,retry-after=0,first=1")
    first, second = api.get("users"), api.get("users")
    assert_graph_error(first, 503, "ServiceUnavailable")
    assert first.headers["Retry-After"] == "30"
    assert_graph_error(second, 500)
    assert second.headers["Retry-After"] == "0"


def test_410_on_a_delta_path_is_sync_state_not_found_with_location():
    api = faulty("410,first=1,path=users/delta")
    refused = api.get("users/delta")
    assert_graph_error(refused, 410, "syncStateNotFound")
    assert refused.headers["Location"] == f"{BASE_URL}/users/delta"
    assert api.get("users/delta").status_code == 200


def test_any_status_after_commit_on_any_method():
    api = faulty("412,first=1,method=PATCH,after-commit")
    assert_graph_error(api.patch(f"users/{INGRID}", {"jobTitle": "Committed"}), 412, "PreconditionFailed")
    assert api.get(f"users/{INGRID}?$select=jobTitle").json()["jobTitle"] == "Committed"


def test_faults_apply_to_batch_sub_requests():
    api = faulty("409,path=users/*")
    requests = [
        {"id": "1", "method": "GET", "url": f"/users/{INGRID}"},
        {"id": "2", "method": "GET", "url": "/groups?$select=id"},
    ]
    envelope = api.post("$batch", {"requests": requests})
    assert envelope.status_code == 200
    answers = {a["id"]: a for a in envelope.json()["responses"]}
    assert answers["1"]["status"] == 409 and answers["1"]["body"]["error"]["code"] == "Conflict"
    assert answers["2"]["status"] == 200


# ---------------------------------------------------------------------------- delay


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def test_delay_alone_slows_matching_requests_without_failing_them():
    api = faulty("delay=0.3,first=1,path=users")
    slow, slow_took = timed(lambda: api.get("users"))
    assert slow.status_code == 200 and slow_took >= 0.3
    fast, fast_took = timed(lambda: api.get("users"))
    assert fast.status_code == 200 and fast_took < 0.3
    other, other_took = timed(lambda: api.get("groups"))
    assert other.status_code == 200 and other_took < 0.3


def test_delay_with_a_status_answers_the_status_late():
    api = faulty("503,delay=0.2,first=1,retry-after=5")
    refused, took = timed(lambda: api.get("users"))
    assert_graph_error(refused, 503, "ServiceUnavailable")
    assert took >= 0.2 and refused.headers["Retry-After"] == "5"


def test_a_delayed_write_is_performed():
    api = faulty("delay=0.2,method=PATCH")
    written, took = timed(lambda: api.patch(f"users/{INGRID}", {"jobTitle": "Slow"}))
    assert written.status_code == 204 and took >= 0.2
    assert api.get(f"users/{INGRID}?$select=jobTitle").json()["jobTitle"] == "Slow"


def test_a_delay_does_not_hold_up_other_requests():
    app = Emulator(demo_tenant(), faults=Faults(parse_faults("delay=0.5,path=users")))
    finished: list[str] = []

    async def go() -> None:
        async with http_client(app) as client:

            async def get(path: str) -> None:
                assert (await client.get(f"{BASE_URL}/{path}")).status_code == 200
                finished.append(path)

            await asyncio.gather(get("users"), get("groups"))

    run(go())
    assert finished == ["groups", "users"]


def test_a_delayed_batch_sub_request_delays_the_batch():
    api = faulty("delay=0.2,path=users/*")
    requests = [{"id": "1", "method": "GET", "url": f"/users/{INGRID}"}]
    envelope, took = timed(lambda: api.post("$batch", {"requests": requests}))
    assert envelope.status_code == 200 and took >= 0.2
    assert envelope.json()["responses"][0]["status"] == 200


# ---------------------------------------------------------------------------- paging faults


def skiptoken(link: str) -> str:
    return parse_qs(urlsplit(link).query)["$skiptoken"][0]


def delta_rows(api: SyncGraph, page_size: int) -> tuple[list[dict[str, Any]], int]:
    """The rows of one initial users delta round and how many pages it took; it must end with a deltaLink."""
    headers = {"Prefer": f"odata.maxpagesize={page_size}"}
    rows, pages, page = [], 1, api.get("users/delta", headers=headers).json()
    while "@odata.nextLink" in page:
        rows += page["value"]
        pages += 1
        page = api.get(page["@odata.nextLink"], headers=headers).json()
    assert "@odata.deltaLink" in page
    return rows + page["value"], pages


def test_repeat_skiptoken_points_the_next_link_at_the_same_page():
    api = faulty("repeat-skiptoken,first=2,path=users")
    first = api.get("users", params={"$top": 5}).json()  # no $skiptoken sent: nothing to repeat, not counted
    link = first["@odata.nextLink"]
    second = api.get(link).json()
    assert skiptoken(second["@odata.nextLink"]) == skiptoken(link)
    again = api.get(second["@odata.nextLink"]).json()
    assert again["value"] == second["value"] and skiptoken(again["@odata.nextLink"]) == skiptoken(link)
    moved_on = api.get(again["@odata.nextLink"]).json()
    assert skiptoken(moved_on["@odata.nextLink"]) != skiptoken(link)
    expected = {u["id"] for u in SyncGraph(Emulator(demo_tenant())).list_all("users")}
    assert {u["id"] for u in api.list_all("users", params={"$top": 5})} == expected


def test_repeat_skiptoken_on_a_delta_round_last_page_withholds_the_delta_link():
    everyone, _ = delta_rows(SyncGraph(Emulator(demo_tenant())), 100)
    api = faulty("repeat-skiptoken,first=1,path=users/delta")
    headers = {"Prefer": f"odata.maxpagesize={len(everyone) - 1}"}  # two pages, the second one row
    first = api.get("users/delta", headers=headers).json()
    last = api.get(first["@odata.nextLink"], headers=headers).json()
    assert "@odata.deltaLink" not in last
    assert skiptoken(last["@odata.nextLink"]) == skiptoken(first["@odata.nextLink"])
    assert "@odata.deltaLink" in api.get(last["@odata.nextLink"], headers=headers).json()


def test_truncate_drops_items_from_a_page_that_still_looks_complete():
    everyone = SyncGraph(Emulator(demo_tenant())).list_all("users", params={"$top": 5})
    api = faulty("truncate=2,first=1,path=users*")
    assert api.get(f"users/{INGRID}").status_code == 200  # not a page: not counted
    page = api.get("users", params={"$top": 5})
    assert page.status_code == 200
    assert len(page.json()["value"]) == 3 and "@odata.nextLink" in page.json()
    rest = api.list_all(page.json()["@odata.nextLink"])
    assert len(page.json()["value"]) + len(rest) == len(everyone) - 2


def test_truncate_loses_delta_rows_and_still_gives_a_delta_link():
    everyone, pages = delta_rows(SyncGraph(Emulator(demo_tenant())), 10)
    rows, _ = delta_rows(faulty("truncate=1,path=users/delta"), 10)
    assert pages > 1 and len(rows) == len(everyone) - pages  # one row short on every page


def test_truncate_in_a_batch_sub_request():
    api = faulty("truncate=1,path=users")
    envelope = api.post("$batch", {"requests": [{"id": "1", "method": "GET", "url": "/users?$top=5"}]})
    answer = envelope.json()["responses"][0]
    assert answer["status"] == 200 and len(answer["body"]["value"]) == 4


def test_expire_token_answers_a_skiptoken_as_expired():
    api = faulty("expire-token,first=1,path=users")
    first = api.get("users", params={"$top": 5})
    assert first.status_code == 200  # the first page sends no token
    link = first.json()["@odata.nextLink"]
    assert_graph_error(api.get(link), 400, "Request_InvalidSkipToken")
    assert_graph_error(api.get(link), 400, "Request_InvalidSkipToken")  # gone for good, as an expired cursor is
    assert len(api.list_all("users", params={"$top": 5})) == len(SyncGraph(Emulator(demo_tenant())).list_all("users"))


def test_expire_token_answers_a_delta_token_with_sync_state_not_found():
    api = faulty("expire-token,first=1,path=users/delta")
    assert api.get("users/delta", params={"$deltatoken": "latest"}).status_code == 200  # no state to expire
    initial = api.get("users/delta").json()  # one page of the demo tenant's users: no token sent
    delta_link = initial["@odata.deltaLink"]
    refused = api.get(delta_link)
    assert_graph_error(refused, 410, "syncStateNotFound")
    assert refused.headers["Location"] == f"{BASE_URL}/users/delta"
    assert api.get(delta_link).status_code == 200


def test_paging_faults_take_every_and_p_like_any_rule():
    def page_sizes(spec: str) -> list[int]:
        api, sizes = faulty(spec), []
        page = api.get("users", params={"$top": 5}).json()
        while True:
            sizes.append(len(page["value"]))
            if "@odata.nextLink" not in page:
                return sizes
            page = api.get(page["@odata.nextLink"]).json()

    assert page_sizes("truncate=1,every=2,path=users")[:4] == [5, 4, 5, 4]
    chosen = page_sizes("truncate=5,p=0.5,path=users")
    assert chosen == page_sizes("truncate=5,p=0.5,path=users")  # seeded: the same pages each run
    assert 0 in chosen and 5 in chosen
