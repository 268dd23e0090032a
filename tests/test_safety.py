"""The pure core of recovery, in process: build_plan, the steps it makes, the state they leave, and every guard.

States start from the demo tenant as the product reads it (conftest.demo_state) and are edited by hand, so each
test says exactly which difference it is about.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any

import pytest
from conftest import demo_seed

from entra_gitops.model.frozen import freeze, thaw
from entra_gitops.model.ids import graph_path
from entra_gitops.model.registry import Registry, default_registry
from entra_gitops.model.settings import BreakGlassEntry, Protected, SafetySettings
from entra_gitops.model.tenant import Lifecycle, ObjectState, SourceKind, TenantState
from entra_gitops.recovery.plan import Guard, Plan, PlanOptions, build_plan
from entra_gitops.recovery.safety import Assessment, Context, assess, resolve_protected
from entra_gitops.recovery.simulate import after_plan
from entra_gitops.recovery.steps import Request, Step, StepError, Write, check_step, derive_request
from entra_gitops.report.diff import Action, Blocker, ReportScope, difference_report

REGISTRY = default_registry()
SEED = demo_seed()
USERS = {u["displayName"]: u["id"] for u in SEED["users"]}
GROUPS = {g["displayName"]: g["id"] for g in SEED["groups"]}
POLICIES = {p["displayName"]: p["id"] for p in SEED["identity/conditionalAccess/policies"]}
BG01, BG02 = USERS["Break Glass Admin 01"], USERS["Break Glass Admin 02"]
KARI, PER, SOFIA, LARS = USERS["Kari Nordmann"], USERS["Per Aas"], USERS["Sofia Andersson"], USERS["Lars Haugen"]
HENRIK = USERS["Henrik Strand"]  # in Engineering, not in SG-Finance
NORA = USERS["Nora Bakken"]  # in Engineering
BLOCK = POLICIES["CA004 - Block access outside allowed countries"]
EXCLUSIONS, ENGINEERING, FINANCE = GROUPS["SG-CA-Exclusions-BreakGlass"], GROUPS["Engineering"], GROUPS["SG-Finance"]
HR_PORTAL = next(sp["id"] for sp in SEED["servicePrincipals"] if sp["displayName"] == "Contoso HR Portal")
BREAK_GLASS = (BreakGlassEntry("breakglass01@contoso.onmicrosoft.com", frozenset()),)


# -- editing states by hand ------------------------------------------------------------------------


def edit(tenant: TenantState, type_name: str, object_id: str, **changes: Any) -> TenantState:
    """`tenant` with some properties of one object set (None removes one)."""
    obj = tenant.get(type_name, object_id)
    assert obj is not None, (type_name, object_id)
    data = dict(obj.data)
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = freeze(value)
    return put(tenant, replace(obj, data=MappingProxyType(data)))


def put(state: TenantState, obj: ObjectState) -> TenantState:
    return TenantState(MappingProxyType({**state.objects, obj.key: obj}), state.types)


def soft_delete(state: TenantState, type_name: str, object_id: str) -> TenantState:
    obj = state.get(type_name, object_id)
    assert obj is not None
    return put(state, replace(obj, lifecycle=Lifecycle.SOFT_DELETED))


def without(state: TenantState, *keys: tuple[str, str]) -> TenantState:
    return TenantState(MappingProxyType({k: v for k, v in state.objects.items() if k not in keys}), state.types)


def without_type(state: TenantState, type_name: str) -> TenantState:
    return TenantState(MappingProxyType({k: v for k, v in state.objects.items() if k[0] != type_name}), state.types)


def new_user(object_id: str, upn: str, name: str) -> ObjectState:
    data = {
        "id": object_id,
        "accountEnabled": True,
        "displayName": name,
        "userPrincipalName": upn,
        "userType": "Member",
    }
    return ObjectState("user", object_id, Lifecycle.ACTIVE, freeze(data))


def policy_users(state: TenantState, policy_id: str, **users: Any) -> TenantState:
    """`state` with the policy's conditions.users replaced by `users`."""
    policy = state.get("conditionalAccessPolicy", policy_id)
    assert policy is not None
    conditions = thaw(policy.data["conditions"])
    conditions["users"] = users
    return edit(state, "conditionalAccessPolicy", policy_id, conditions=conditions)


def members(state: TenantState, group_id: str, *ids: str) -> TenantState:
    return edit(state, "group", group_id, members=sorted(ids))


def plan_for(
    source: TenantState,
    live: TenantState,
    *,
    kind: SourceKind = SourceKind.BACKUP,
    options: PlanOptions | None = None,
    scope: ReportScope | None = None,
    registry: Registry = REGISTRY,
) -> Plan:
    scope = scope or ReportScope()
    options = options or PlanOptions()
    report = difference_report(registry, source, live, backup_name="backup/test", against_name="live", scope=scope)
    return build_plan(
        registry, report, source, live, tool="test", tenant=None, backup_commit="0" * 40, created="now", kind=kind,
        options=options,
    )  # fmt: skip


def judge(
    plan: Plan,
    source: TenantState,
    live: TenantState,
    *,
    settings: SafetySettings | None = None,
    break_glass: tuple[BreakGlassEntry, ...] = (),
    present: frozenset[str] | None = None,
) -> Assessment:
    settings = settings or SafetySettings()
    protected, unmatched = resolve_protected(settings.protected, source, live)
    return assess(REGISTRY, plan, Context(live, source, settings, protected, unmatched, break_glass, present))


def steps(plan: Plan) -> list[tuple[str, str, str]]:
    return [(w.step.value, w.type_name, w.object_id) for w in plan.writes]


def guards(assessment: Assessment) -> set[Guard]:
    return {r.guard for r in assessment.refusals}


# -- build_plan ----------------------------------------------------------------------------------------


def test_a_plan_orders_its_steps_and_derives_each_request(demo: TenantState) -> None:
    live = soft_delete(edit(demo, "user", KARI, department="Procurement"), "user", PER)
    live = members(live, FINANCE, *demo.get("group", FINANCE).data["members"], HENRIK)
    live = put(live, new_user("00000000-0000-4000-8000-00000000abcd", "new@contoso.com", "New"))
    plan = plan_for(demo, live)
    assert steps(plan) == [
        ("restore", "user", PER),
        ("update", "user", KARI),
        ("removeLink", "group", FINANCE),
        ("softDelete", "user", "00000000-0000-4000-8000-00000000abcd"),
    ]
    restore, update, unlink, delete = plan.writes
    assert restore.request == Request("POST", f"directory/deletedItems/{PER}/restore")
    assert update.request == Request(
        "PATCH", f"users/{KARI}", {"department": demo.get("user", KARI).data["department"]}
    )
    assert update.changes == (("department", "Procurement", demo.get("user", KARI).data["department"]),)
    assert unlink.request == Request("DELETE", f"groups/{FINANCE}/members/{HENRIK}/$ref")
    assert (unlink.link, unlink.target) == ("members", HENRIK)
    assert delete.request == Request("DELETE", "users/00000000-0000-4000-8000-00000000abcd")
    assert all(len(w.fingerprint) == 64 for w in plan.writes)


def test_a_restore_frees_a_key_taken_after_the_backup_first(demo: TenantState) -> None:
    upn = demo.get("user", SOFIA).data["userPrincipalName"]
    newcomer = "00000000-0000-4000-8000-0000000000aa"
    live = put(soft_delete(demo, "user", SOFIA), new_user(newcomer, upn.upper(), "Sofia A."))
    plan = plan_for(demo, live)
    assert steps(plan)[:2] == [("softDelete", "user", newcomer), ("restore", "user", SOFIA)]


def test_a_restore_whose_key_a_backed_up_object_holds_is_reported_not_planned(demo: TenantState) -> None:
    per_upn = demo.get("user", PER).data["userPrincipalName"]
    live = edit(soft_delete(demo, "user", PER), "user", KARI, userPrincipalName=per_upn)
    plan = plan_for(demo, live)
    assert ("restore", "user", PER) not in steps(plan)
    assert ("update", "user", KARI) in steps(plan)  # Kari's own name goes back
    (reason,) = [s.reason for s in plan.skipped if s.object_id == PER]
    assert f"held by user 'Kari Nordmann' ({KARI}), which the backup holds too" in reason


def test_a_holder_outside_the_plan_blocks_the_restore(demo: TenantState) -> None:
    upn = demo.get("user", SOFIA).data["userPrincipalName"]
    newcomer = "00000000-0000-4000-8000-0000000000aa"
    live = put(soft_delete(demo, "user", SOFIA), new_user(newcomer, upn, "Sofia A."))
    plan = plan_for(demo, live, scope=ReportScope((), (SOFIA,)))
    assert plan.writes == ()
    assert "include that object in the plan" in plan.skipped[0].reason


def test_relationships_come_back_with_a_restore_and_are_never_re_created_twice(demo: TenantState) -> None:
    assignments = [o for o in demo.of_type("appRoleAssignment") if o.data["resourceId"] == HR_PORTAL]
    grants = [o for o in demo.of_type("oauth2PermissionGrant") if o.data["clientId"] == HR_PORTAL]
    assert assignments and grants
    live = without(soft_delete(demo, "servicePrincipal", HR_PORTAL), *(o.key for o in assignments + grants))
    report = difference_report(REGISTRY, demo, live, backup_name="b", against_name="live")
    for obj in assignments + grants:
        change = next(c for c in report.changes if c.id == obj.id)
        assert (change.action, change.blocker) == (Action.NONE, Blocker.COMES_BACK_WITH_RESTORE)
        assert "restoring that object brings it back" in (change.reason or "")
    plan = plan_for(demo, live)
    assert steps(plan) == [("restore", "servicePrincipal", HR_PORTAL)]


def test_a_deleted_relationship_is_re_created_and_diff_says_so(demo: TenantState) -> None:
    grant = next(o for o in demo.of_type("oauth2PermissionGrant") if o.data["consentType"] == "AllPrincipals")
    user_grant = next(o for o in demo.of_type("oauth2PermissionGrant") if o.data["consentType"] == "Principal")
    live = without(demo, grant.key, user_grant.key)
    report = difference_report(REGISTRY, demo, live, backup_name="b", against_name="live")
    actions = {c.id: (c.action, c.blocker) for c in report.changes}
    assert actions[grant.id] == (Action.RECREATE, None)
    assert actions[user_grant.id] == (Action.NONE, Blocker.NOT_IN_RECOVERY_SCOPE)
    plan = plan_for(demo, live)
    (create,) = plan.writes
    assert (create.step, create.request.method, create.request.path) == (Step.CREATE, "POST", "oauth2PermissionGrants")
    assert create.request.body["scope"] == grant.data["scope"] and "id" not in create.request.body


def test_a_relationship_whose_principal_is_gone_is_not_re_created(demo: TenantState) -> None:
    assignment = next(o for o in demo.of_type("appRoleAssignment") if o.data["principalType"] == "User")
    principal = assignment.data["principalId"]
    live = without(demo, assignment.key, ("user", principal))
    change = next(
        c for c in difference_report(REGISTRY, demo, live, backup_name="b", against_name="l").changes
        if c.id == assignment.id
    )  # fmt: skip
    assert (change.action, change.blocker) == (Action.NONE, Blocker.TARGET_GONE)


def test_permanent_deletes_only_with_allow_delete(demo: TenantState) -> None:
    assignment = demo.of_type("appRoleAssignment")[0]
    extra = replace(
        assignment, id="added-after-the-backup", data=freeze({**thaw(assignment.data), "id": "added-after-the-backup"})
    )
    live = put(demo, extra)
    without_flag = plan_for(demo, live)
    assert without_flag.writes == ()
    assert "plan with --allow-delete" in without_flag.skipped[0].reason
    with_flag = plan_for(demo, live, options=PlanOptions(allow_delete=True))
    (delete,) = with_flag.writes
    assert delete.step is Step.DELETE and delete.irreversible
    resource = assignment.data["resourceId"]
    assert delete.request == Request("DELETE", f"servicePrincipals/{resource}/appRoleAssignedTo/added-after-the-backup")


# -- steps: derived, and bound to the source ------------------------------------------------------------


def test_graph_paths_percent_encode_every_id() -> None:
    assert graph_path("users/{id}", id="a/b?c=#d") == "users/a%2Fb%3Fc%3D%23d"
    assert (
        graph_path("groups/{id}/members/{linkId}/$ref", id="g", linkId="../users") == "groups/g/members/..%2Fusers/$ref"
    )


def _update(object_id: str, name: str, now: Any, after: Any) -> Write:
    return Write(Step.UPDATE, "user", object_id, None, Request("", ""), ((name, now, after),))


def test_check_step_refuses_what_recovery_to_the_source_would_not_write(demo: TenantState) -> None:
    live = edit(demo, "user", KARI, jobTitle="Buyer")
    kari = demo.get("user", KARI).data

    def refused(write: Write, *, allow_delete: bool = False) -> str:
        with pytest.raises(StepError) as caught:
            check_step(REGISTRY, write, demo, live, allow_delete=allow_delete)
        return str(caught.value)

    check_step(REGISTRY, _update(KARI, "jobTitle", "Buyer", kari["jobTitle"]), demo, live, allow_delete=False)
    assert "the source holds" in refused(_update(KARI, "jobTitle", "Buyer", "Chief Everything"))
    assert "the source holds" in refused(_update(LARS, "accountEnabled", True, False))
    assert "not written back" in refused(_update(KARI, "onPremisesSyncEnabled", None, True))
    assert "already match" in refused(_update(KARI, "department", kari["department"], kari["department"]))
    purge = Write(Step.DELETE, "user", PER, None, Request("DELETE", f"directory/deletedItems/{PER}"))
    assert "recovery keeps it" in refused(purge, allow_delete=True)
    traversal = Write(Step.RESTORE, "user", "../../servicePrincipals", None, Request("", ""))
    assert "GUID" in refused(traversal) or "not" in refused(traversal)


def test_derive_request_never_purges_and_only_patches_recover_properties(demo: TenantState) -> None:
    erik = "ba46568c-c633-4163-ad2e-907effbb464b"  # soft-deleted in the demo tenant
    with pytest.raises(StepError, match="soft-deleted, not by a delete step"):
        derive_request(REGISTRY, Write(Step.DELETE, "user", erik, None, Request("", "")), None, demo.get("user", erik))
    with pytest.raises(StepError, match="boolean"):
        derive_request(REGISTRY, _update(KARI, "accountEnabled", True, "maybe"), demo.get("user", KARI), None)
    with pytest.raises(StepError, match="not a property recovery writes"):
        derive_request(REGISTRY, _update(KARI, "createdDateTime", None, "2020-01-01T00:00:00Z"), None, None)


# -- the state a plan leaves --------------------------------------------------------------------------------


def test_after_plan_applies_each_step_as_graph_would(demo: TenantState) -> None:
    live = soft_delete(demo, "user", PER)
    live = members(live, ENGINEERING, *[m for m in demo.get("group", ENGINEERING).data["members"] if m != NORA])
    plan = plan_for(demo, live)
    after = after_plan(REGISTRY, live, plan.writes, demo)
    assert after.get("user", PER).lifecycle is Lifecycle.ACTIVE
    assert NORA in after.get("group", ENGINEERING).data["members"]
    # Per's memberships come back with his restore, as Graph gives them back.
    for group in demo.of_type("group"):
        if PER in (group.data.get("members") or ()):
            assert PER in after.get("group", group.id).data["members"]
    gone = after_plan(REGISTRY, demo, (Write(Step.SOFT_DELETE, "user", KARI, None, Request("", "")),), demo)
    assert all(KARI not in (g.data.get("members") or ()) for g in gone.of_type("group"))


# -- thresholds, missing types and protection ----------------------------------------------------------------


def test_a_desired_state_without_users_is_refused_as_missing_then_by_the_thresholds(demo: TenantState) -> None:
    desired = without_type(demo, "user")
    present = frozenset(REGISTRY.names) - {"user"}
    plan = plan_for(desired, demo, kind=SourceKind.DESIRED)
    assert sum(1 for w in plan.writes if w.step is Step.SOFT_DELETE) == 31  # all but the synchronised one
    missing = judge(plan, desired, demo, present=present)
    assert Guard.MISSING_TYPE in guards(missing)
    (refusal,) = [r for r in missing.refusals if r.guard is Guard.MISSING_TYPE]
    assert "tenant-state/users/" in refusal.message and refusal.override == "--allow-empty user"
    assert missing.blocks_saving and missing.remaining(force=True)
    allowed = plan_for(desired, demo, kind=SourceKind.DESIRED, options=PlanOptions(allow_empty=("user",)))
    judged = judge(allowed, desired, demo, present=present)
    assert guards(judged) == {Guard.THRESHOLD, Guard.EMPTIED}
    assert any("31 of the 32 user objects live (97%)" in r.message for r in judged.refusals)
    assert any("leaves 1 of the 32 live user objects" in r.message for r in judged.refusals)
    assert judged.remaining(force=True) == ()


def test_thresholds_count_against_the_live_tenant_and_the_source(demo: TenantState) -> None:
    live = demo
    for n in range(12):
        live = put(live, new_user(f"00000000-0000-4000-8000-{n:012d}", f"n{n}@contoso.com", f"New {n}"))
    plan = plan_for(demo, live)
    assert len(plan.writes) == 12
    (refusal,) = judge(plan, demo, live).refusals
    # 12 of 44 live is 27%, under 30%; but 12 of the 32 the backup holds is 38%.
    assert refusal.guard is Guard.THRESHOLD and "12 of the 32 user objects in the source (38%)" in refusal.message
    assert judge(plan, demo, live, settings=SafetySettings(share=0.5)).refusals == ()


def test_protection_by_name_is_an_id_from_the_source_whatever_the_live_name(demo: TenantState) -> None:
    name = "CA004 - Block access outside allowed countries"
    live = edit(demo, "conditionalAccessPolicy", BLOCK, displayName="Harmless", state="disabled")
    settings = SafetySettings(protected=(Protected("conditionalAccessPolicy", None, name),))
    plan = plan_for(demo, live)
    (refusal,) = judge(plan, demo, live, settings=settings).refusals
    assert refusal.guard is Guard.PROTECTED and refusal.object_id == BLOCK and refusal.override == "--force"
    protected, _ = resolve_protected(settings.protected, demo, live)
    assert [(p.type_name, p.object_id) for p in protected] == [("conditionalAccessPolicy", BLOCK)]


def test_protection_covers_links_and_refuses_an_entry_that_matches_nothing(demo: TenantState) -> None:
    live = members(demo, FINANCE, *demo.get("group", FINANCE).data["members"], BG01)
    settings = SafetySettings(protected=(Protected("user", BG01, None),))
    (refusal,) = judge(plan_for(demo, live), demo, live, settings=settings).refusals
    assert refusal.object_id == BG01 and f"through a members change of group {FINANCE}" in refusal.message
    typo = SafetySettings(protected=(Protected("user", None, "Brake Glass Admin 01"),))
    (unmatched,) = judge(plan_for(demo, live), demo, live, settings=typo).refusals
    assert "matches no object" in unmatched.message


# -- the lockout guard ---------------------------------------------------------------------------------------


def locked(assessment: Assessment) -> list[str]:
    return [r.message for r in assessment.refusals if r.guard is Guard.LOCKOUT]


def test_a_plan_that_removes_the_break_glass_exclusion_is_refused(demo: TenantState) -> None:
    desired = policy_users(demo, BLOCK, includeUsers=["All"], excludeUsers=[BG02])
    plan = plan_for(desired, demo, kind=SourceKind.DESIRED)
    assessment = judge(plan, desired, demo, break_glass=BREAK_GLASS)
    (message,) = locked(assessment)
    assert "CA004 - Block access outside allowed countries" in message and "breakglass01" in message
    assert assessment.blocks_saving
    assert assessment.remaining(force=True) != ()  # --force never takes a lockout
    assert assessment.remaining(allow_lockout=True) == ()


def test_all_users_with_the_exclusion_is_safe_to_enable(demo: TenantState) -> None:
    live = edit(demo, "conditionalAccessPolicy", BLOCK, state="disabled")
    assert locked(judge(plan_for(demo, live), demo, live, break_glass=BREAK_GLASS)) == []
    unexcluded = policy_users(demo, BLOCK, includeUsers=["All"])
    account, role = locked(judge(plan_for(unexcluded, live), unexcluded, live, break_glass=BREAK_GLASS))
    assert account.startswith("Conditional Access policy") and "breakglass01" in account
    # It blocks every Global Administrator too, so the role rule refuses it as well.
    assert role.startswith("directory role 'Global Administrator'")


def test_a_policy_reaching_the_account_through_a_group(demo: TenantState) -> None:
    live = members(demo, FINANCE, *demo.get("group", FINANCE).data["members"], BG01)
    desired = members(
        policy_users(live, BLOCK, includeGroups=[FINANCE]), FINANCE, *live.get("group", FINANCE).data["members"]
    )
    plan = plan_for(desired, live, kind=SourceKind.DESIRED)
    (message,) = locked(judge(plan, desired, live, break_glass=BREAK_GLASS))
    assert "SG-Finance" in message


def test_a_group_membership_the_plan_adds_is_counted(demo: TenantState) -> None:
    # Live, the policy reaches Engineering, which the break-glass account is not in; the backup has it there.
    engineering = demo.get("group", ENGINEERING).data["members"]
    live = policy_users(demo, BLOCK, includeGroups=[ENGINEERING])
    source = members(policy_users(demo, BLOCK, includeGroups=[ENGINEERING]), ENGINEERING, *engineering, BG01)
    assert locked(judge(plan_for(live, live), live, live, break_glass=BREAK_GLASS)) == []
    plan = plan_for(source, live, scope=ReportScope(("group",)))
    assert steps(plan) == [("addLink", "group", ENGINEERING)]
    (message,) = locked(judge(plan, source, live, break_glass=BREAK_GLASS))
    assert "Engineering" in message


def test_disabling_or_deleting_a_break_glass_account_is_refused(demo: TenantState) -> None:
    disabled = edit(demo, "user", BG01, accountEnabled=False)
    plan = plan_for(disabled, demo, kind=SourceKind.DESIRED)
    assert len(locked(judge(plan, disabled, demo, break_glass=BREAK_GLASS))) == 1
    gone = without(demo, ("user", BG01))
    plan = plan_for(gone, demo, kind=SourceKind.DESIRED)
    assert len(locked(judge(plan, gone, demo, break_glass=BREAK_GLASS))) >= 1


def test_a_lockout_the_plan_did_not_cause_is_a_warning(demo: TenantState) -> None:
    live = policy_users(demo, BLOCK, includeUsers=["All"])
    broken = edit(live, "user", KARI, department="Procurement")
    plan = plan_for(live, broken)
    assessment = judge(plan, live, broken, break_glass=BREAK_GLASS)
    assert locked(assessment) == []
    assert any(w.startswith("already true before this plan") for w in assessment.warnings)


def test_an_unknown_break_glass_account_is_refused(demo: TenantState) -> None:
    entries = (BreakGlassEntry("nobody@contoso.com", frozenset()),)
    (message,) = locked(judge(plan_for(demo, demo), demo, demo, break_glass=entries))
    assert "matches no user" in message


# -- what Graph does not let recovery write ------------------------------------------------------------------


def test_a_dynamic_groups_membership_is_shown_and_never_planned(demo: TenantState) -> None:
    dynamic = GROUPS["Sales - All (Dynamic)"]
    live = members(demo, dynamic, *demo.get("group", dynamic).data.get("members", ()), KARI)
    report = difference_report(REGISTRY, demo, live, backup_name="b", against_name="l")
    (change,) = [c for c in report.changes if c.id == dynamic]
    assert [link.blocker for link in change.links] == [Blocker.DYNAMIC_MEMBERSHIP]
    plan = plan_for(demo, live)
    assert plan.writes == ()
    assert [s.reason for s in plan.skipped] == ["dynamic membership: change the rule"]


def test_a_policy_write_naming_an_object_that_is_gone_is_reported_before_apply(demo: TenantState) -> None:
    gone = "00000000-0000-4000-8000-0000000000ee"
    source = policy_users(demo, BLOCK, includeUsers=["All"], excludeUsers=[BG01, BG02], excludeGroups=[gone])
    plan = plan_for(source, demo)
    assert plan.writes == ()
    (reason,) = [s.reason for s in plan.skipped if s.object_id == BLOCK]
    assert f"it names group {gone} (conditions.users.excludeGroups), which no longer exists" in reason
    # A group that the same plan restores is no reason to hold the write back.
    restored = policy_users(demo, BLOCK, includeUsers=["All"], excludeUsers=[BG01, BG02], excludeGroups=[FINANCE])
    live = soft_delete(demo, "group", FINANCE)
    assert ("update", "conditionalAccessPolicy", BLOCK) in steps(plan_for(restored, live))


def test_a_deleted_users_rewritten_sign_in_name_is_not_a_difference() -> None:
    from entra_gitops.model.reads import GraphStats, TenantRead
    from entra_gitops.state.normalize import normalize_read

    upn = "kari.nordmann@contoso.com"
    raw = {"id": KARI, "displayName": "Kari Nordmann", "userPrincipalName": KARI.replace("-", "") + upn}
    read = TenantRead(MappingProxyType({"user": ()}), MappingProxyType({"user": (raw,)}), MappingProxyType({}),
                      GraphStats(0, 0, 0, 0, 0))  # fmt: skip
    (deleted,) = normalize_read(REGISTRY, read).state
    assert deleted.lifecycle is Lifecycle.SOFT_DELETED and deleted.data["userPrincipalName"] == upn


def test_a_named_location_a_policy_still_uses_is_not_deleted_before_the_policy_lets_go(demo: TenantState) -> None:
    location = next(o for o in demo.of_type("namedLocation") if not o.data.get("isTrusted"))
    added = replace(location, id="00000000-0000-4000-8000-00000000beef", data=freeze(
        {**thaw(location.data), "id": "00000000-0000-4000-8000-00000000beef", "displayName": "Added later"}))  # fmt: skip
    policy = demo.get("conditionalAccessPolicy", BLOCK)
    conditions = thaw(policy.data["conditions"])
    conditions["locations"] = {"includeLocations": ["All"], "excludeLocations": [added.id]}
    live = edit(put(demo, added), "conditionalAccessPolicy", BLOCK, conditions=conditions)
    # The whole plan puts the policy back first, so the location can go.
    assert steps(plan_for(demo, live))[-1] == ("softDelete", "namedLocation", added.id)
    # Without the policy in scope, Graph would refuse the delete half way: the plan says so instead.
    only = plan_for(demo, live, scope=ReportScope(("namedLocation",)))
    assert only.writes == ()
    assert "still named by 'CA004 - Block access outside allowed countries'" in only.skipped[0].reason
