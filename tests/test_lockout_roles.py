"""The lockout guard's role rules, in process: a break-glass account keeps every directory role it holds live, and
Global Administrator keeps a holder who can sign in, as the state a plan leaves has it (tests/test_safety.py has
the Conditional Access part)."""

from __future__ import annotations

from types import MappingProxyType

from test_safety import (
    BG01,
    BG02,
    BLOCK,
    BREAK_GLASS,
    GROUPS,
    KARI,
    POLICIES,
    REGISTRY,
    USERS,
    edit,
    judge,
    members,
    plan_for,
    policy_users,
    put,
    steps,
    without,
)

from entra_gitops.model.frozen import freeze
from entra_gitops.model.settings import BreakGlassEntry
from entra_gitops.model.tenant import Lifecycle, ObjectState, SourceKind, TenantState
from entra_gitops.recovery.lockout import lockouts, resolve_accounts
from entra_gitops.recovery.plan import Guard, PlanOptions
from entra_gitops.recovery.safety import Assessment
from entra_gitops.recovery.simulate import after_plan
from entra_gitops.report.diff import ReportScope

ASSIGNMENT = "unifiedRoleAssignment"
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
SECURITY_ADMIN = "194ae4cb-b126-40b2-bd5b-6091b380977d"
HELPDESK_ADMIN = "729827e3-9c14-49f7-bb1b-9608f156bbb8"
SIRI = USERS["Siri Johansen"]
PRIVILEGED = GROUPS["Entra Privileged Admins"]  # role-assignable: holds Security Administrator
CA001 = POLICIES["CA001 - Require MFA for all users"]
CA003 = POLICIES["CA003 - Phishing-resistant MFA for administrators"]
BG01_UPN = "breakglass01@contoso.onmicrosoft.com"
BG02_UPN = "breakglass02@contoso.onmicrosoft.com"


def ga_assignment(state: TenantState, principal: str) -> str:
    """The id of the demo's direct Global Administrator assignment to `principal`."""
    (found,) = (
        a.id
        for a in state.of_type(ASSIGNMENT)
        if a.data["principalId"] == principal and a.data["roleDefinitionId"] == GLOBAL_ADMIN
    )
    return found


def assign(state: TenantState, assignment_id: str, principal: str, role: str, scope: str = "/") -> TenantState:
    """`state` with one more role assignment."""
    data = {"id": assignment_id, "principalId": principal, "roleDefinitionId": role, "directoryScopeId": scope}
    return put(state, ObjectState(ASSIGNMENT, assignment_id, Lifecycle.ACTIVE, freeze(data)))


def without_ga(state: TenantState, *principals: str) -> TenantState:
    """`state` without the direct Global Administrator assignments of `principals`."""
    return without(state, *((ASSIGNMENT, ga_assignment(state, p)) for p in principals))


def joined(state: TenantState, group_id: str, *ids: str) -> TenantState:
    """`state` with `ids` added to the group's members."""
    return members(state, group_id, *state.get("group", group_id).data.get("members", ()), *ids)


def locked(assessment: Assessment) -> list[str]:
    return [r.message for r in assessment.refusals if r.guard is Guard.LOCKOUT]


def harmless(live: TenantState) -> tuple[TenantState, TenantState]:
    """A backup and a live tenant that differ by one department: the plan changes nothing the guard counts."""
    return live, edit(live, "user", KARI, department="Procurement")


# -- rule A: a break-glass account keeps its roles --------------------------------------------------------------


def test_deleting_a_break_glass_accounts_global_administrator_assignment_is_refused(demo: TenantState) -> None:
    assignment = ga_assignment(demo, BG01)
    desired = without(demo, (ASSIGNMENT, assignment))
    plan = plan_for(desired, demo, kind=SourceKind.DESIRED, options=PlanOptions(allow_delete=True))
    assert steps(plan) == [("delete", ASSIGNMENT, assignment)]
    assessment = judge(plan, desired, demo, break_glass=BREAK_GLASS)
    (refusal,) = assessment.refusals
    assert (refusal.guard, refusal.type_name, refusal.object_id) == (Guard.LOCKOUT, ASSIGNMENT, assignment)
    assert refusal.message == (
        f"the plan would take directory role 'Global Administrator' ({GLOBAL_ADMIN}) at tenant scope '/' away from "
        f"break-glass account {BG01_UPN} ({BG01}), which holds it live through role assignment {assignment}"
    )
    assert assessment.blocks_saving
    assert assessment.remaining(force=True) == (refusal,)  # --force never takes a lockout
    assert assessment.remaining(allow_lockout=True) == ()


def test_removing_the_account_from_the_role_assignable_group_it_holds_a_role_through_is_refused(
    demo: TenantState,
) -> None:
    live = joined(demo, PRIVILEGED, BG01)
    plan = plan_for(demo, live, scope=ReportScope(("group",)))
    assert steps(plan) == [("removeLink", "group", PRIVILEGED)]
    (message,) = locked(judge(plan, demo, live, break_glass=BREAK_GLASS))
    (assignment,) = (a.id for a in demo.of_type(ASSIGNMENT) if a.data["principalId"] == PRIVILEGED)
    assert f"directory role 'Security Administrator' ({SECURITY_ADMIN})" in message
    assert f"break-glass account {BG01_UPN}" in message
    assert message.endswith(f"role assignment {assignment} to group 'Entra Privileged Admins' ({PRIVILEGED})")


def test_soft_deleting_the_group_it_holds_a_role_through_is_refused(demo: TenantState) -> None:
    live = joined(demo, PRIVILEGED, BG01)
    desired = without(live, ("group", PRIVILEGED))
    plan = plan_for(desired, live, kind=SourceKind.DESIRED)
    assert steps(plan) == [("softDelete", "group", PRIVILEGED)]
    (message,) = locked(judge(plan, desired, live, break_glass=BREAK_GLASS))
    assert "'Security Administrator'" in message and BG01_UPN in message


def test_a_role_the_account_still_holds_another_way_is_not_taken(demo: TenantState) -> None:
    # Live, breakglass01 holds Global Administrator directly and through the group; the plan removes only the first.
    live = joined(assign(demo, "ga-to-group", PRIVILEGED, GLOBAL_ADMIN), PRIVILEGED, BG01)
    desired = without_ga(live, BG01)
    plan = plan_for(desired, live, kind=SourceKind.DESIRED, options=PlanOptions(allow_delete=True))
    assert steps(plan) == [("delete", ASSIGNMENT, ga_assignment(live, BG01))]
    assert locked(judge(plan, desired, live, break_glass=BREAK_GLASS)) == []


def test_a_removed_assignment_the_plan_re_creates_is_held_after_it(demo: TenantState) -> None:
    assignment = ga_assignment(demo, BG01)
    live = without(demo, (ASSIGNMENT, assignment))
    plan = plan_for(demo, live)
    assert steps(plan) == [("create", ASSIGNMENT, assignment)]
    assert after_plan(REGISTRY, live, plan.writes, demo).get(ASSIGNMENT, assignment) is not None
    assert judge(plan, demo, live, break_glass=BREAK_GLASS).refusals == ()


# -- rule B: Global Administrator keeps a holder who can sign in -----------------------------------------------


def test_leaving_global_administrator_only_with_a_disabled_user_is_refused(demo: TenantState) -> None:
    # breakglass01 (the configured account) holds no role here, so only rule B can refuse.
    live = without_ga(demo, BG01, SIRI)
    desired = edit(live, "user", BG02, accountEnabled=False)
    plan = plan_for(desired, live, kind=SourceKind.DESIRED)
    assessment = judge(plan, desired, live, break_glass=BREAK_GLASS)
    (refusal,) = assessment.refusals
    assert (refusal.guard, refusal.type_name, refusal.object_id) == (
        Guard.LOCKOUT,
        "unifiedRoleDefinition",
        GLOBAL_ADMIN,
    )
    assert refusal.message == (
        f"directory role 'Global Administrator' ({GLOBAL_ADMIN}) at tenant scope '/' would have no usable holder: "
        f"no holder can sign in ({BG02_UPN} ({BG02}): account disabled)"
    )
    assert assessment.remaining(allow_lockout=True) == ()


def test_a_policy_that_blocks_every_remaining_holder_is_refused(demo: TenantState) -> None:
    live = without_ga(demo, BG01)
    desired = policy_users(live, BLOCK, includeUsers=["All"], excludeUsers=[BG01])
    plan = plan_for(desired, live, kind=SourceKind.DESIRED)
    (message,) = locked(judge(plan, desired, live, break_glass=BREAK_GLASS))
    assert message.startswith(f"directory role 'Global Administrator' ({GLOBAL_ADMIN})")
    blocks = f"Conditional Access policy 'CA004 - Block access outside allowed countries' ({BLOCK}) blocks it"
    assert f"{BG02_UPN} ({BG02}): {blocks}" in message
    assert f"({SIRI}): " in message


def test_the_same_gap_already_live_is_a_warning_only(demo: TenantState) -> None:
    live = policy_users(without_ga(demo, BG01), BLOCK, includeUsers=["All"], excludeUsers=[BG01])
    source, live = harmless(live)
    assessment = judge(plan_for(source, live), source, live, break_glass=BREAK_GLASS)
    assert assessment.refusals == ()
    (warning,) = assessment.warnings
    assert warning.startswith(
        "already true before this plan, and not changed by it: directory role 'Global Administrator'"
    )


def test_a_holder_through_a_role_assignable_group_counts(demo: TenantState) -> None:
    # Global Administrator is held only through the group, and breakglass02 (excluded from every policy) is in it.
    live = joined(assign(without_ga(demo, BG01, BG02, SIRI), "ga-to-group", PRIVILEGED, GLOBAL_ADMIN), PRIVILEGED, BG02)
    source, changed = harmless(live)
    assert judge(plan_for(source, changed), source, changed, break_glass=BREAK_GLASS).refusals == ()
    backup = joined(assign(without_ga(demo, BG01, BG02, SIRI), "ga-to-group", PRIVILEGED, GLOBAL_ADMIN), PRIVILEGED)
    plan = plan_for(backup, live, scope=ReportScope(("group",)))
    assert steps(plan) == [("removeLink", "group", PRIVILEGED)]
    (message,) = locked(judge(plan, backup, live, break_glass=BREAK_GLASS))
    assert message.startswith("directory role 'Global Administrator'")


def test_a_holder_meets_only_what_its_break_glass_entry_satisfies(demo: TenantState) -> None:
    # Without its exclusions, CA001 asks every user for MFA; breakglass01 can give it, nobody else is known to.
    desired = policy_users(demo, CA001, includeUsers=["All"])
    plan = plan_for(desired, demo, kind=SourceKind.DESIRED)
    able = (BreakGlassEntry(BG01_UPN, frozenset({"mfa"})),)
    assert locked(judge(plan, desired, demo, break_glass=able)) == []
    unable = locked(judge(plan, desired, demo, break_glass=BREAK_GLASS))
    assert len(unable) == 2 and unable[1].startswith("directory role 'Global Administrator'")
    assert "Conditional Access policy 'CA001 - Require MFA for all users'" in unable[1] and "requires mfa" in unable[1]


# -- failing closed, and what passes ----------------------------------------------------------------------------


def test_role_assignments_not_read_are_refused(demo: TenantState) -> None:
    objects = MappingProxyType({k: v for k, v in demo.objects.items() if k[0] != ASSIGNMENT})
    unread = TenantState(objects, demo.types - {ASSIGNMENT})
    source, live = harmless(unread)
    assessment = judge(plan_for(source, live), source, live, break_glass=BREAK_GLASS)
    (refusal,) = assessment.refusals
    assert (refusal.guard, refusal.type_name, refusal.override) == (Guard.LOCKOUT, ASSIGNMENT, "--allow-lockout")
    assert refusal.message == (
        "the lockout guard cannot check roles: unifiedRoleAssignment not read, so it cannot tell whether the plan "
        "takes a directory role from a break-glass account or leaves directory role 'Global Administrator' "
        f"({GLOBAL_ADMIN}) without a holder who can sign in"
    )
    # Without break-glass accounts the guard does not run, and nothing needs the assignments.
    assert judge(plan_for(source, live), source, live).refusals == ()


def test_a_harmless_plan_passes(demo: TenantState) -> None:
    source, live = harmless(demo)
    assert judge(plan_for(source, live), source, live, break_glass=BREAK_GLASS) == Assessment()


# -- Conditional Access by the roles an account really holds -----------------------------------------------------


def test_a_policy_on_a_role_reaches_the_account_only_when_it_holds_the_role(demo: TenantState) -> None:
    (account,), _ = resolve_accounts(((BG01_UPN, frozenset()),), demo)
    holds = policy_users(demo, CA003, includeRoles=[GLOBAL_ADMIN])
    (lock,) = lockouts(holds, (account,))
    assert lock.through == (
        f"through directory role 'Global Administrator' ({GLOBAL_ADMIN}), held by role assignment "
        f"{ga_assignment(demo, BG01)}"
    )
    assert lockouts(policy_users(demo, CA003, includeRoles=[HELPDESK_ADMIN]), (account,)) == ()
    # Through a role-assignable group, the group is named.
    grouped = joined(policy_users(demo, CA003, includeRoles=[SECURITY_ADMIN]), PRIVILEGED, BG01)
    (lock,) = lockouts(grouped, (account,))
    assert lock.through.endswith(f"to group 'Entra Privileged Admins' ({PRIVILEGED})")
    # Without the assignments read, every included role is still assumed held.
    helpdesk = policy_users(demo, CA003, includeRoles=[HELPDESK_ADMIN])
    objects = MappingProxyType({k: v for k, v in helpdesk.objects.items() if k[0] != ASSIGNMENT})
    (lock,) = lockouts(TenantState(objects, demo.types - {ASSIGNMENT}), (account,))
    assert "roles are not read: assumed held" in lock.through
