"""The HTML report: built from real snapshots of the demo emulator, checked as text and in a real headless Chromium."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import skip_or_fail, take_snapshot_of

from entra_gitops.emulator import create_emulator
from entra_gitops.model.registry import default_registry
from entra_gitops.model.settings import CONFIG_FILE, DEFAULT_CONFIG_TEXT
from entra_gitops.model.tenant import TenantState
from entra_gitops.report import diff
from entra_gitops.report import view as views
from entra_gitops.report.html import SCRIPT, STYLE, render_html
from entra_gitops.state import layout
from entra_gitops.state.gitstore import StateRepo

REGISTRY = default_registry()
T0 = dt.datetime(2026, 11, 21, 23, 0, tzinfo=dt.UTC)
HOSTILE_USER = "<img src=x onerror=alert(1)>"
HOSTILE_APP = "</script><script>alert(2)</script>"
HOSTILE_RENAME = '"><svg onload=alert(3)>'
NEW_APP = "Shadow IT expenses & <b>travel</b>"
DRIFT_DEPARTMENT = "Drift Department"

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOT = Path("/tmp/report.png")


@dataclass(frozen=True)
class Drift:
    """Two real backups of the demo tenant with drift between them, and the report made from them."""

    before: TenantState
    after: TenantState
    report: diff.DifferenceReport
    view: views.ReportView
    page: str


def _load(store: StateRepo, rev: str) -> TenantState:
    return layout.load_state(REGISTRY, store.read_files(rev))


def _make_drift(app: Any) -> None:
    """Drift of every kind, made on the emulator's tenant the way an administrator's changes would land."""
    tenant = app.tenant
    users, groups = REGISTRY.get("user"), REGISTRY.get("group")
    everyone = list(tenant.objects(users).values())
    cloud = [u for u in everyone if not u.get("onPremisesSyncEnabled")]
    synced = next(u for u in everyone if u.get("onPremisesSyncEnabled"))

    tenant.update(users, cloud[0], {"department": DRIFT_DEPARTMENT})
    tenant.update(users, cloud[1], {"displayName": HOSTILE_RENAME})  # breaks out of attributes unless escaped
    tenant.delete(users, cloud[2]["id"])  # soft delete
    tenant.delete(users, cloud[3]["id"])
    tenant.purge(users, cloud[3]["id"])  # gone for good
    tenant.update(users, synced, {"jobTitle": "Changed on-premises"})
    tenant.restore(users, next(iter(tenant.deleted["user"])))

    policies = REGISTRY.get("conditionalAccessPolicy")
    policy = next(iter(tenant.objects(policies).values()))
    tenant.update(policies, policy, {"state": "disabled"})

    newcomer = tenant.create(
        users,
        {"displayName": HOSTILE_USER, "userPrincipalName": "newcomer@example.com", "accountEnabled": True},
    )
    group = next(iter(tenant.objects(groups)))
    tenant.add_link(("group", "members"), group, newcomer["id"])  # the hostile name, shown beside an id

    strengths = REGISTRY.get("authenticationStrengthPolicy")  # no soft delete: recovery would delete for good
    tenant.create(
        strengths,
        {"displayName": "Phishing-resistant, drifted", "policyType": "custom", "allowedCombinations": ["fido2"]},
    )

    apps = REGISTRY.get("application")
    tenant.create(apps, {"displayName": NEW_APP, "signInAudience": "AzureADMyOrg"})
    tenant.create(apps, {"displayName": HOSTILE_APP, "signInAudience": "AzureADMyOrg"})


@pytest.fixture(scope="module")
def drift(tmp_path_factory: pytest.TempPathFactory) -> Drift:
    root = tmp_path_factory.mktemp("html") / "state"
    store = StateRepo.open(root, create=True, initial_files={CONFIG_FILE: DEFAULT_CONFIG_TEXT.encode()})
    app = create_emulator("demo")
    first = take_snapshot_of(app, store, T0)
    _make_drift(app)
    second = take_snapshot_of(app, store, T0 + dt.timedelta(days=1))
    before, after = _load(store, first.backup.commit), _load(store, second.backup.commit)
    report = diff.difference_report(REGISTRY, before, after, backup_name=first.backup.name, against_name="live tenant")
    view = views.build_view(report, views.display_names(report, before, after))
    return Drift(before, after, report, view, render_html(view))


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text inside <script> and <style> elements."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.raw: dict[str, list[str]] = {"script": [], "style": []}
        self._in: str | None = None
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in self.raw:
            self._in = tag
            self.raw[tag].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self.raw[self._in][-1] += data

    def named(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag]

    def with_attr(self, name: str) -> list[dict[str, str | None]]:
        return [a for _, a in self.tags if name in a]


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# -- the page as text ---------------------------------------------------------------------------


def test_the_drift_covers_every_kind_of_change(drift: Drift) -> None:
    kinds = {c.kind for c in drift.report.changes}
    assert kinds == set(diff.ChangeKind)
    assert any(not c.recoverable for c in drift.report.changes)


def test_the_page_is_self_contained(drift: Drift) -> None:
    page = Elements(drift.page)
    for attr in ("src", "href", "srcset", "action", "formaction", "poster", "data"):
        assert page.with_attr(attr) == [], attr
    assert page.named("link") == [] and page.named("img") == [] and page.named("iframe") == []
    assert len(page.named("script")) == 1 and len(page.named("style")) == 1
    assert "@import" not in STYLE and "url(" not in STYLE
    assert not re.search(r"https?://", drift.page)


def test_the_content_security_policy_allows_exactly_the_pages_own_style_and_script(drift: Drift) -> None:
    page = Elements(drift.page)
    (meta,) = [m for m in page.named("meta") if m.get("http-equiv") == "Content-Security-Policy"]
    policy = {d.split()[0]: d.split()[1:] for d in (meta["content"] or "").split(";") if d.strip()}
    assert policy["default-src"] == ["'none'"]
    assert page.raw["script"] == [SCRIPT] and page.raw["style"] == [STYLE]
    assert policy["script-src"] == [_sha256(SCRIPT)]
    assert policy["style-src"] == [_sha256(STYLE)]
    assert page.with_attr("style") == []  # inline style attributes would be blocked by the policy
    assert not [a for a in page.with_attr("onclick") + page.with_attr("onerror") + page.with_attr("onload")]


def test_every_changed_object_has_its_own_section(drift: Drift) -> None:
    page = Elements(drift.page)
    sections = [a for t, a in page.tags if t == "section" and "obj" in (a.get("class") or "").split()]
    assert [(s["data-type"], s["data-kind"], s["data-id"]) for s in sections] == [
        (c.type_name, c.kind.value, c.id) for c in drift.report.changes
    ]
    assert [s["data-recoverable"] for s in sections] == [str(c.recoverable).lower() for c in drift.report.changes]
    assert len({s["id"] for s in sections}) == len(sections)
    for change in drift.report.changes:
        assert f'<code class="id">{html.escape(change.id)}</code>' in drift.page


def test_the_summary_numbers_are_the_reports_counts(drift: Drift) -> None:
    page = Elements(drift.page)
    shown = {a["data-count-kind"]: None for a in page.with_attr("data-count-kind")}
    assert set(shown) == {k.value for k in diff.ChangeKind}
    for kind in diff.ChangeKind:
        expected = sum(per_type.get(kind.value, 0) for per_type in drift.report.counts.values())
        assert re.search(rf'data-count-kind="{kind.value}">{expected}<', drift.page), kind
    for type_name in drift.report.counts:
        assert f'data-summary-type="{type_name}"' in drift.page
    assert f"{len(drift.view.rows)} of {len(drift.view.rows)} objects shown" in drift.page
    assert html.escape(drift.view.headline) in drift.page


def test_hostile_display_names_render_as_text(drift: Drift) -> None:
    page = Elements(drift.page)
    for hostile in (HOSTILE_USER, HOSTILE_APP, HOSTILE_RENAME, NEW_APP):
        assert hostile not in drift.page
        assert html.escape(hostile) in drift.page
    assert page.named("img") == [] and page.named("b") == [] and page.named("svg") == []
    assert len(page.named("script")) == 1
    # the hostile user is also named beside its id where it became a group member
    user = next(c for c in drift.report.changes if c.display_name == HOSTILE_USER)
    member = next(c for c in drift.report.changes if any(user.id in link.added for link in c.links))
    assert html.escape(HOSTILE_USER) in drift.page.split(f'data-id="{member.id}"', 1)[1].split("</section>", 1)[0]


def test_property_changes_show_before_and_after_side_by_side(drift: Drift) -> None:
    row = next(r for r in drift.view.rows if any(p.name == "department" for p in r.properties))
    section = drift.page.split(f'data-id="{row.id}"', 1)[1].split("</section>", 1)[0]
    assert re.search(
        r'<tr data-property="department" data-recoverable="true">.*?<td class="before">.*?\(none\).*?</td>'
        rf'<td class="after"><code>{DRIFT_DEPARTMENT}</code></td>',
        section,
    )
    policy = next(r for r in drift.view.rows if r.type_name == "conditionalAccessPolicy")
    section = drift.page.split(f'data-id="{policy.id}"', 1)[1].split("</section>", 1)[0]
    assert '<code>enabled</code></td><td class="after"><code>disabled</code>' in section
    assert "Recovery would write the backup&#x27;s values back" in section


def test_structured_values_are_indented_json_with_the_changed_lines_marked() -> None:
    prop = views.PropertyRow(
        "conditions",
        views.format_value({"users": {"includeUsers": ["All"]}, "clientAppTypes": ["all"]}),
        views.format_value({"users": {"includeUsers": ["All"]}, "clientAppTypes": ["browser"]}),
        True,
        None,
        None,
        {"users": {"includeUsers": ["All"]}, "clientAppTypes": ["all"]},
        {"users": {"includeUsers": ["All"]}, "clientAppTypes": ["browser"]},
    )
    row = views.ObjectRow(
        "~",
        "conditionalAccessPolicy",
        "p1",
        "CA",
        "modified",
        "modified",
        "update",
        "write",
        True,
        None,
        None,
        (prop,),
        (),
    )
    view = views.ReportView("backup/a", "b", "all", (), (), 1, (row,), (), (0,) * 6, 1)
    page = render_html(view)
    assert page.count("<pre>") == 2
    assert '<span class="ln del">    &quot;all&quot;</span>' in page
    assert '<span class="ln ins">    &quot;browser&quot;</span>' in page
    assert '<span class="ln">  &quot;users&quot;: {</span>' in page


def test_links_show_names_beside_ids_and_not_recoverable_ones_say_why(drift: Drift) -> None:
    rows = [r for r in drift.view.rows if r.links]
    assert rows
    for row in rows:
        section = drift.page.split(f'data-id="{row.id}"', 1)[1].split("</section>", 1)[0]
        for link in row.links:
            for object_id, name in link.added + link.removed:
                named = f'<span class="name">{html.escape(name)}</span> ' if name else ""
                assert f'{named}<code class="muted">{html.escape(object_id)}</code>' in section
            if not link.recoverable:
                assert f"not recoverable — {html.escape(link.note or '')}" in section


def test_not_recoverable_objects_say_why(drift: Drift) -> None:
    for row in drift.view.rows:
        section = drift.page.split(f'data-id="{row.id}"', 1)[1].split("</section>", 1)[0]
        if row.recoverable:
            assert 'class="recovery yes' in section and html.escape(row.action_label) in section
        else:
            assert 'class="recovery no"' in section and html.escape(row.note or "") in section


def test_a_recovery_that_cannot_be_undone_is_marked(drift: Drift) -> None:
    rows = [r for r in drift.view.rows if r.action == diff.Action.DELETE.value]
    assert [r.type_name for r in rows] == ["authenticationStrengthPolicy"]
    section = drift.page.split(f'data-id="{rows[0].id}"', 1)[1].split("</section>", 1)[0]
    assert 'class="recovery yes irreversible"' in section
    assert html.escape(rows[0].action_label) in section


def test_an_empty_report_shows_no_differences(drift: Drift) -> None:
    report = diff.difference_report(REGISTRY, drift.before, drift.before, backup_name="backup/x", against_name="now")
    page = render_html(views.build_view(report))
    assert report.empty
    assert 'id="no-differences"' in page and "No differences" in page
    assert 'class="obj"' not in page and 'id="filters"' not in page
    assert f"{report.compared} objects compared" in page


def test_rendering_is_pure_and_repeatable(drift: Drift) -> None:
    assert render_html(drift.view) == drift.page


# -- the page in a real browser -----------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).exists() and shutil.which(path)):
            skip_or_fail(f"{path} is not installed (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        skip_or_fail("selenium is not installed (pip install '.[test]')")
    options = webdriver.ChromeOptions()
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1600",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser: Any, drift: Drift, tmp_path: Path) -> Any:
    """The drift report opened from a file:// URL, with the browser log drained of earlier pages."""
    path = tmp_path / "report.html"
    path.write_text(drift.page, encoding="utf-8")
    browser.get_log("browser")
    browser.get(path.as_uri())
    return browser


def _severe(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def _objects(driver: Any) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, "section.obj")


def _visible(driver: Any) -> list[tuple[str, str]]:
    return [
        (el.get_attribute("data-type"), el.get_attribute("data-id")) for el in _objects(driver) if el.is_displayed()
    ]


def _shown_count(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "shown-count").text


def test_the_page_loads_without_errors_and_shows_the_reports_numbers(page: Any, drift: Drift) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    page.save_screenshot(str(SCREENSHOT))
    assert _severe(page) == []
    with pytest.raises(NoAlertPresentException):
        page.switch_to.alert.text  # noqa: B018 - the hostile names ran no script
    assert page.find_element(By.ID, "filters").is_displayed()
    for kind in diff.ChangeKind:
        shown = page.find_element(By.CSS_SELECTOR, f'[data-count-kind="{kind.value}"]').text
        expected = sum(per_type.get(kind.value, 0) for per_type in drift.report.counts.values())
        assert int(shown) == expected, kind
    total = len(drift.report.changes)
    assert len(_visible(page)) == total
    assert _shown_count(page) == f"{total} of {total} objects shown"
    titles = [el.text for el in page.find_elements(By.CSS_SELECTOR, "section.obj h3")]
    assert {HOSTILE_USER, HOSTILE_APP, HOSTILE_RENAME} <= set(titles)


def test_a_type_filter_shows_exactly_that_types_objects(page: Any, drift: Drift) -> None:
    from selenium.webdriver.common.by import By

    total = len(drift.report.changes)
    for type_name in ("user", "application"):
        box = page.find_element(By.CSS_SELECTOR, f'#filters input[name="type"][value="{type_name}"]')
        box.find_element(By.XPATH, "..").click()  # the visible chip is the label
        assert box.is_selected()
        expected = [(c.type_name, c.id) for c in drift.report.changes if c.type_name == type_name]
        assert expected and _visible(page) == expected
        assert _shown_count(page) == f"{len(expected)} of {total} objects shown"
        box.find_element(By.XPATH, "..").click()
        assert len(_visible(page)) == total

    kind = page.find_element(By.CSS_SELECTOR, '#filters input[name="kind"][value="hardDeleted"]')
    kind.find_element(By.XPATH, "..").click()
    assert _visible(page) == [
        (c.type_name, c.id) for c in drift.report.changes if c.kind is diff.ChangeKind.HARD_DELETED
    ]
    page.find_element(By.ID, "reset").click()
    assert len(_visible(page)) == total
    assert _severe(page) == []


def test_the_search_box_filters_by_display_name_and_id(page: Any, drift: Drift) -> None:
    from selenium.webdriver.common.by import By

    total = len(drift.report.changes)
    search = page.find_element(By.ID, "search")
    target = next(c for c in drift.report.changes if c.display_name == NEW_APP)
    search.send_keys("shadow it EXPENSES")
    assert _visible(page) == [(target.type_name, target.id)]
    assert _shown_count(page) == f"1 of {total} objects shown"

    search.clear()
    search.send_keys(target.id[:13].upper())
    assert _visible(page) == [(target.type_name, target.id)]

    search.clear()
    search.send_keys("no object is called this")
    assert _visible(page) == []
    assert _shown_count(page) == f"0 of {total} objects shown"
    assert page.find_element(By.ID, "no-match").is_displayed()
    assert _severe(page) == []


def test_the_empty_report_in_the_browser(browser: Any, drift: Drift, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    report = diff.difference_report(REGISTRY, drift.after, drift.after, backup_name="backup/x", against_name="now")
    path = tmp_path / "empty.html"
    path.write_text(render_html(views.build_view(report)), encoding="utf-8")
    browser.get_log("browser")
    browser.get(path.as_uri())
    assert browser.find_element(By.ID, "no-differences").is_displayed()
    assert _severe(browser) == []
