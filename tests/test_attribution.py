"""Who changed it: each change of a report, a plan and drift attributed from the directory audit log."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from conftest import git, run_main, served, skip_or_fail
from tokens import unsigned_jwt

from entra_gitops.emulator import Emulator
from entra_gitops.graph.auth import ENV_LOCAL_TOKEN
from entra_gitops.model.attribution import (
    ActorKind,
    ChangedBy,
    Untraced,
    Wanted,
    actors_of_changes,
    attribute,
    by_document,
    by_from_document,
    parse_event,
    parse_events,
)
from entra_gitops.model.registry import default_registry
from entra_gitops.workflow.permissions import Job, optional_permissions, permissions_for

REPORT_SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "reports" / "difference-report.schema.json"
REGISTRY = default_registry()

INGRID = "612d7050-db34-4834-96a9-fc94a9c226a7"  # jobTitle "Chief Executive Officer", department Executive
LARS = "eccc77d2-4b70-40d2-acc3-faa878648932"
BREAK_GLASS = "18154ee0-756e-4a9e-8da1-d5e27f3383a8"
FINANCE = "47469706-55e1-4537-a7f8-5bf63e58ff06"  # SG-Finance, an assigned group
MALLORY = "0a11ce00-0000-4000-8000-00000000a11e"
SYNC_APP = "5a1c0000-0000-4000-8000-0000000005a1"
SYNC_SP = "5a1c0000-0000-4000-8000-00000000005b"
WRITES = ("User.ReadWrite.All", "Group.ReadWrite.All", "GroupMember.ReadWrite.All", "Directory.Read.All")


def jwt(**claims: Any) -> str:
    """An unsigned JWT (alg none, empty signature), as the emulator accepts on loopback and never verifies."""
    return unsigned_jwt(claims)


def user_token(upn: str = "mallory@contoso.com", oid: str = MALLORY, name: str = "Mallory") -> str:
    return jwt(upn=upn, oid=oid, name=name, scp=" ".join(WRITES))


def app_token(name: str = "Contoso Sync") -> str:
    return jwt(appid=SYNC_APP, app_displayname=name, oid=SYNC_SP, roles=list(WRITES))


def send(url: str, token: str, method: str, path: str, body: Any = None) -> None:
    """One write to the served emulator as the token's caller."""
    response = httpx.request(method, f"{url}/{path}", json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code < 300, response.text


def edit_directly(app: Emulator, object_id: str, **values: Any) -> None:
    """A change that reaches the tenant without any audited write (as a sync would make it)."""
    found = app.tenant.find(REGISTRY.get("user"), object_id)
    assert found is not None
    app.tenant.update(REGISTRY.get("user"), found, values)  # in the change log, as Graph's delta would see it


@pytest.fixture
def tenant() -> Iterator[tuple[str, Emulator]]:
    with served() as (url, app):
        yield url, app


def diff(repo: Path, url: str, fmt: str = "text", token: str | None = None, *extra: str) -> Any:
    env = {ENV_LOCAL_TOKEN: token} if token else None
    return run_main("diff", "--repo", repo, "--graph-url", url, "--format", fmt, *extra, env=env)


def changes_of(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in document["changes"]}


# -- the whole report, in every rendering -----------------------------------------------------------------


@pytest.fixture
def three_changes(repo: Path, tenant: tuple[str, Emulator]) -> tuple[Path, str]:
    """Ingrid's job title changed by a user, Lars's department by an app, a break-glass account's city by no one."""
    url, app = tenant
    send(url, user_token(), "PATCH", f"users/{INGRID}", {"jobTitle": "Chief Everything Officer"})
    send(url, app_token(), "PATCH", f"users/{LARS}", {"department": "Treasury"})
    edit_directly(app, BREAK_GLASS, city="Nowhere")
    return repo, url


def test_text_names_the_user_the_app_and_says_when_no_event_matches(three_changes: tuple[Path, str]) -> None:
    repo, url = three_changes
    result = diff(repo, url)
    assert result.returncode == 2, result.stderr
    assert "warning" not in result.stderr
    text = result.stdout
    ingrid = text[text.index(f"({INGRID})") :].split("\n\n")[0]
    assert "    by mallory@contoso.com at " in ingrid
    assert "~ jobTitle: Chief Executive Officer -> Chief Everything Officer   by mallory@contoso.com at " in ingrid
    lars = text[text.index(f"({LARS})") :].split("\n\n")[0]
    assert "    by app Contoso Sync at " in lars and "mallory" not in lars
    glass = text[text.index(f"({BREAK_GLASS})") :].split("\n\n")[0]
    assert "    changed by: not in the audit log" in glass and " by " not in glass.replace("changed by:", "")
    assert "Who changed it: the directory audit log since " in text


def test_markdown_names_who_changed_each_object(three_changes: tuple[Path, str]) -> None:
    repo, url = three_changes
    text = diff(repo, url, "markdown").stdout
    assert "Changed by: mallory@contoso.com at " in text
    assert "Changed by: app Contoso Sync at " in text
    assert "Changed by: not in the audit log" in text
    assert "| property | in the backup | now | recoverable | changed |" in text


def test_json_carries_changed_by_and_validates_against_its_schema(three_changes: tuple[Path, str]) -> None:
    repo, url = three_changes
    document = json.loads(diff(repo, url, "json").stdout)
    jsonschema.validate(document, json.loads(REPORT_SCHEMA.read_text()))
    assert document["auditLog"]["available"] is True
    changes = changes_of(document)
    by = changes[INGRID]["changedBy"]
    assert by["actor"] == {
        "type": "user",
        "id": MALLORY,
        "userPrincipalName": "mallory@contoso.com",
        "displayName": "Mallory",
    }
    assert by["activityDisplayName"] == "Update user" and by["correlationId"]
    assert dt.datetime.fromisoformat(by["activityDateTime"].replace("Z", "+00:00")).tzinfo is not None
    assert changes[INGRID]["properties"][0]["changedBy"]["actor"]["userPrincipalName"] == "mallory@contoso.com"
    assert changes[LARS]["changedBy"]["actor"] == {
        "type": "app",
        "appId": SYNC_APP,
        "displayName": "Contoso Sync",
        "servicePrincipalId": SYNC_SP,
    }
    assert changes[BREAK_GLASS]["changedBy"] == "notInAuditLog"
    assert changes[BREAK_GLASS]["properties"][0]["changedBy"] == "notInAuditLog"


def test_html_has_a_changed_by_column_and_a_filter_by_actor(three_changes: tuple[Path, str]) -> None:
    repo, url = three_changes
    page = diff(repo, url, "html").stdout
    assert '<th scope="col" class="who-cell">Changed by</th>' in page
    assert '<select id="actor-filter"><option value="">anyone</option>' in page
    assert '<option value="app Contoso Sync">app Contoso Sync</option>' in page
    assert '<option value="mallory@contoso.com">mallory@contoso.com</option>' in page
    assert 'data-changed-by="notInAuditLog"' in page
    assert "Changed by: not in the audit log" in page


def test_offline_diff_between_backups_says_nothing_of_who(repo: Path) -> None:
    result = run_main("diff", "--repo", repo, "--against", "latest", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert "auditLog" not in json.loads(result.stdout)


# -- degrading: the log cannot be read ----------------------------------------------------------------------


def test_without_audit_log_read_all_every_change_is_unknown_with_one_warning(three_changes: tuple[Path, str]) -> None:
    repo, url = three_changes
    reads = [p for p, _ in permissions_for(REGISTRY, Job.SNAPSHOT)]
    assert "AuditLog.Read.All" not in reads
    token = jwt(appid=SYNC_APP, app_displayname="entra-gitops reader", roles=reads)
    result = diff(repo, url, "json", token)
    assert result.returncode == 2, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "AuditLog.Read.All" in warnings[0], result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, json.loads(REPORT_SCHEMA.read_text()))
    assert document["auditLog"]["available"] is False
    assert {c["changedBy"] for c in document["changes"]} == {"unknown"}
    text = diff(repo, url, "text", token).stdout
    assert "changed by: unknown" in text and "Who changed it: unknown" in text


# -- properties and links -----------------------------------------------------------------------------------


def test_each_property_names_the_event_that_modified_it(repo: Path, tenant: tuple[str, Emulator]) -> None:
    url, _ = tenant
    send(url, user_token(), "PATCH", f"users/{INGRID}", {"jobTitle": "Chief Everything Officer"})
    send(url, app_token(), "PATCH", f"users/{INGRID}", {"department": "Everything"})
    document = json.loads(diff(repo, url, "json").stdout)
    ingrid = changes_of(document)[INGRID]
    properties = {p["name"]: p["changedBy"]["actor"]["type"] for p in ingrid["properties"]}
    assert properties == {"jobTitle": "user", "department": "app"}
    assert ingrid["changedBy"]["actor"]["type"] == "app"  # the object's latest event
    text = diff(repo, url).stdout
    assert "~ jobTitle: Chief Executive Officer -> Chief Everything Officer   by mallory@contoso.com" in text
    assert "~ department: Executive -> Everything   by app Contoso Sync" in text


def test_a_member_added_names_who_added_it(repo: Path, tenant: tuple[str, Emulator]) -> None:
    url, _ = tenant
    reference = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{INGRID}"}
    send(url, user_token("eve@contoso.com", name="Eve"), "POST", f"groups/{FINANCE}/members/$ref", reference)
    document = json.loads(diff(repo, url, "json").stdout)
    (link,) = changes_of(document)[FINANCE]["links"]
    (added,) = link["added"]
    assert added["id"] == INGRID
    assert added["changedBy"]["actor"]["userPrincipalName"] == "eve@contoso.com"
    assert added["changedBy"]["activityDisplayName"] == "Add member to group"
    text = diff(repo, url).stdout
    assert f"+ members: Ingrid Nilsen ({INGRID}) by eve@contoso.com at " in text


# -- plans -------------------------------------------------------------------------------------------------


def test_a_plan_shows_and_records_who_changed_each_object(three_changes: tuple[Path, str], tmp_path: Path) -> None:
    repo, url = three_changes
    out = tmp_path / "plan.json"
    result = run_main("plan", "--repo", repo, "--graph-url", url, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "by mallory@contoso.com at " in result.stdout
    assert "by app Contoso Sync at " in result.stdout
    saved = json.loads(out.read_text())
    recorded = {c["id"]: c["changedBy"] for c in saved["changedBy"]}
    assert recorded[INGRID]["actor"]["userPrincipalName"] == "mallory@contoso.com"
    assert recorded[BREAK_GLASS] == "notInAuditLog"
    shown = run_main("show", out, "--format", "markdown")
    assert shown.returncode == 0, shown.stderr
    assert "by mallory@contoso.com at " in shown.stdout


# -- drift -------------------------------------------------------------------------------------------------


def test_drift_attributes_when_graph_is_given_and_says_unknown_offline(repo: Path) -> None:
    with served() as (url, app):
        send(url, user_token(), "PATCH", f"users/{INGRID}", {"jobTitle": "Chief Everything Officer"})
        snap = run_main("snapshot", "--repo", repo, "--graph-url", url)
        assert snap.returncode == 0, snap.stderr
        online = run_main("drift", "--repo", repo, "--baseline", "HEAD~1", "--graph-url", url, "--format", "json")
    assert online.returncode == 2, online.stderr
    assert changes_of(json.loads(online.stdout))[INGRID]["changedBy"]["actor"]["userPrincipalName"] == (
        "mallory@contoso.com"
    )
    offline = run_main("drift", "--repo", repo, "--baseline", "HEAD~1", "--format", "json")
    assert offline.returncode == 2, offline.stderr
    assert changes_of(json.loads(offline.stdout))[INGRID]["changedBy"] == "unknown"
    assert "warning" not in offline.stderr  # offline by choice: nothing went wrong


# -- permissions ---------------------------------------------------------------------------------------------


def test_permissions_list_audit_log_read_all_as_optional_for_the_read_job(tmp_path: Path) -> None:
    assert [p for p, _ in optional_permissions(Job.SNAPSHOT)] == ["AuditLog.Read.All"]
    assert optional_permissions(Job.APPLY) == []
    text = run_main("permissions", "--repo", tmp_path).stdout
    assert "  AuditLog.Read.All (optional)\n" in text
    document = json.loads(run_main("permissions", "--repo", tmp_path, "--format", "json").stdout)
    optional = [row for row in document["jobs"]["snapshot"] if row.get("optional")]
    assert [row["permission"] for row in optional] == ["AuditLog.Read.All"]


# -- the pure matching ------------------------------------------------------------------------------------------

T0 = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)
U = "6f1d0c1e-1111-4111-8111-111111111111"
G = "9a9a9a9a-2222-4222-8222-222222222222"


def event(
    minutes: int,
    *targets: tuple[str, tuple[str, ...]],
    user: str | None = "mallory@contoso.com",
    app: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "activityDateTime": (T0 + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.1234567Z"),
        "activityDisplayName": "Update user",
        "correlationId": f"c-{minutes}",
        "result": "success",
        "initiatedBy": {
            "user": {"id": MALLORY, "userPrincipalName": user, "displayName": None} if user else None,
            "app": {"appId": SYNC_APP, "displayName": app, "servicePrincipalId": None} if app else None,
        },
        "targetResources": [
            {"id": i, "type": "User", "modifiedProperties": [{"displayName": n} for n in names]} for i, names in targets
        ],
        **extra,
    }


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "event",
        {},
        event(1, (U, ()), activityDateTime="yesterday"),
        event(1, (U, ()), user=None),  # no initiator
        event(1, (U, ()), result="failure"),  # a failed operation changed nothing
        event(1, (U, ()), targetResources="all"),
        event(1, (U, ()), targetResources=[{"displayName": "no id"}]),
        event(1, (U, ()), initiatedBy={"user": {"id": ["not", "a", "string"]}}),
    ],
)
def test_a_malformed_or_failed_event_is_skipped(raw: Any) -> None:
    assert parse_event(raw) is None
    assert parse_events([raw, event(1, (U, ()))])[1] == 1


def test_property_link_and_object_matching() -> None:
    events, _ = parse_events(
        [
            event(1, (U.upper(), ("JobTitle",))),
            event(5, (U, ("Department",)), user=None, app="Contoso Sync"),
            event(3, (U, ()), (G, ())),  # the member add: the member and the group
            event(-30, (U, ("City",))),  # before the backup: not considered
        ]
    )
    wanted = [Wanted("user", U, ("jobTitle", "department", "city")), Wanted("group", G, (), (("members", U),))]
    traced = attribute(events, wanted, since=T0)
    user = traced.of("user", U)
    assert isinstance(user.changed_by, ChangedBy) and user.changed_by.actor.kind is ActorKind.APP
    job = user.property("jobTitle")
    assert isinstance(job, ChangedBy) and job.actor.user_principal_name == "mallory@contoso.com"
    assert job.correlation_id == "c-1" and job.when == T0 + dt.timedelta(minutes=1, microseconds=123456)
    # No event named the city since the backup: the object's latest event is the best answer there is.
    assert traced.of("user", U).property("city") == user.changed_by
    member = traced.of("group", G).link("members", U)
    assert isinstance(member, ChangedBy) and member.correlation_id == "c-3"
    assert traced.of("user", "00000000-0000-4000-8000-000000000000").changed_by is Untraced.NOT_IN_LOG
    assert attribute([], wanted).of("user", U).changed_by is Untraced.NOT_IN_LOG


def test_changed_by_round_trips_through_a_document() -> None:
    events, _ = parse_events([event(1, (U, ())), event(2, (U, ()), user=None, app="Contoso Sync")])
    for found in (*(attribute([e], [Wanted("user", U)]).of("user", U).changed_by for e in events), Untraced.UNKNOWN):
        assert by_from_document(json.loads(json.dumps(by_document(found)))) == found


def test_commit_message_lines_name_the_distinct_actors_newest_first() -> None:
    events, _ = parse_events(
        [
            event(1, (U, ())),
            event(2, (U, ())),
            event(3, (U, ()), user=None, app="Contoso Sync"),
            event(4, (G, ()), user="eve\x1b[31m@contoso.com"),
        ]
    )
    found = actors_of_changes(events, [("user", U, "Alice"), ("group", G, None), ("user", BREAK_GLASS, None)])
    assert [len(o.actors) for o in found] == [2, 1, 0]
    assert found[0].line == (
        f"user {U} (Alice): app Contoso Sync (2026-11-21 10:03Z), mallory@contoso.com (2026-11-21 10:02Z)"
    )
    assert "\x1b" not in found[1].line and "eve\\x1b[31m@contoso.com" in found[1].line
    assert found[2].line.endswith(": not in the audit log")


# -- the actor filter in a real browser ---------------------------------------------------------------------


def test_the_actor_filter_narrows_the_objects_in_a_browser(three_changes: tuple[Path, str], tmp_path: Path) -> None:
    for path in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        if not shutil.which(path):
            skip_or_fail(f"{path} is not installed (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select
    except ImportError:
        skip_or_fail("selenium is not installed (pip install '.[test]')")
    repo, url = three_changes
    page = tmp_path / "report.html"
    page.write_text(diff(repo, url, "html").stdout, encoding="utf-8")
    options = webdriver.ChromeOptions()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1600"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(page.as_uri())
        Select(driver.find_element(By.ID, "actor-filter")).select_by_value("app Contoso Sync")
        shown = [el.get_attribute("data-id") for el in driver.find_elements(By.CSS_SELECTOR, "section.obj")]
        visible = [
            el.get_attribute("data-id")
            for el in driver.find_elements(By.CSS_SELECTOR, "section.obj")
            if el.is_displayed()
        ]
        assert LARS in shown and visible == [LARS]
        assert driver.find_element(By.ID, "shown-count").text.startswith("1 of ")
    finally:
        driver.quit()


def test_only_a_few_guids_go_into_the_audit_filter() -> None:
    from entra_gitops.graph.audit import MAX_FILTERED_IDS, id_filter, time_filter

    assert id_filter({U.upper()}) == f"targetResources/any(t: t/id eq '{U}')"
    assert id_filter({U, G}) == f"(targetResources/any(t: t/id eq '{U}') or targetResources/any(t: t/id eq '{G}'))"
    assert id_filter({U, "x') or true or ('"}) is None  # not a GUID: matched after the read, never sent
    many = {f"00000000-0000-4000-8000-{i:012d}" for i in range(MAX_FILTERED_IDS + 1)}
    assert id_filter(many) is None
    assert time_filter(T0) == "activityDateTime ge 2026-11-21T10:00:00Z"


def test_the_snapshot_commit_says_who_changed_each_object(three_changes: tuple[Path, str]) -> None:
    repo, url = three_changes
    result = run_main("snapshot", "--repo", repo, "--graph-url", url)
    assert result.returncode == 0, result.stderr
    message = git(repo, "log", "-1", "--format=%B")
    lines = {line.split(" (")[0].removeprefix("- "): line for line in message.splitlines() if line.startswith("- ")}
    assert "Changed by (directory audit log):" in message
    assert "mallory@contoso.com (20" in lines[f"user {INGRID}"]
    assert "Contoso Sync" in lines[f"user {LARS}"]
    assert lines[f"user {BREAK_GLASS}"].endswith(": not in the audit log")
    # git blame of a file answers "who" as well: its last commit says it.
    blamed = git(repo, "log", "-1", "--format=%B", "--", f"tenant-state/users/{INGRID}.yaml")
    assert "mallory@contoso.com" in blamed


def test_a_snapshot_without_audit_log_read_all_says_unknown_once(three_changes: tuple[Path, str]) -> None:
    repo, url = three_changes
    reads = [p for p, _ in permissions_for(REGISTRY, Job.SNAPSHOT)]
    assert "AuditLog.Read.All" not in reads
    token = jwt(appid=SYNC_APP, app_displayname="Reader", roles=reads)
    result = run_main("snapshot", "--repo", repo, "--graph-url", url, env={ENV_LOCAL_TOKEN: token})
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("AuditLog.Read.All") == 1
    assert "Changed by: unknown (audit log not readable)" in git(repo, "log", "-1", "--format=%B")


def test_a_soft_deleted_object_is_one_line_of_the_commit_message(repo: Path, tenant: tuple[str, Emulator]) -> None:
    url, _ = tenant
    send(url, user_token(), "DELETE", f"users/{LARS}")
    result = run_main("snapshot", "--repo", repo, "--graph-url", url)
    assert result.returncode == 0, result.stderr
    lines = [line for line in git(repo, "log", "-1", "--format=%B").splitlines() if LARS in line]
    assert len(lines) == 1 and "mallory@contoso.com" in lines[0]
