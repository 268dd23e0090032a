"""The guards' assessment in process: where the thresholds start refusing, what counts towards them, what each
override takes, and the warnings a reviewer reads (tests/test_safety.py has each guard's refusals).
"""

from __future__ import annotations

from types import MappingProxyType

import pytest
from test_plan_core import copy_of
from test_safety import BREAK_GLASS, GROUPS, USERS, edit, judge, members, plan_for, put, soft_delete

from entra_gitops.model.settings import SafetySettings
from entra_gitops.model.tenant import TenantState
from entra_gitops.recovery.plan import Guard, PlanOptions, Refusal
from entra_gitops.recovery.safety import Assessment
from entra_gitops.report.diff import ReportScope

# Users the demo holds that recovery may write (not synchronised, not the break-glass accounts), in a fixed order.
WRITABLE = [i for name, i in sorted(USERS.items()) if name != "Kjetil Berg" and "Break Glass" not in name]


def moved(state: TenantState, count: int) -> TenantState:
    """`state` with the department of the first `count` writable users changed."""
    for user_id in WRITABLE[:count]:
        state = edit(state, "user", user_id, department="Reorganised")
    return state


def guards(assessment: Assessment) -> set[Guard]:
    return {r.guard for r in assessment.refusals}


# -- thresholds ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "refused"), [(9, False), (10, True)])
def test_the_threshold_refuses_more_than_its_share_of_the_live_objects(
    demo: TenantState, count: int, refused: bool
) -> None:
    # 30% of the 32 users is 9.6: nine updates pass, ten are refused.
    live = moved(demo, count)
    assessment = judge(plan_for(demo, live), demo, live)
    assert (Guard.THRESHOLD in guards(assessment)) is refused
    if refused:
        (refusal,) = assessment.refusals
        assert refusal.message == (
            "the plan changes or removes 10 of the 32 user objects live (31%), more than the 30% threshold"
        )


def test_a_share_per_type_and_a_minimum_size_decide_what_is_judged(demo: TenantState) -> None:
    live = moved(demo, 10)
    plan = plan_for(demo, live)
    assert judge(plan, demo, live, settings=SafetySettings(per_type=(("user", 0.5),))).refusals == ()
    assert judge(plan, demo, live, settings=SafetySettings(minimum_objects=33)).refusals == ()
    (refusal,) = judge(plan, demo, live, settings=SafetySettings(per_type=(("group", 0.9),))).refusals
    assert refusal.type_name == "user"  # another type's share leaves users at the general 30%


def test_restores_never_count_as_destruction(demo: TenantState) -> None:
    live = demo
    for user_id in WRITABLE[:20]:
        live = soft_delete(live, "user", user_id)
    plan = plan_for(demo, live)
    assert {w.step.value for w in plan.writes} == {"restore"} and len(plan.writes) == 20
    assert judge(plan, demo, live).refusals == ()


@pytest.mark.parametrize(("groups", "newcomers", "refused"), [(3, 2, False), (4, 1, True)])
def test_relinking_counts_each_group_once_however_many_links_change(
    demo: TenantState, groups: int, newcomers: int, refused: bool
) -> None:
    # Exactly 30% of the 10 groups is not more than the share, even with two removals in each group.
    live = demo
    for name in ("Engineering", "SG-Finance", "VPN Users", "Pilot - Passkeys")[:groups]:
        group_id = GROUPS[name]
        added = [f"00000000-0000-4000-8000-00000000f00{n}" for n in range(newcomers)]
        live = members(live, group_id, *(live.get("group", group_id).data.get("members") or ()), *added)
    plan = plan_for(demo, live, scope=ReportScope(("group",)))
    assert [w.step.value for w in plan.writes] == ["removeLink"] * groups * newcomers
    refusals = judge(plan, demo, live).refusals
    assert [r.message for r in refusals] == (
        ["the plan changes or removes 4 of the 10 group objects live (40%), more than the 30% threshold"]
        if refused
        else []
    )


# -- what the guards can and cannot decide -----------------------------------------------------------------------


def test_the_lockout_guard_refuses_when_it_could_not_read_what_it_judges(demo: TenantState) -> None:
    objects = MappingProxyType({k: v for k, v in demo.objects.items() if k[0] != "group"})
    unread = TenantState(objects, demo.types - {"group"})
    live = edit(unread, "user", WRITABLE[0], department="Reorganised")
    (refusal,) = judge(plan_for(unread, live), unread, live, break_glass=BREAK_GLASS).refusals
    assert (refusal.guard, refusal.override) == (Guard.LOCKOUT, "--allow-lockout")
    assert refusal.message == "cannot evaluate Conditional Access for the break-glass accounts: group not read"
    # Without break-glass accounts there is nothing to evaluate: a warning says so instead.
    assessment = judge(plan_for(unread, live), unread, live)
    assert assessment.refusals == ()
    assert assessment.warnings == (
        "no breakGlass accounts in entra-gitops.yaml: the lockout guard has nothing to protect",
    )


def test_permanent_deletes_are_a_warning_for_the_reviewer(demo: TenantState) -> None:
    assignment = demo.of_type("appRoleAssignment")[0]
    live = put(demo, copy_of(assignment))
    assessment = judge(
        plan_for(demo, live, options=PlanOptions(allow_delete=True)), demo, live, break_glass=BREAK_GLASS
    )
    assert assessment.refusals == ()
    assert assessment.warnings == ("1 write(s) delete permanently (--allow-delete): Graph cannot restore them",)


def test_an_empty_plan_is_never_refused(demo: TenantState) -> None:
    assessment = judge(plan_for(demo, demo), demo, demo, break_glass=BREAK_GLASS)
    assert assessment == Assessment()


# -- overrides --------------------------------------------------------------------------------------------------


def test_each_override_takes_only_its_own_guards() -> None:
    every = Assessment(tuple(Refusal(guard, "user", None, guard.value) for guard in Guard))
    assert {r.override for r in every.refusals} == {"--force", "--allow-empty user", "--allow-lockout"}
    assert guards(Assessment(every.remaining(force=True))) == {Guard.MISSING_TYPE, Guard.LOCKOUT}
    assert guards(Assessment(every.remaining(allow_lockout=True))) == set(Guard) - {Guard.LOCKOUT}
    assert guards(Assessment(every.remaining(force=True, allow_lockout=True))) == {Guard.MISSING_TYPE}
    saved = [g for g in Guard if not Assessment((Refusal(g, "user", None, ""),)).blocks_saving]
    assert saved == [Guard.THRESHOLD, Guard.EMPTIED, Guard.PROTECTED]  # reviewable: the plan is saved, refused
