"""build_plan in process: each kind of step it makes, their order, the fingerprint of each target and the plan's
checksum, over small edits of the demo tenant as the product reads it (no emulator, no git, no subprocess).
"""

from __future__ import annotations

import json
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import pytest
from test_safety import (
    BG01,
    BG02,
    BLOCK,
    ENGINEERING,
    FINANCE,
    GROUPS,
    HENRIK,
    KARI,
    LARS,
    NORA,
    PER,
    REGISTRY,
    USERS,
    edit,
    members,
    new_user,
    plan_for,
    policy_users,
    put,
    soft_delete,
    steps,
    without,
)

from entra_gitops.model.frozen import freeze, thaw
from entra_gitops.model.registry import Registry, Scope
from entra_gitops.model.tenant import Lifecycle, ObjectState, TenantState
from entra_gitops.recovery.plan import (
    ABSENT,
    Plan,
    PlanOptions,
    compute_checksum,
    fingerprint,
    plan_document,
    plan_from_document,
    plan_json,
)
from entra_gitops.recovery.steps import Request, Step
from entra_gitops.report.diff import Blocker, ReportScope, difference_report
from entra_gitops.state.normalize import REDACTED

KJETIL = USERS["Kjetil Berg"]  # synchronised from on-premises
SYNCED_GROUP = GROUPS["CORP-Oslo-Finance-Readers"]  # synchronised from on-premises
CUSTOM_STRENGTH = "995de142-5c3c-42b6-86b8-8c800a17d889"
METHODS = "authenticationMethodsPolicy"
NEWCOMER = "00000000-0000-4000-8000-00000000abcd"
GRAPH = "https://graph.microsoft.com/v1.0"


def reasons(plan: Plan, object_id: str) -> list[str]:
    return [s.reason for s in plan.skipped if s.object_id == object_id]


def one_write(plan: Plan) -> Any:
    (write,) = plan.writes
    return write


def copy_of(obj: ObjectState, object_id: str = NEWCOMER, **changes: Any) -> ObjectState:
    """Another object like `obj`, under `object_id`, with `changes`: one created after the backup."""
    return replace(obj, id=object_id, data=freeze({**thaw(obj.data), "id": object_id, **changes}))


def grant(state: TenantState, consent: str = "AllPrincipals") -> ObjectState:
    """The first OAuth2 permission grant of `state` with this consent type (AllPrincipals: recovery re-creates it)."""
    return next(o for o in state.of_type("oauth2PermissionGrant") if o.data["consentType"] == consent)


# -- updates: recover properties only ------------------------------------------------------------------------


def test_an_update_writes_back_only_the_recover_properties(demo: TenantState) -> None:
    kari = demo.get("user", KARI).data
    live = edit(demo, "user", KARI, department="Procurement", showInAddressList=False, createdDateTime="2030-01-01")
    (change,) = difference_report(REGISTRY, demo, live, backup_name="b", against_name="l").changes
    blockers = {p.name: p.blocker for p in change.properties}
    assert blockers == {
        "department": None,
        "showInAddressList": Blocker.TRACK_SCOPE,
        "createdDateTime": Blocker.READ_ONLY,
    }
    update = one_write(plan_for(demo, live))
    assert (update.step, update.key) == (Step.UPDATE, ("user", KARI))
    assert update.changes == (("department", "Procurement", kari["department"]),)
    assert update.request == Request("PATCH", f"users/{KARI}", {"department": kari["department"]})


def test_a_change_to_tracked_properties_alone_writes_nothing_and_says_why(demo: TenantState) -> None:
    for drift, reason in (
        ({"showInAddressList": False}, "tracked, not recovered (outside the recovery scope)"),
        ({"createdDateTime": "2030-01-01"}, "read-only in Graph"),
    ):
        plan = plan_for(demo, edit(demo, "user", KARI, **drift))
        assert plan.writes == ()
        assert reasons(plan, KARI) == [reason]


def test_a_property_the_source_lacks_is_cleared(demo: TenantState) -> None:
    kari = demo.get("user", KARI).data
    assert "faxNumber" not in kari and "otherMails" not in kari
    live = edit(demo, "user", KARI, faxNumber="+47 900 00 000", otherMails=["kari@example.com"])
    update = one_write(plan_for(demo, live))
    assert update.request.body == {"faxNumber": None, "otherMails": []}


def test_an_action_property_is_written_through_its_action_and_the_rest_by_patch(demo: TenantState) -> None:
    strength = demo.get("authenticationStrengthPolicy", CUSTOM_STRENGTH).data
    live = edit(
        demo, "authenticationStrengthPolicy", CUSTOM_STRENGTH, allowedCombinations=["fido2"], displayName="Renamed"
    )
    update, action = plan_for(demo, live).writes
    assert action.step is Step.ACTION and action.request == Request(
        "POST",
        f"policies/authenticationStrengthPolicies/{CUSTOM_STRENGTH}/updateAllowedCombinations",
        {"allowedCombinations": list(strength["allowedCombinations"])},
    )
    assert update.request == Request(
        "PATCH", f"policies/authenticationStrengthPolicies/{CUSTOM_STRENGTH}", {"displayName": strength["displayName"]}
    )


def test_a_singletons_keyed_configurations_are_patched_one_by_one(demo: TenantState) -> None:
    configurations = thaw(demo.get(METHODS, METHODS).data["authenticationMethodConfigurations"])
    sms = next(c for c in configurations if c["id"] == "Sms")
    changed = [{**c, "state": "enabled"} if c["id"] in ("Sms", "Voice") else c for c in configurations]
    writes = plan_for(demo, edit(demo, METHODS, METHODS, authenticationMethodConfigurations=changed)).writes
    assert [(w.step, w.item) for w in writes] == [(Step.UPDATE, "Sms"), (Step.UPDATE, "Voice")]
    assert writes[0].request == Request(
        "PATCH",
        "policies/authenticationMethodsPolicy/authenticationMethodConfigurations/Sms",
        {k: v for k, v in sms.items() if k != "id"},
    )


def test_a_redacted_backup_value_is_never_written(demo: TenantState) -> None:
    app = demo.of_type("application")[0]
    source = edit(demo, "application", app.id, notes=REDACTED)
    plan = plan_for(source, edit(demo, "application", app.id, notes="moved to the vault"))
    assert plan.writes == ()
    assert reasons(plan, app.id) == ["notes: the backup holds a redacted value (it looked like a secret)"]


# -- restores ----------------------------------------------------------------------------------------------


def test_a_soft_deleted_user_is_restored_then_updated_and_its_memberships_come_back_with_it(
    demo: TenantState,
) -> None:
    live = soft_delete(edit(demo, "user", PER, jobTitle="Gone"), "user", PER)
    vpn = GROUPS["VPN Users"]
    live = members(live, vpn, *[m for m in demo.get("group", vpn).data["members"] if m != PER])
    plan = plan_for(demo, live)
    assert steps(plan) == [("restore", "user", PER), ("update", "user", PER)]
    restore, update = plan.writes
    assert restore.request == Request("POST", f"directory/deletedItems/{PER}/restore")
    assert update.request.body == {"jobTitle": demo.get("user", PER).data["jobTitle"]}
    assert reasons(plan, vpn) == ["the linked object was soft-deleted: restoring it brings this link back"]


@pytest.mark.parametrize(
    ("type_name", "object_id", "path"),
    [
        ("group", FINANCE, f"directory/deletedItems/{FINANCE}/restore"),
        ("conditionalAccessPolicy", BLOCK, f"identity/conditionalAccess/deletedItems/policies/{BLOCK}/restore"),
    ],
)
def test_each_type_is_restored_where_graph_restores_it(
    demo: TenantState, type_name: str, object_id: str, path: str
) -> None:
    restore = one_write(plan_for(demo, soft_delete(demo, type_name, object_id), scope=ReportScope((type_name,))))
    assert (restore.step, restore.request) == (Step.RESTORE, Request("POST", path))


# -- links -------------------------------------------------------------------------------------------------


def test_membership_changes_are_undone_one_link_per_step(demo: TenantState) -> None:
    engineering = demo.get("group", ENGINEERING).data["members"]
    live = members(demo, ENGINEERING, *[m for m in engineering if m != NORA], KARI)
    add, remove = plan_for(demo, live).writes
    assert (add.step, add.link, add.target, add.changes) == (Step.ADD_LINK, "members", NORA, (("members", None, NORA),))
    assert add.request == Request(
        "POST", f"groups/{ENGINEERING}/members/$ref", {"@odata.id": f"{GRAPH}/directoryObjects/{NORA}"}
    )
    assert (remove.step, remove.target, remove.changes) == (Step.REMOVE_LINK, KARI, (("members", KARI, None),))
    assert remove.request == Request("DELETE", f"groups/{ENGINEERING}/members/{KARI}/$ref")


def owners_recovered() -> Registry:
    """The registry with group owners widened from `track` to `recover`, as a state repository's scope may."""
    group = REGISTRY.get("group")
    widened = tuple(replace(p, scope=Scope.RECOVER) if p.name == "owners" else p for p in group.properties)
    return Registry(tuple(replace(group, properties=widened) if t is group else t for t in REGISTRY))


def test_owners_are_tracked_so_an_owner_change_is_shown_but_never_written(demo: TenantState) -> None:
    live = edit(demo, "group", FINANCE, owners=[HENRIK])
    plan = plan_for(demo, live)
    assert plan.writes == ()
    assert reasons(plan, FINANCE) == ["tracked, not recovered (outside the recovery scope)"]
    (owner,) = demo.get("group", FINANCE).data["owners"]
    # With owners in the recovery scope, the same drift is undone through the owners relationship.
    add, remove = plan_for(demo, live, registry=owners_recovered()).writes
    assert add.request == Request(
        "POST", f"groups/{FINANCE}/owners/$ref", {"@odata.id": f"{GRAPH}/directoryObjects/{owner}"}
    )
    assert remove.request == Request("DELETE", f"groups/{FINANCE}/owners/{HENRIK}/$ref")


# -- deletes -----------------------------------------------------------------------------------------------


def test_an_object_with_soft_delete_is_soft_deleted_even_with_allow_delete(demo: TenantState) -> None:
    live = put(demo, new_user(NEWCOMER, "new@contoso.com", "New"))
    for options in (PlanOptions(), PlanOptions(allow_delete=True)):
        delete = one_write(plan_for(demo, live, options=options))
        assert (delete.step, delete.irreversible) == (Step.SOFT_DELETE, False)
        assert delete.request == Request("DELETE", f"users/{NEWCOMER}")


def test_a_type_without_soft_delete_is_deleted_only_with_allow_delete(demo: TenantState) -> None:
    strength = demo.get("authenticationStrengthPolicy", CUSTOM_STRENGTH)
    live = put(demo, copy_of(strength, displayName="New"))
    refused = plan_for(demo, live)
    assert refused.writes == () and "plan with --allow-delete" in reasons(refused, NEWCOMER)[0]
    allowed = plan_for(demo, live, options=PlanOptions(allow_delete=True))
    delete = one_write(allowed)
    assert (delete.step, delete.irreversible) == (Step.DELETE, True)
    assert delete.request == Request("DELETE", f"policies/authenticationStrengthPolicies/{NEWCOMER}")
    assert plan_document(allowed)["writes"][0]["irreversible"] is True
    assert plan_document(allowed)["options"]["allowDelete"] is True


def test_a_trusted_location_created_after_the_backup_is_not_deleted(demo: TenantState) -> None:
    trusted = next(o for o in demo.of_type("namedLocation") if o.data.get("isTrusted"))
    plan = plan_for(demo, put(demo, copy_of(trusted, displayName="New")))
    assert plan.writes == ()
    assert reasons(plan, NEWCOMER) == [
        "not deleted: marked as trusted: Graph refuses to delete it until the trusted designation is removed"
    ]


# -- synchronised objects ------------------------------------------------------------------------------------


def synced_newcomer() -> ObjectState:
    return copy_of(new_user(NEWCOMER, "new@contoso.com", "New"), onPremisesSyncEnabled=True)


@pytest.mark.parametrize(
    ("drift", "object_id"),
    [
        (lambda s: edit(s, "user", KJETIL, department="Procurement", accountEnabled=False), KJETIL),
        (lambda s: soft_delete(s, "user", KJETIL), KJETIL),
        (lambda s: members(s, SYNCED_GROUP, HENRIK), SYNCED_GROUP),
        (lambda s: put(s, synced_newcomer()), NEWCOMER),
    ],
    ids=["modified", "soft-deleted", "members", "created"],
)
def test_a_synchronised_object_is_never_written(demo: TenantState, drift: Any, object_id: str) -> None:
    plan = plan_for(demo, drift(demo))
    assert plan.writes == ()
    assert reasons(plan, object_id) == ["synchronised from on-premises: change it there"]


# -- order and references ------------------------------------------------------------------------------------


def test_restores_run_before_the_writes_that_need_them_whatever_the_report_order(demo: TenantState) -> None:
    # The report lists types alphabetically: the policy, then the groups, then the users.
    source = policy_users(demo, BLOCK, includeUsers=["All"], excludeUsers=[BG01, BG02], excludeGroups=[FINANCE])
    live = soft_delete(soft_delete(demo, "group", FINANCE), "user", PER)
    live = members(live, ENGINEERING, *[m for m in demo.get("group", ENGINEERING).data["members"] if m != NORA])
    live = put(edit(live, "user", KARI, department="Procurement"), new_user(NEWCOMER, "new@contoso.com", "New"))
    report = difference_report(REGISTRY, source, live, backup_name="b", against_name="l")
    assert [c.type_name for c in report.changes][:2] == ["conditionalAccessPolicy", "group"]
    assert steps(plan_for(source, live)) == [
        ("restore", "group", FINANCE),
        ("restore", "user", PER),
        ("update", "conditionalAccessPolicy", BLOCK),  # names SG-Finance, which the restore brings back first
        ("update", "user", KARI),
        ("addLink", "group", ENGINEERING),
        ("softDelete", "user", NEWCOMER),
    ]


def test_a_policy_naming_a_user_who_stays_deleted_is_skipped_with_the_reason(demo: TenantState) -> None:
    source = policy_users(demo, BLOCK, includeUsers=["All"], excludeUsers=[BG01, BG02, LARS])
    live = soft_delete(demo, "user", LARS)
    policy_only = plan_for(source, live, scope=ReportScope(("conditionalAccessPolicy",)))
    assert policy_only.writes == ()
    (reason,) = reasons(policy_only, BLOCK)
    assert f"it names user {LARS} (conditions.users.excludeUsers), which no longer exists" in reason
    assert steps(plan_for(source, live)) == [("restore", "user", LARS), ("update", "conditionalAccessPolicy", BLOCK)]


# -- fingerprints ------------------------------------------------------------------------------------------


def test_each_write_carries_the_fingerprint_of_its_own_target_as_it_is_live(demo: TenantState) -> None:
    recreated = grant(demo)
    live = edit(edit(demo, "user", KARI, department="Procurement"), "user", LARS, department="Procurement")
    live = without(soft_delete(edit(live, "user", PER, jobTitle="Gone"), "user", PER), recreated.key)
    plan = plan_for(demo, live)
    by_target = {w.key: w.fingerprint for w in plan.writes}
    assert set(by_target) == {("user", KARI), ("user", LARS), ("user", PER), recreated.key}
    for write in plan.writes:
        assert write.fingerprint == by_target[write.key]  # restore and update of Per share one
    assert by_target[recreated.key] == ABSENT  # re-created: the plan expects it still gone
    assert by_target[("user", KARI)] == fingerprint(live.get("user", KARI)) != fingerprint(demo.get("user", KARI))
    assert len({by_target[k] for k in (("user", KARI), ("user", LARS), ("user", PER))}) == 3


def test_a_fingerprint_moves_with_any_in_scope_change_or_lifecycle_but_not_key_order(demo: TenantState) -> None:
    kari = demo.get("user", KARI)
    assert fingerprint(kari) == fingerprint(replace(kari, data=MappingProxyType(dict(reversed(kari.data.items())))))
    moved = {
        fingerprint(kari),
        fingerprint(edit(demo, "user", KARI, jobTitle="Buyer").get("user", KARI)),
        fingerprint(edit(demo, "user", KARI, showInAddressList=False).get("user", KARI)),  # tracked counts too
        fingerprint(replace(kari, lifecycle=Lifecycle.SOFT_DELETED)),
        fingerprint(None),
    }
    assert len(moved) == 5


# -- checksum ------------------------------------------------------------------------------------------------


def plan_of_drift(demo: TenantState) -> Plan:
    """A restore, an update, an unlink and a soft delete."""
    live = soft_delete(edit(demo, "user", KARI, department="Procurement"), "user", PER)
    live = members(live, FINANCE, *demo.get("group", FINANCE).data["members"], HENRIK)
    return plan_for(demo, put(live, new_user(NEWCOMER, "new@contoso.com", "New")))


@pytest.fixture(scope="module")
def drifted_plan(demo: TenantState) -> Plan:
    return plan_of_drift(demo)


def test_the_same_plan_gets_the_same_checksum_and_survives_its_file(demo: TenantState, drifted_plan: Plan) -> None:
    document = plan_document(drifted_plan)
    assert drifted_plan.checksum.startswith("sha256:") and drifted_plan.checksum == compute_checksum(document)
    assert plan_of_drift(demo).checksum == drifted_plan.checksum  # planned again from the same states
    loaded = plan_from_document(json.loads(plan_json(drifted_plan)))
    assert loaded == drifted_plan and loaded.checksum == drifted_plan.checksum
    # The file reformatted (other indentation, keys in another order) still verifies.
    reordered = json.loads(json.dumps(dict(reversed(list(document.items())))))
    assert compute_checksum(reordered) == drifted_plan.checksum


def _tamper(document: dict[str, Any], index: int, name: str, value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(document))
    copy["writes"][index][name] = value
    return copy


@pytest.mark.parametrize(
    ("index", "name", "value"),
    [
        (1, "body", {"department": "Chosen by someone else"}),
        (1, "path", f"users/{LARS}"),
        (1, "method", "POST"),
        (1, "id", LARS),
        (1, "step", "softDelete"),
        (1, "fingerprint", "0" * 64),
        (1, "changes", [{"name": "department", "now": "Procurement", "after": "Anything"}]),
        (2, "target", KARI),
        (0, "type", "group"),
        (3, "displayName", "Someone else"),
    ],
)
def test_any_change_to_a_write_changes_the_checksum(drifted_plan: Plan, index: int, name: str, value: Any) -> None:
    document = plan_document(drifted_plan)
    assert [w["step"] for w in document["writes"]] == ["restore", "update", "removeLink", "softDelete"]
    assert document["writes"][index][name] != value
    assert compute_checksum(_tamper(document, index, name, value)) != drifted_plan.checksum


def test_dropping_or_reordering_writes_changes_the_checksum(drifted_plan: Plan) -> None:
    document = plan_document(drifted_plan)
    for writes in (document["writes"][1:], document["writes"][::-1]):
        assert compute_checksum({**document, "writes": writes}) != drifted_plan.checksum
