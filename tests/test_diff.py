"""The difference report: classification, recoverability, semantic equality, scope and its renderings."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from conftest import run_main as run_cli

from entra_gitops.cli.main import cli
from entra_gitops.graph.client import connect
from entra_gitops.model.frozen import freeze
from entra_gitops.model.registry import default_registry
from entra_gitops.model.tenant import Lifecycle, ObjectState, TenantState
from entra_gitops.report.diff import Action, Blocker, ChangeKind, DifferenceReport, ReportScope, difference_report
from entra_gitops.report.markdown import render_markdown
from entra_gitops.report.text import render_text
from entra_gitops.report.view import build_view
from entra_gitops.state.normalize import normalize_object
from entra_gitops.workflow.demo import make_drift

REGISTRY = default_registry()
ALL = frozenset(REGISTRY.names)
REPORT_SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "reports" / "difference-report.schema.json"
U1 = "11111111-1111-4111-8111-111111111111"
U2 = "22222222-2222-4222-8222-222222222222"
G1 = "33333333-3333-4333-8333-333333333333"


def obj(type_name: str, raw: dict[str, Any], lifecycle: Lifecycle = Lifecycle.ACTIVE) -> ObjectState:
    rtype = REGISTRY.get(type_name)
    links = {p.name: raw.get(p.name, ()) for p in rtype.links}
    data, _ = normalize_object(rtype, raw, links)
    return ObjectState(type_name, data["id"], lifecycle, freeze(data))


def state(*objects: ObjectState) -> TenantState:
    return TenantState.of(list(objects), ALL)


def report(before: TenantState, after: TenantState, scope: ReportScope | None = None) -> DifferenceReport:
    return difference_report(
        REGISTRY, before, after, backup_name="backup/1", against_name="now", scope=scope or ReportScope()
    )


def only(r: DifferenceReport) -> Any:
    assert len(r.changes) == 1, r.changes
    return r.changes[0]


USER = {"id": U1, "displayName": "Kari", "department": "Finance", "accountEnabled": True}


# -- classification (DESIGN's table) ----------------------------------------------------------


def test_created_after_the_backup_is_soft_deleted_by_recovery() -> None:
    change = only(report(state(), state(obj("user", USER))))
    assert (change.kind, change.action) == (ChangeKind.CREATED, Action.SOFT_DELETE)


def test_created_without_soft_delete_is_a_real_delete() -> None:
    grant = {"id": "grant-1", "clientId": U1, "consentType": "AllPrincipals", "resourceId": U2, "scope": "User.Read"}
    change = only(report(state(), state(obj("oauth2PermissionGrant", grant))))
    assert (change.kind, change.action) == (ChangeKind.CREATED, Action.DELETE)


def test_modified_recover_properties_are_written_back() -> None:
    change = only(report(state(obj("user", USER)), state(obj("user", {**USER, "department": "Sales"}))))
    assert (change.kind, change.action) == (ChangeKind.MODIFIED, Action.UPDATE)
    (prop,) = change.properties
    assert (prop.name, prop.before, prop.after, prop.recoverable) == ("department", "Finance", "Sales", True)


def test_track_and_read_only_properties_are_shown_but_not_recoverable() -> None:
    before = obj("user", {**USER, "showInAddressList": True, "creationType": None})
    after = obj("user", {**USER, "showInAddressList": False, "creationType": "Invitation"})
    change = only(report(state(before), state(after)))
    assert change.action is Action.NONE
    blockers = {p.name: p.blocker for p in change.properties}
    assert blockers == {"showInAddressList": Blocker.TRACK_SCOPE, "creationType": Blocker.READ_ONLY}


def test_soft_deleted_objects_are_restored() -> None:
    change = only(report(state(obj("user", USER)), state(obj("user", USER, Lifecycle.SOFT_DELETED))))
    assert (change.kind, change.action) == (ChangeKind.SOFT_DELETED, Action.RESTORE)


def test_restored_after_the_backup_is_soft_deleted_again() -> None:
    change = only(report(state(obj("user", USER, Lifecycle.SOFT_DELETED)), state(obj("user", USER))))
    assert (change.kind, change.action) == (ChangeKind.RESTORED, Action.SOFT_DELETE)


def test_hard_deleted_objects_are_reported_as_not_recoverable() -> None:
    change = only(report(state(obj("user", USER)), state()))
    assert (change.kind, change.action, change.blocker) == (ChangeKind.HARD_DELETED, Action.NONE, Blocker.HARD_DELETED)


def test_synchronised_objects_are_shown_and_never_recovered() -> None:
    synced = {**USER, "onPremisesSyncEnabled": True}
    change = only(report(state(obj("user", synced)), state(obj("user", {**synced, "department": "Sales"}))))
    assert (change.kind, change.action, change.blocker) == (ChangeKind.SYNCHRONIZED, Action.NONE, Blocker.SYNCHRONIZED)
    deleted = only(report(state(obj("user", synced)), state(obj("user", synced, Lifecycle.SOFT_DELETED))))
    assert deleted.action is Action.NONE


def test_links_are_listed_as_added_and_removed() -> None:
    people = (obj("user", USER), obj("user", {**USER, "id": U2, "displayName": "Per"}))
    group = {"id": G1, "displayName": "Finance", "members": [U1], "owners": [U2]}
    later = {**group, "members": [U2], "owners": []}
    change = only(report(state(obj("group", group), *people), state(obj("group", later), *people)))
    links = {link.name: (link.added, link.removed, link.blocker) for link in change.links}
    assert links == {"members": ((U2,), (U1,), None), "owners": ((), (U2,), Blocker.TRACK_SCOPE)}
    assert change.action is Action.UPDATE


def test_memberships_lost_with_a_deleted_member_are_not_written_separately() -> None:
    per = {**USER, "id": U2, "displayName": "Per"}
    group = {"id": G1, "displayName": "Finance", "members": [U1, U2]}
    before = state(obj("group", group), obj("user", USER), obj("user", per))
    soft = state(obj("group", {**group, "members": []}), obj("user", per, Lifecycle.SOFT_DELETED))
    changes = {c.type_name: c for c in report(before, soft).changes}
    blockers = {link.removed: link.blocker for link in changes["group"].links}
    assert blockers == {(U2,): Blocker.COMES_BACK_WITH_RESTORE, (U1,): Blocker.TARGET_GONE}
    assert changes["group"].action is Action.NONE  # restoring Per brings the membership back
    assert changes["user"].action is Action.RESTORE


def test_user_consented_grants_and_built_in_policies_are_not_recoverable() -> None:
    grant = {"id": "g", "clientId": U1, "consentType": "Principal", "principalId": U2, "resourceId": U1, "scope": "a"}
    change = only(
        report(
            state(obj("oauth2PermissionGrant", grant)), state(obj("oauth2PermissionGrant", {**grant, "scope": "a b"}))
        )
    )
    assert change.properties[0].blocker is Blocker.NOT_IN_RECOVERY_SCOPE
    strength = {"id": "00000000-0000-0000-0000-000000000002", "displayName": "MFA", "policyType": "builtIn"}
    renamed = only(
        report(
            state(obj("authenticationStrengthPolicy", strength)),
            state(obj("authenticationStrengthPolicy", {**strength, "displayName": "x"})),
        )
    )
    assert renamed.properties[0].blocker is Blocker.BUILT_IN


# -- semantic equality: the classic false positives -------------------------------------------

POLICY = {
    "id": G1,
    "displayName": "Require MFA",
    "state": "enabled",
    "conditions": {
        "users": {"includeUsers": ["All"], "excludeUsers": [U2, U1]},
        "applications": {"includeApplications": ["All"]},
    },
    "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
}


@pytest.mark.parametrize(
    "variant",
    [
        {
            **POLICY,
            "conditions": {**POLICY["conditions"], "users": {"includeUsers": ["All"], "excludeUsers": [U1, U2]}},
        },
        {
            **POLICY,
            "conditions": {
                **POLICY["conditions"],
                "users": {"includeUsers": ["All"], "excludeUsers": [U1.upper(), U2]},
            },
        },
        {**POLICY, "sessionControls": None},
        {**POLICY, "sessionControls": {"disableResilienceDefaults": False, "signInFrequency": None}},
        {
            **POLICY,
            "conditions": {
                **POLICY["conditions"],
                "platforms": None,
                "locations": {"includeLocations": [], "excludeLocations": []},
            },
        },
        {**POLICY, "grantControls": {**POLICY["grantControls"], "customAuthenticationFactors": [], "termsOfUse": []}},
    ],
    ids=[
        "reordered excludeUsers",
        "GUID casing",
        "null session controls",
        "false vs absent switches",
        "empty lists",
        "empty arrays",
    ],
)
def test_no_false_drift(variant: dict[str, Any]) -> None:
    assert report(state(obj("conditionalAccessPolicy", POLICY)), state(obj("conditionalAccessPolicy", variant))).empty


def test_odata_type_on_one_side_only_is_not_drift() -> None:
    location = {
        "id": G1,
        "@odata.type": "#microsoft.graph.ipNamedLocation",
        "displayName": "HQ",
        "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "10.0.0.0/8"}],
    }
    bare = {**location, "ipRanges": [{"cidrAddress": "10.0.0.0/8"}]}
    assert report(state(obj("namedLocation", location)), state(obj("namedLocation", bare))).empty


def test_a_real_change_still_shows() -> None:
    off = {**POLICY, "sessionControls": {"disableResilienceDefaults": True}}
    change = only(report(state(obj("conditionalAccessPolicy", POLICY)), state(obj("conditionalAccessPolicy", off))))
    assert change.properties[0].name == "sessionControls"


# -- scope -------------------------------------------------------------------------------------


def test_scope_by_type_and_by_any_number_of_ids() -> None:
    users = [obj("user", {**USER, "id": f"00000000-0000-4000-8000-{i:012d}"}) for i in range(300)]
    later = [obj("user", {**USER, "id": u.id, "department": "Sales"}) for u in users]
    group = obj("group", {"id": G1, "displayName": "G"})
    before, after = state(*users, group), state(*later)
    assert len(report(before, after).changes) == 301
    assert {c.type_name for c in report(before, after, ReportScope(types=("group",))).changes} == {"group"}
    wanted = tuple(u.id.upper() for u in users[:150])
    scoped = report(before, after, ReportScope(ids=wanted))
    assert len(scoped.changes) == 150
    assert "150 object id(s)" in scoped.scope.describe()


# -- renderings --------------------------------------------------------------------------------


def test_markdown_never_exceeds_githubs_limit_and_says_what_it_left_out() -> None:
    users = [
        obj("user", {**USER, "id": f"00000000-0000-4000-8000-{i:012d}", "jobTitle": "x" * 300}) for i in range(2000)
    ]
    later = [obj("user", {**USER, "id": u.id, "jobTitle": "y" * 300}) for u in users]
    text = render_markdown(build_view(report(state(*users), state(*later))))
    assert len(text) <= 65_536
    assert "more changed object(s) left out" in text
    assert "<details>" in text and "| user | 0 | 2000 |" in text


def test_text_has_terraform_symbols_and_colour_only_when_asked() -> None:
    before = state(obj("user", USER), obj("user", {**USER, "id": U2, "displayName": "Per"}))
    after = state(
        obj("user", {**USER, "department": "Sales"}),
        obj("user", {**USER, "id": U2, "displayName": "Per"}, Lifecycle.SOFT_DELETED),
        obj("group", {"id": G1, "displayName": "New"}),
    )
    view = build_view(report(before, after))
    plain = render_text(view)
    assert "~ user 'Kari'" in plain and "~ department: Finance -> Sales" in plain
    assert "< user 'Per'" in plain and "+ group 'New'" in plain
    assert "\x1b[" not in plain
    assert "\x1b[33m" in render_text(view, colour=True)
    assert plain.rstrip().endswith("3 recoverable.")


# -- the command against the demo tenant -------------------------------------------------------


@pytest.fixture
def drifted(repo: Path, served_emulator: str) -> tuple[Path, str]:
    """A backup of the demo tenant (conftest's `repo`), and the tenant drifted since through Graph."""

    async def drift() -> None:
        async with connect(served_emulator) as client:
            await make_drift(client)

    asyncio.run(drift())
    return repo, served_emulator


def test_diff_shows_every_drift_of_the_demo_with_kind_and_action(drifted: tuple[Path, str]) -> None:
    repo, url = drifted
    result = run_cli("diff", "--repo", str(repo), "--graph-url", url, "--format", "json")
    assert result.returncode == 2, result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, json.loads(REPORT_SCHEMA.read_text()))
    found = {(c["type"], c["kind"], c["action"]) for c in document["changes"]}
    assert ("conditionalAccessPolicy", "modified", "update") in found
    assert ("user", "modified", "update") in found
    assert ("user", "softDeleted", "restore") in found
    assert ("group", "modified", "update") in found
    assert ("application", "created", "softDelete") in found
    policy = next(c for c in document["changes"] if c["type"] == "conditionalAccessPolicy")
    (state,) = policy["properties"]
    assert state["changedBy"]["actor"]["displayName"] == "Emulator Administrator"  # who wrote it, from the audit log
    assert {k: v for k, v in state.items() if k != "changedBy"} == {
        "name": "state",
        "before": "enabled",
        "after": "disabled",
        "recoverable": True,
        "reason": None,
    }
    added = [link for c in document["changes"] for link in c["links"] if link["added"]]
    assert added and added[0]["added"][0]["displayName"]

    for output_format in ("text", "markdown", "html"):
        rendered = run_cli("diff", "--repo", str(repo), "--graph-url", url, "--format", output_format)
        assert rendered.returncode == 2, rendered.stderr
        assert "Quarterly Report Exporter" in rendered.stdout


def test_diff_between_two_backups_works_offline(drifted: tuple[Path, str], tmp_path: Path) -> None:
    repo, url = drifted
    assert run_cli("snapshot", "--repo", str(repo), "--graph-url", url).returncode == 0
    backups = json.loads(run_cli("backups", "--repo", str(repo), "--format", "json").stdout)
    newest, oldest = backups[0]["id"], backups[1]["id"]
    offline = ["--graph-url", "http://127.0.0.1:9/v1.0"]  # nothing listens: any Graph call would fail
    result = run_cli(
        "diff",
        "--repo",
        str(repo),
        "--backup",
        oldest,
        "--against",
        newest,
        *offline,
        "--output",
        str(tmp_path / "r.md"),
        "--format",
        "markdown",
    )
    assert result.returncode == 2, result.stderr
    assert "Quarterly Report Exporter" in (tmp_path / "r.md").read_text()
    same = run_cli("diff", "--repo", str(repo), "--backup", newest, "--against", newest, *offline)
    assert same.returncode == 0, same.stderr
    assert "No differences" in same.stdout


def test_diff_with_no_drift_exits_0(repo: Path, served_emulator: str) -> None:
    result = run_cli("diff", "--repo", str(repo), "--graph-url", served_emulator)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No differences" in result.stdout


def test_the_json_schema_names_every_kind_action_and_reason() -> None:
    schema = json.loads(REPORT_SCHEMA.read_text())
    change = schema["properties"]["changes"]["items"]["properties"]
    assert set(change["kind"]["enum"]) == {k.value for k in ChangeKind}
    assert set(change["action"]["enum"]) == {a.value for a in Action}
    assert set(change["reason"]["enum"]) == {b.value for b in Blocker} | {None}


def test_diff_errors_exit_1(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(cli, ["diff", "--repo", str(tmp_path)])
    assert missing.exit_code == 1 and "is not a git repository" in missing.output
