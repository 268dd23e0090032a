"""The lockout guard's evaluation: which enabled policy locks which break-glass account out, and how it reaches it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from entra_gitops.emulator.seed import read_seed
from entra_gitops.model.frozen import freeze, thaw
from entra_gitops.model.tenant import Lifecycle, ObjectState, TenantState
from entra_gitops.recovery.lockout import BreakGlassAccount, Lockout, lockouts, resolve_accounts

TYPES = frozenset({"user", "group", "conditionalAccessPolicy", "authenticationStrengthPolicy"})

BG = "b0000000-0000-4000-8000-000000000001"
BG_UPN = "breakglass01@contoso.onmicrosoft.com"
GUEST = "b0000000-0000-4000-8000-000000000002"
GUEST_UPN = "ana_fabrikam.com#EXT#@contoso.onmicrosoft.com"
POLICY = "c0000000-0000-4000-8000-000000000001"
OTHER_POLICY = "c0000000-0000-4000-8000-000000000002"
ADMINS = "a0000000-0000-4000-8000-000000000001"
TIER0 = "a0000000-0000-4000-8000-000000000002"
EXCLUSIONS = "a0000000-0000-4000-8000-000000000003"
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
PHISHING_RESISTANT = "00000000-0000-0000-0000-000000000004"
NAME = "CA004 - Block access outside allowed countries"

ACCOUNT = BreakGlassAccount(BG, BG_UPN)
GUEST_ACCOUNT = BreakGlassAccount(GUEST, GUEST_UPN)


def user(
    object_id: str = BG,
    upn: str = BG_UPN,
    *,
    guest: bool = False,
    enabled: bool = True,
    lifecycle: Lifecycle = Lifecycle.ACTIVE,
) -> ObjectState:
    data = {
        "id": object_id,
        "displayName": upn.split("@")[0],
        "userPrincipalName": upn,
        "userType": "Guest" if guest else "Member",
        "accountEnabled": enabled,
    }
    return ObjectState("user", object_id, lifecycle, freeze(data))


def group(object_id: str, name: str, *members: str, lifecycle: Lifecycle = Lifecycle.ACTIVE) -> ObjectState:
    data = {"id": object_id, "displayName": name, "members": sorted(members)}
    return ObjectState("group", object_id, lifecycle, freeze({k: v for k, v in data.items() if v}))


def policy(
    object_id: str = POLICY,
    name: str = NAME,
    *,
    state: str = "enabled",
    users: Mapping[str, Any] | None = None,
    apps: tuple[str, ...] = ("All",),
    exclude_apps: tuple[str, ...] = (),
    client_app_types: tuple[str, ...] = ("all",),
    grant: Mapping[str, Any] | None = None,
    lifecycle: Lifecycle = Lifecycle.ACTIVE,
    **conditions: Any,
) -> ObjectState:
    applications = {"includeApplications": list(apps), "excludeApplications": list(exclude_apps)}
    data: dict[str, Any] = {
        "id": object_id,
        "displayName": name,
        "state": state,
        "conditions": {
            "applications": {k: v for k, v in applications.items() if v},
            "users": dict(users if users is not None else {"includeUsers": ["All"]}),
            **({"clientAppTypes": list(client_app_types)} if client_app_types else {}),
            **conditions,
        },
    }
    grant = {"operator": "OR", "builtInControls": ["block"]} if grant is None else grant
    if grant:
        data["grantControls"] = dict(grant)
    return ObjectState("conditionalAccessPolicy", object_id, lifecycle, freeze(data))


def tenant(*objects: ObjectState) -> TenantState:
    return TenantState.of(list(objects), TYPES)


def only(found: tuple[Lockout, ...]) -> Lockout:
    assert isinstance(found, tuple)
    (lock,) = found
    return lock


def mfa(*controls: str, operator: str | None = "OR") -> dict[str, Any]:
    return {k: v for k, v in {"operator": operator, "builtInControls": list(controls or ("mfa",))}.items() if v}


# -- who a policy reaches ---------------------------------------------------------------------------------------


def test_a_block_on_all_users_locks_out_an_account_it_does_not_exclude() -> None:
    lock = only(lockouts(tenant(user(), policy()), (ACCOUNT,)))
    assert (lock.policy_id, lock.policy_name, lock.account_id, lock.account_label) == (POLICY, NAME, BG, BG_UPN)
    assert (lock.through, lock.control) == ("all users", "block")
    assert lock.describe() == (
        f"Conditional Access policy '{NAME}' ({POLICY}) would block break-glass account {BG_UPN} ({BG}) "
        "for all cloud apps: it applies to all users and the account is not excluded"
    )


def test_a_policy_without_a_display_name_is_named_by_its_id() -> None:
    data = {k: v for k, v in thaw(policy().data).items() if k != "displayName"}
    unnamed = ObjectState("conditionalAccessPolicy", POLICY, Lifecycle.ACTIVE, freeze(data))
    lock = only(lockouts(tenant(user(), unnamed), (ACCOUNT,)))
    assert lock.describe().startswith(f"Conditional Access policy {POLICY} would block break-glass account {BG_UPN}")


def test_excluding_the_account_by_id_saves_it_whatever_the_case() -> None:
    excluded = policy(users={"includeUsers": ["All"], "excludeUsers": [BG.upper()]})
    assert lockouts(tenant(user(), excluded), (ACCOUNT,)) == ()


def test_a_policy_naming_the_account_reaches_it_directly() -> None:
    lock = only(lockouts(tenant(user(), policy(users={"includeUsers": [BG.upper()]})), (ACCOUNT,)))
    assert lock.through == "directly"
    assert "it names the account directly" in lock.describe()


def test_a_policy_on_another_user_does_not_reach_the_account() -> None:
    other = "b0000000-0000-4000-8000-0000000000ff"
    assert lockouts(tenant(user(), policy(users={"includeUsers": [other]})), (ACCOUNT,)) == ()


def test_a_policy_reaches_the_account_through_a_group() -> None:
    state = tenant(user(), group(ADMINS, "Entra Privileged Admins", BG), policy(users={"includeGroups": [ADMINS]}))
    lock = only(lockouts(state, (ACCOUNT,)))
    assert lock.through == f"through group 'Entra Privileged Admins' ({ADMINS})"
    assert f"it applies to the account through group 'Entra Privileged Admins' ({ADMINS})" in lock.describe()


def test_a_policy_reaches_the_account_through_a_nested_group() -> None:
    state = tenant(
        user(),
        group(TIER0, "Tier 0", ADMINS),
        group(ADMINS, "Entra Privileged Admins", BG),
        policy(users={"includeGroups": [TIER0]}),
    )
    lock = only(lockouts(state, (ACCOUNT,)))
    assert lock.through == f"through group 'Tier 0' ({TIER0}), via group 'Entra Privileged Admins' ({ADMINS})"


def test_exclusion_through_a_group_beats_inclusion() -> None:
    exclusions = group(EXCLUSIONS, "SG-CA-Exclusions-BreakGlass", BG)
    for users in (
        {"includeUsers": ["All"], "excludeGroups": [EXCLUSIONS]},
        {"includeUsers": [BG], "excludeGroups": [EXCLUSIONS]},
        {"includeGroups": [ADMINS], "excludeGroups": [EXCLUSIONS]},
    ):
        state = tenant(user(), group(ADMINS, "Admins", BG), exclusions, policy(users=users))
        assert lockouts(state, (ACCOUNT,)) == (), users
    # Nested: the account is in a group inside the exclusion group.
    nested = tenant(
        user(),
        group(EXCLUSIONS, "SG-CA-Exclusions", ADMINS),
        group(ADMINS, "Admins", BG),
        policy(users={"includeUsers": ["All"], "excludeGroups": [EXCLUSIONS]}),
    )
    assert lockouts(nested, (ACCOUNT,)) == ()


def test_all_users_with_and_without_the_exclusion() -> None:
    with_exclusion = policy(users={"includeUsers": ["All"], "excludeUsers": [BG]})
    assert lockouts(tenant(user(), with_exclusion), (ACCOUNT,)) == ()
    lock = only(lockouts(tenant(user(), policy(users={"includeUsers": ["All"]})), (ACCOUNT,)))
    assert lock.through == "all users" and lock.control == "block"


def test_include_users_none_reaches_nobody() -> None:
    assert lockouts(tenant(user(), policy(users={"includeUsers": ["None"]})), (ACCOUNT,)) == ()
    assert lockouts(tenant(user(), policy(users={})), (ACCOUNT,)) == ()


def test_include_users_none_does_not_hide_a_group_beside_it() -> None:
    # Fail closed: "None" adds nobody, but a group included beside it still counts.
    state = tenant(
        user(), group(ADMINS, "Admins", BG), policy(users={"includeUsers": ["None"], "includeGroups": [ADMINS]})
    )
    assert only(lockouts(state, (ACCOUNT,))).through == f"through group 'Admins' ({ADMINS})"


def test_a_group_missing_from_the_state_neither_includes_nor_excludes() -> None:
    gone = "a0000000-0000-4000-8000-0000000000ee"
    assert lockouts(tenant(user(), policy(users={"includeGroups": [gone]})), (ACCOUNT,)) == ()
    state = tenant(user(), policy(users={"includeUsers": ["All"], "excludeGroups": [gone]}))
    assert only(lockouts(state, (ACCOUNT,))).through == "all users"
    # A soft-deleted group is gone too: its members are neither included nor excluded through it.
    deleted = group(EXCLUSIONS, "Exclusions", BG, lifecycle=Lifecycle.SOFT_DELETED)
    state = tenant(user(), deleted, policy(users={"includeUsers": ["All"], "excludeGroups": [EXCLUSIONS]}))
    assert only(lockouts(state, (ACCOUNT,))).policy_id == POLICY
    state = tenant(user(), deleted, policy(users={"includeGroups": [EXCLUSIONS]}))
    assert lockouts(state, (ACCOUNT,)) == ()


def test_a_cycle_of_nested_groups_terminates() -> None:
    cycle = (group(ADMINS, "A", TIER0), group(TIER0, "B", ADMINS, TIER0))
    assert lockouts(tenant(user(), *cycle, policy(users={"includeGroups": [ADMINS]})), (ACCOUNT,)) == ()
    cycle_with_account = (group(ADMINS, "A", TIER0), group(TIER0, "B", ADMINS, BG))
    lock = only(lockouts(tenant(user(), *cycle_with_account, policy(users={"includeGroups": [ADMINS]})), (ACCOUNT,)))
    assert lock.through == f"through group 'A' ({ADMINS}), via group 'B' ({TIER0})"
    excluded = policy(users={"includeUsers": ["All"], "excludeGroups": [ADMINS]})
    assert lockouts(tenant(user(), *cycle_with_account, excluded), (ACCOUNT,)) == ()


def test_included_roles_are_assumed_held_and_excluded_roles_are_not_trusted() -> None:
    lock = only(lockouts(tenant(user(), policy(users={"includeRoles": [GLOBAL_ADMIN]})), (ACCOUNT,)))
    assert lock.through == f"through directory role {GLOBAL_ADMIN} (roles are not read: assumed held)"
    assert "assumed held" in lock.describe() and BG_UPN in lock.describe()
    excluded = policy(users={"includeUsers": ["All"], "excludeRoles": [GLOBAL_ADMIN]})
    assert only(lockouts(tenant(user(), excluded), (ACCOUNT,))).through == "all users"


def test_guests_or_external_users_reach_a_guest_account_only() -> None:
    state = tenant(
        user(),
        user(GUEST, GUEST_UPN, guest=True),
        policy(users={"includeUsers": ["GuestsOrExternalUsers"]}),
    )
    lock = only(lockouts(state, (ACCOUNT, GUEST_ACCOUNT)))
    assert (lock.account_id, lock.through) == (GUEST, "as a guest or external user")
    assert GUEST_UPN in lock.describe()
    typed = policy(users={"includeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "b2bCollaborationGuest"}})
    state = tenant(user(), user(GUEST, GUEST_UPN, guest=True), typed)
    assert only(lockouts(state, (ACCOUNT, GUEST_ACCOUNT))).account_id == GUEST


def test_excluding_guests_saves_a_guest_account_but_not_a_member() -> None:
    state = tenant(
        user(),
        user(GUEST, GUEST_UPN, guest=True),
        policy(users={"includeUsers": ["All"], "excludeUsers": ["GuestsOrExternalUsers"]}),
    )
    assert only(lockouts(state, (ACCOUNT, GUEST_ACCOUNT))).account_id == BG
    state = tenant(
        user(),
        user(GUEST, GUEST_UPN, guest=True),
        policy(users={"includeUsers": ["All"], "excludeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "b2b"}}),
    )
    assert only(lockouts(state, (ACCOUNT, GUEST_ACCOUNT))).account_id == BG


# -- which policies count ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["enabledForReportingButNotEnforced", "disabled"])
def test_report_only_and_disabled_policies_never_lock_out(state: str) -> None:
    assert lockouts(tenant(user(), policy(state=state)), (ACCOUNT,)) == ()


def test_a_soft_deleted_policy_does_not_apply() -> None:
    assert lockouts(tenant(user(), policy(lifecycle=Lifecycle.SOFT_DELETED)), (ACCOUNT,)) == ()


@pytest.mark.parametrize(
    "apps", [("Office365",), ("MicrosoftAdminPortals",), ("00000003-0000-0000-c000-000000000000",)]
)
def test_a_policy_without_all_cloud_apps_is_not_a_lockout(apps: tuple[str, ...]) -> None:
    assert lockouts(tenant(user(), policy(apps=apps)), (ACCOUNT,)) == ()


def test_a_policy_on_user_actions_only_is_not_a_lockout() -> None:
    actions = policy(apps=())
    data = thaw(actions.data)
    data["conditions"]["applications"] = {"includeUserActions": ["urn:user:registersecurityinfo"]}
    state = tenant(user(), ObjectState("conditionalAccessPolicy", POLICY, Lifecycle.ACTIVE, freeze(data)))
    assert lockouts(state, (ACCOUNT,)) == ()


def test_excluded_applications_do_not_save_the_account() -> None:
    lock = only(lockouts(tenant(user(), policy(exclude_apps=("Office365",))), (ACCOUNT,)))
    assert lock.control == "block" and "for all cloud apps" in lock.describe()


def test_a_policy_on_legacy_clients_only_leaves_modern_sign_in_open() -> None:
    legacy = policy(client_app_types=("exchangeActiveSync", "other"))
    assert lockouts(tenant(user(), legacy), (ACCOUNT,)) == ()
    for types in (("browser",), ("mobileAppsAndDesktopClients", "other"), ("all",), ()):
        assert only(lockouts(tenant(user(), policy(client_app_types=types)), (ACCOUNT,))).control == "block", types


def test_locations_and_risk_do_not_save_the_account() -> None:
    conditioned = policy(
        locations={"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]},
        signInRiskLevels=["high"],
        platforms={"includePlatforms": ["android"]},
    )
    assert only(lockouts(tenant(user(), conditioned), (ACCOUNT,))).control == "block"


# -- what a policy demands --------------------------------------------------------------------------------------


def test_mfa_locks_out_an_account_that_cannot_do_mfa_and_not_one_that_can() -> None:
    state = tenant(user(), policy(name="CA001 - Require MFA for all users", grant=mfa()))
    lock = only(lockouts(state, (ACCOUNT,)))
    assert lock.control == "mfa"
    assert lock.describe() == (
        f"Conditional Access policy 'CA001 - Require MFA for all users' ({POLICY}) would require mfa of break-glass "
        f"account {BG_UPN} ({BG}) for all cloud apps, which it cannot satisfy: it applies to all users and the "
        "account is not excluded"
    )
    assert lockouts(state, (BreakGlassAccount(BG, BG_UPN, frozenset({"mfa"})),)) == ()


def test_nothing_satisfies_block() -> None:
    able = BreakGlassAccount(BG, BG_UPN, frozenset({"mfa", "block", "compliantDevice"}))
    assert only(lockouts(tenant(user(), policy(grant=mfa("block", "mfa"))), (able,))).control == "block"


def test_or_needs_one_requirement_and_and_needs_every_one() -> None:
    with_mfa = BreakGlassAccount(BG, BG_UPN, frozenset({"mfa"}))
    either = tenant(user(), policy(grant=mfa("mfa", "compliantDevice")))
    assert lockouts(either, (with_mfa,)) == ()
    assert only(lockouts(either, (ACCOUNT,))).control == "mfa or compliantDevice"
    default_or = tenant(user(), policy(grant=mfa("mfa", "compliantDevice", operator=None)))
    assert lockouts(default_or, (with_mfa,)) == ()
    both = tenant(user(), policy(grant=mfa("mfa", "passwordChange", operator="AND")))
    assert only(lockouts(both, (with_mfa,))).control == "passwordChange"
    assert only(lockouts(both, (ACCOUNT,))).control == "mfa and passwordChange"
    assert lockouts(both, (BreakGlassAccount(BG, BG_UPN, frozenset({"mfa", "passwordChange"})),)) == ()


def test_an_authentication_strength_is_satisfied_by_its_id() -> None:
    strength = ObjectState(
        "authenticationStrengthPolicy",
        PHISHING_RESISTANT,
        Lifecycle.ACTIVE,
        freeze({"id": PHISHING_RESISTANT, "displayName": "Phishing resistant MFA"}),
    )
    grant = {"operator": "OR", "authenticationStrength": {"id": PHISHING_RESISTANT}}
    state = tenant(user(), strength, policy(grant=grant))
    lock = only(lockouts(state, (BreakGlassAccount(BG, BG_UPN, frozenset({"mfa"})),)))
    assert lock.control == "authentication strength 'Phishing resistant MFA'"
    assert "would require authentication strength 'Phishing resistant MFA' of break-glass account" in lock.describe()
    assert lockouts(state, (BreakGlassAccount(BG, BG_UPN, frozenset({PHISHING_RESISTANT.upper()})),)) == ()
    # Without the strength policy in the state, the id names it.
    unnamed = only(lockouts(tenant(user(), policy(grant=grant)), (ACCOUNT,)))
    assert unnamed.control == f"authentication strength {PHISHING_RESISTANT}"


def test_terms_of_use_and_custom_factors_are_requirements() -> None:
    terms = "d0000000-0000-4000-8000-000000000001"
    state = tenant(user(), policy(grant={"operator": "AND", "termsOfUse": [terms], "builtInControls": ["mfa"]}))
    able = BreakGlassAccount(BG, BG_UPN, frozenset({"mfa"}))
    assert only(lockouts(state, (able,))).control == f"terms of use {terms}"
    custom = tenant(user(), policy(grant={"customAuthenticationFactors": ["duo"]}))
    assert only(lockouts(custom, (able,))).control == "custom authentication factor duo"


def test_session_controls_only_demand_nothing() -> None:
    session = policy(grant={})
    assert lockouts(tenant(user(), session), (ACCOUNT,)) == ()
    assert lockouts(tenant(user(), policy(grant={"operator": "OR"})), (ACCOUNT,)) == ()


# -- the account itself ------------------------------------------------------------------------------------------


def test_a_disabled_account_is_locked_out_without_any_policy() -> None:
    lock = only(lockouts(tenant(user(enabled=False)), (ACCOUNT,)))
    assert (lock.policy_id, lock.policy_name, lock.through, lock.control) == (
        "",
        None,
        "the account itself",
        "account disabled",
    )
    assert BG_UPN in lock.describe() and BG in lock.describe() and "account disabled" in lock.describe()


@pytest.mark.parametrize("objects", [(user(lifecycle=Lifecycle.SOFT_DELETED),), ()])
def test_a_deleted_or_missing_account_is_locked_out(objects: tuple[ObjectState, ...]) -> None:
    lock = only(lockouts(tenant(*objects), (ACCOUNT,)))
    assert (lock.policy_id, lock.through, lock.control) == ("", "the account itself", "account deleted")
    assert "account deleted" in lock.describe() and BG_UPN in lock.describe()


def test_results_are_sorted_by_account_and_policy_and_de_duplicated() -> None:
    second = "b0000000-0000-4000-8000-000000000000"
    state = tenant(
        user(enabled=False),
        user(second, "breakglass00@contoso.onmicrosoft.com"),
        policy(OTHER_POLICY, "Block everything"),
        policy(POLICY, "Require MFA", grant=mfa()),
    )
    accounts = (ACCOUNT, BreakGlassAccount(second, "breakglass00@contoso.onmicrosoft.com"), ACCOUNT)
    found = lockouts(state, accounts)
    assert isinstance(found, tuple)
    assert [(lock.account_id, lock.policy_id, lock.control) for lock in found] == [
        (second, POLICY, "mfa"),
        (second, OTHER_POLICY, "block"),
        (BG, "", "account disabled"),
        (BG, POLICY, "mfa"),
        (BG, OTHER_POLICY, "block"),
    ]


# -- resolving the configured accounts ---------------------------------------------------------------------------


def test_resolve_accounts_by_id_by_upn_and_unresolved() -> None:
    state = tenant(user(), user(GUEST, GUEST_UPN, guest=True))
    entries = (
        (BG.upper(), frozenset({"mfa"})),
        (GUEST_UPN.upper(), frozenset()),
        ("nobody@contoso.com", frozenset()),
    )
    accounts, unresolved = resolve_accounts(entries, state)
    assert accounts == (BreakGlassAccount(BG, BG_UPN, frozenset({"mfa"})), BreakGlassAccount(GUEST, GUEST_UPN))
    assert unresolved == ("nobody@contoso.com",)


def test_resolve_accounts_first_state_wins_and_finds_a_deleted_account() -> None:
    renamed = tenant(user(BG, "renamed@contoso.onmicrosoft.com"))
    # A soft-deleted user's UPN carries its id as a prefix in Graph; the configured UPN still finds it.
    mangled = BG.replace("-", "") + BG_UPN
    deleted = tenant(user(BG, mangled, lifecycle=Lifecycle.SOFT_DELETED))
    accounts, unresolved = resolve_accounts(((BG, frozenset()), (BG_UPN, frozenset())), renamed, deleted)
    assert accounts == (BreakGlassAccount(BG, "renamed@contoso.onmicrosoft.com"), BreakGlassAccount(BG, BG_UPN))
    assert unresolved == ()
    (lock,) = lockouts(deleted, accounts[1:])
    assert lock.control == "account deleted"
    assert resolve_accounts(((BG_UPN, frozenset()),)) == ((), (BG_UPN,))


# -- the demo tenant ---------------------------------------------------------------------------------------------


def canonical(value: Any) -> Any:
    """Seed JSON as state data holds it: empty values left out, at every depth."""
    if isinstance(value, Mapping):
        kept = {k: canonical(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v is not None and v != [] and v != {}}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def demo_state() -> TenantState:
    data, _ = read_seed("demo")
    objects: list[ObjectState] = []
    for raw in data["users"]:
        objects.append(ObjectState("user", raw["id"], Lifecycle.ACTIVE, freeze(canonical(raw))))
    for raw in data["groups"]:
        members = [m if isinstance(m, str) else m["id"] for m in data.get(f"groups/{raw['id']}/members") or ()]
        item = canonical({**raw, "members": members})
        objects.append(ObjectState("group", raw["id"], Lifecycle.ACTIVE, freeze(item)))
    for raw in data["policies/authenticationStrengthPolicies"]:
        objects.append(ObjectState("authenticationStrengthPolicy", raw["id"], Lifecycle.ACTIVE, freeze(canonical(raw))))
    for key, lifecycle in (
        ("identity/conditionalAccess/policies", Lifecycle.ACTIVE),
        ("identity/conditionalAccess/deletedItems/policies", Lifecycle.SOFT_DELETED),
    ):
        for raw in data[key]:
            item = canonical(raw)
            strength = item.get("grantControls", {}).get("authenticationStrength")
            if strength:  # canonical policies keep only the strength's id
                item["grantControls"]["authenticationStrength"] = {"id": strength["id"]}
            objects.append(ObjectState("conditionalAccessPolicy", raw["id"], lifecycle, freeze(item)))
    return TenantState.of(objects, TYPES)


def demo_break_glass(state: TenantState) -> tuple[BreakGlassAccount, ...]:
    users = [u for u in state.of_type("user") if str(u.data["displayName"]).startswith("Break Glass")]
    accounts, unresolved = resolve_accounts(((u.data["userPrincipalName"], frozenset()) for u in users), state)
    assert len(accounts) == 2 and unresolved == ()
    return accounts


def without_exclusions(state: TenantState, *names: str) -> TenantState:
    objects = []
    for obj in state:
        if obj.type_name == "conditionalAccessPolicy" and obj.data["displayName"] in names:
            data = thaw(obj.data)
            for key in ("excludeUsers", "excludeGroups"):
                data["conditions"]["users"].pop(key, None)
            obj = ObjectState(obj.type_name, obj.id, obj.lifecycle, freeze(data))
        objects.append(obj)
    return TenantState.of(objects, state.types)


def test_the_demo_break_glass_accounts_are_excluded_from_every_policy() -> None:
    state = demo_state()
    assert lockouts(state, demo_break_glass(state)) == ()


def test_removing_the_demo_exclusions_from_the_country_block_locks_both_accounts_out() -> None:
    state = demo_state()
    accounts = demo_break_glass(state)
    unexcluded = without_exclusions(
        state, "CA004 - Block access outside allowed countries", "CA002 - Block legacy authentication"
    )
    found = lockouts(unexcluded, accounts)
    assert [(lock.policy_name, lock.control, lock.through) for lock in found] == [
        ("CA004 - Block access outside allowed countries", "block", "all users")
    ] * 2
    assert {lock.account_label for lock in found} == {
        "breakglass01@contoso.onmicrosoft.com",
        "breakglass02@contoso.onmicrosoft.com",
    }
    assert all("CA004 - Block access outside allowed countries" in lock.describe() for lock in found)


def test_without_any_demo_exclusion_each_policy_demands_what_it_demands() -> None:
    state = demo_state()
    names = {str(p.data["displayName"]) for p in state.of_type("conditionalAccessPolicy")}
    unexcluded = without_exclusions(state, *names)
    (first, _) = demo_break_glass(state)
    found = lockouts(unexcluded, (first,))
    # CA002 (legacy clients), CA005 (report-only), CA006 (disabled, Office 365) and the deleted policy never count.
    assert {(lock.policy_name, lock.control) for lock in found} == {
        ("CA001 - Require MFA for all users", "mfa"),
        ("CA003 - Phishing-resistant MFA for administrators", "authentication strength 'Phishing resistant MFA'"),
        ("CA004 - Block access outside allowed countries", "block"),
    }
    assert [lock.policy_id for lock in found] == sorted(lock.policy_id for lock in found)
    ca003 = next(lock for lock in found if lock.policy_name.startswith("CA003"))  # type: ignore[union-attr]
    assert "through directory role" in ca003.through and "assumed held" in ca003.through
    able = BreakGlassAccount(first.id, first.label, frozenset({"mfa", PHISHING_RESISTANT}))
    assert [lock.policy_name for lock in lockouts(unexcluded, (able,))] == [
        "CA004 - Block access outside allowed countries"
    ]
