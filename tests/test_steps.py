"""The checks apply runs on every step before a write (in process): `check_step` refuses a step that is not one
recovery to the plan's source makes from the live tenant, and `derive_request` derives its Graph request again or
refuses it. Every refusal is a StepError, which apply reports as "make and review a new plan" (exit 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from test_plan_core import CUSTOM_STRENGTH, KJETIL, METHODS, NEWCOMER, copy_of, grant
from test_safety import (
    ENGINEERING,
    FINANCE,
    HENRIK,
    KARI,
    LARS,
    NORA,
    PER,
    REGISTRY,
    SOFIA,
    edit,
    members,
    new_user,
    plan_for,
    put,
    soft_delete,
    without,
)

from entra_gitops.model.frozen import thaw
from entra_gitops.model.tenant import TenantState
from entra_gitops.recovery.plan import Plan, PlanOptions
from entra_gitops.recovery.steps import Request, Step, StepError, Write, check_step, derive_request

LOCATION = "1cb54271-d0f6-4663-8b70-db39ce8d00b5"  # Fabrikam partner VPN, an ipNamedLocation


@dataclass(frozen=True)
class Planned:
    source: TenantState
    live: TenantState
    plan: Plan

    def write(self, step: Step, type_name: str) -> Write:
        return next(w for w in self.plan.writes if (w.step, w.type_name) == (step, type_name))

    def check(self, write: Write, *, allow_delete: bool = True, touched: bool = False) -> None:
        check_step(REGISTRY, write, self.source, self.live, allow_delete=allow_delete, touched=touched)

    def derive(self, write: Write) -> Request:
        """The request, derived from the source and live objects the write names, as apply looks them up."""
        return derive_request(REGISTRY, write, self.source.get(*write.key), self.live.get(*write.key))


@pytest.fixture(scope="module")
def planned(demo: TenantState) -> Planned:
    """A plan with every kind of step, from drift made by hand on the demo tenant."""
    added = copy_of(demo.get("authenticationStrengthPolicy", CUSTOM_STRENGTH), displayName="New")
    configurations = thaw(demo.get(METHODS, METHODS).data["authenticationMethodConfigurations"])
    live = edit(soft_delete(demo, "user", PER), "user", KARI, department="Procurement")
    live = members(live, ENGINEERING, *[m for m in demo.get("group", ENGINEERING).data["members"] if m != NORA])
    live = members(live, FINANCE, *demo.get("group", FINANCE).data["members"], HENRIK)
    live = put(put(without(live, grant(demo).key), new_user(NEWCOMER, "new@contoso.com", "New")), added)
    live = edit(live, "authenticationStrengthPolicy", CUSTOM_STRENGTH, allowedCombinations=["fido2"])
    sms_enabled = [{**c, "state": "enabled"} if c["id"] == "Sms" else c for c in configurations]
    live = edit(live, METHODS, METHODS, authenticationMethodConfigurations=sms_enabled)
    live = edit(live, "namedLocation", LOCATION, displayName="Renamed")
    return Planned(demo, live, plan_for(demo, live, options=PlanOptions(allow_delete=True)))


def test_every_step_of_a_plan_passes_its_check_and_derives_the_same_request(planned: Planned) -> None:
    kinds = {(w.step, w.type_name) for w in planned.plan.writes}
    assert {step for step, _ in kinds} == set(Step)
    assert (Step.UPDATE, METHODS) in kinds and (Step.UPDATE, "namedLocation") in kinds
    for write in planned.plan.writes:
        planned.check(write)
        assert planned.derive(write) == write.request, write


def test_a_named_locations_patch_states_its_concrete_type(planned: Planned) -> None:
    update = planned.write(Step.UPDATE, "namedLocation")
    assert update.request.body == {
        "@odata.type": "#microsoft.graph.ipNamedLocation",
        "displayName": "Fabrikam partner VPN",
    }


def update_of(planned: Planned, object_id: str) -> Write:
    return next(w for w in planned.plan.writes if w.key == ("user", object_id) and w.step is Step.UPDATE)


def changed(write: Write, name: str | None = None, now: Any = None, after: Any = None) -> Write:
    """`write` with its one change replaced: a field given as None keeps the plan's value."""
    ((old_name, old_now, old_after),) = write.changes
    after = old_after if after is None else after
    return replace(write, changes=((name or old_name, old_now if now is None else now, after),))


def refusal(action: Callable[[], Any]) -> str:
    with pytest.raises(StepError) as caught:
        action()
    return str(caught.value)


# -- values: what the step writes, and what it says the tenant holds now ----------------------------------------


def test_a_tampered_value_is_refused(planned: Planned) -> None:
    update = update_of(planned, KARI)
    kari = planned.source.get("user", KARI).data["department"]
    message = refusal(lambda: planned.check(changed(update, after="Chosen by someone else")))
    assert message == f"department: the plan writes 'Chosen by someone else', but the source holds {kari!r}"


def test_a_wrong_now_is_refused_unless_an_earlier_run_touched_the_object(planned: Planned) -> None:
    update = changed(update_of(planned, KARI), now="Something else")
    assert refusal(lambda: planned.check(update)) == "department: the plan's 'now' is not what the tenant holds"
    planned.check(update, touched=True)  # a rerun: the object moved because this plan wrote it


def test_rewriting_a_value_that_already_matches_is_refused(planned: Planned) -> None:
    lars = planned.source.get("user", LARS).data["jobTitle"]
    rewrite = replace(update_of(planned, KARI), object_id=LARS, changes=(("jobTitle", lars, lars),))
    assert refusal(lambda: planned.check(rewrite)) == "the step writes properties that already match the source"


def test_a_keyed_item_the_source_does_not_hold_is_refused(planned: Planned) -> None:
    sms = planned.write(Step.UPDATE, METHODS)
    assert sms.item == "Sms"
    assert refusal(lambda: planned.check(replace(sms, item="Voice"))) == (
        "authenticationMethodConfigurations[Voice] is not what the source holds"
    )


# -- properties outside `recover` ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "checked", "derived"),
    [
        ("showInAddressList", False, "user.showInAddressList is not written back for this object",
         "user.showInAddressList is not a property recovery writes (only `recover` properties are)"),
        ("createdDateTime", "2020-01-01T00:00:00Z", "user.createdDateTime is not written back for this object",
         "user.createdDateTime is not a property recovery writes (only `recover` properties are)"),
        ("favouriteColour", "blue", "user has no property 'favouriteColour'", "user has no property 'favouriteColour'"),
    ],
)  # fmt: skip
def test_a_property_outside_recover_is_refused_by_both_checks(
    planned: Planned, name: str, value: Any, checked: str, derived: str
) -> None:
    write = changed(update_of(planned, KARI), name=name, after=value)
    assert refusal(lambda: planned.check(write)) == checked
    assert refusal(lambda: planned.derive(write)) == derived


def test_a_link_outside_recover_is_refused(planned: Planned) -> None:
    add = planned.write(Step.ADD_LINK, "group")
    owners = replace(add, link="owners", changes=(("owners", None, add.target),))
    assert "group.owners is not a property recovery writes" in refusal(lambda: planned.derive(owners))


def test_an_invalid_value_is_refused_by_the_schema(planned: Planned) -> None:
    write = replace(update_of(planned, KARI), changes=(("accountEnabled", True, "maybe"),))
    assert refusal(lambda: planned.derive(write)).startswith("user.accountEnabled: 'maybe' is not of type 'boolean'")


# -- ids ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("object_id", "message"),
    [
        (SOFIA, "department: the plan writes 'Finance', but the source holds 'Sales'"),  # another user's id
        ("00000000-0000-4000-8000-0000000000ff", "the source has no active user 00000000-0000-4000-8000-0000000000ff"),
        ("not-a-guid", "user ids are GUIDs, not 'not-a-guid'"),
        ("../servicePrincipals", "user ids are GUIDs, not '../servicePrincipals'"),
        ("", "object id '' is empty"),
    ],
)
def test_a_changed_id_is_refused(planned: Planned, object_id: str, message: str) -> None:
    update = update_of(planned, KARI)
    assert message in refusal(lambda: planned.check(replace(update, object_id=object_id)))


def test_a_changed_link_target_is_refused(planned: Planned) -> None:
    add, remove = planned.write(Step.ADD_LINK, "group"), planned.write(Step.REMOVE_LINK, "group")
    assert refusal(lambda: planned.check(replace(add, target=KARI))) == "the source lacks that members link"
    assert refusal(lambda: planned.check(replace(remove, target=KARI))) == "the source has that members link"


# -- the kind of step -------------------------------------------------------------------------------------------


def test_a_step_of_the_wrong_kind_is_refused_by_the_check(planned: Planned) -> None:
    update, add = update_of(planned, KARI), planned.write(Step.ADD_LINK, "group")
    soft, delete = planned.write(Step.SOFT_DELETE, "user"), planned.write(Step.DELETE, "authenticationStrengthPolicy")
    assert refusal(lambda: planned.check(replace(update, step=Step.SOFT_DELETE))) == (
        f"the source holds user {KARI}: recovery keeps it"
    )
    assert refusal(lambda: planned.check(replace(add, step=Step.REMOVE_LINK))) == "the source has that members link"
    assert refusal(lambda: planned.check(replace(soft, step=Step.RESTORE))) == (
        f"the source has no active user {NEWCOMER} to recover"
    )
    assert refusal(lambda: planned.check(delete, allow_delete=False)) == (
        "a permanent delete, but the plan was not made with --allow-delete"
    )
    create = planned.write(Step.CREATE, "oauth2PermissionGrant")
    existing = grant(planned.live)
    assert refusal(lambda: planned.check(replace(create, object_id=existing.id))) == (
        "the relationship exists: nothing to re-create"
    )


def test_a_user_consented_grant_is_never_re_created(planned: Planned) -> None:
    consented = grant(planned.source, "Principal")
    live = without(planned.live, consented.key)
    create = replace(planned.write(Step.CREATE, "oauth2PermissionGrant"), object_id=consented.id)
    message = refusal(lambda: check_step(REGISTRY, create, planned.source, live, allow_delete=False))
    assert message == "outside the recovery scope (for example a user-consented grant)"


@pytest.mark.parametrize(
    ("pick", "step", "message"),
    [
        ((Step.SOFT_DELETE, "user"), Step.DELETE, "user objects are soft-deleted, not by a delete step"),
        ((Step.DELETE, "authenticationStrengthPolicy"), Step.SOFT_DELETE,
         "authenticationStrengthPolicy objects are deleted, with --allow-delete, not by a softDelete step"),
        ((Step.DELETE, "authenticationStrengthPolicy"), Step.RESTORE,
         "authenticationStrengthPolicy objects cannot be restored: the type has no soft delete"),
        ((Step.UPDATE, METHODS), Step.CREATE, "authenticationMethodsPolicy objects are not re-created by recovery"),
        ((Step.UPDATE, "user"), Step.ACTION, "user.department is not written through an action"),
        ((Step.ACTION, "authenticationStrengthPolicy"), Step.UPDATE,
         "authenticationStrengthPolicy.allowedCombinations is not written by PATCH"),
        ((Step.ADD_LINK, "group"), Step.UPDATE, "group.members is not written by PATCH"),
        ((Step.RESTORE, "user"), Step.UPDATE, "an update step must change at least one property"),
        ((Step.UPDATE, METHODS), Step.SOFT_DELETE,
         "authenticationMethodsPolicy objects are deleted, with --allow-delete, not by a softDelete step"),
        ((Step.UPDATE, METHODS), Step.DELETE, "authenticationMethodsPolicy is a singleton: it is never deleted"),
    ],
)  # fmt: skip
def test_a_step_of_the_wrong_kind_derives_no_request(
    planned: Planned, pick: tuple[Step, str], step: Step, message: str
) -> None:
    assert refusal(lambda: planned.derive(replace(planned.write(*pick), step=step))) == message


def test_an_update_of_a_subtyped_object_needs_its_concrete_type(planned: Planned) -> None:
    update = planned.write(Step.UPDATE, "namedLocation")
    untyped = edit(planned.live, "namedLocation", LOCATION, **{"@odata.type": None})
    source = edit(planned.source, "namedLocation", LOCATION, **{"@odata.type": None})
    message = refusal(lambda: derive_request(REGISTRY, update, source.get(*update.key), untyped.get(*update.key)))
    assert message == f"namedLocation {LOCATION}: cannot tell its concrete @odata.type"


# -- synchronised objects -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("step", [Step.UPDATE, Step.RESTORE, Step.SOFT_DELETE])
def test_no_step_ever_writes_a_synchronised_object(planned: Planned, step: Step) -> None:
    live = edit(planned.live, "user", KJETIL, department="Procurement")
    write = replace(update_of(planned, KARI), step=step, object_id=KJETIL)
    message = refusal(lambda: check_step(REGISTRY, write, planned.source, live, allow_delete=True))
    assert message == "the object is synchronised from on-premises: recovery never writes it"
