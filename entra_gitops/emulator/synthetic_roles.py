"""Synthetic directory roles: the built-in role definitions, who holds which role at which scope, who is eligible
for one, and the administrative units that scope them."""

from __future__ import annotations

import copy
import functools
from importlib import resources
from typing import Any

from ruamel.yaml import YAML

from entra_gitops.emulator.graph_ids import role_assignment_id, role_eligibility_id
from entra_gitops.emulator.synthetic_base import TAG_ADMIN_UNIT, TAG_ELIGIBILITY_SCHEDULE, Draft, ids
from entra_gitops.emulator.synthetic_directory import Groups, People

DEFINITIONS_KEY = "roleManagement/directory/roleDefinitions"
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
# Roles Microsoft Entra lets an administrative unit scope (admin-units-assign-roles.md), of those the demo defines.
UNIT_SCOPED_ROLES = (
    "fe930be7-5e62-47db-91af-98c3a49a38b1",  # User Administrator
    "729827e3-9c14-49f7-bb1b-9608f156bbb8",  # Helpdesk Administrator
    "fdd7a751-b60b-444a-984c-02652fe8fa1c",  # Groups Administrator
)
USERS_PER_ASSIGNMENT = 500
USERS_PER_UNIT = 2000
USERS_PER_ELIGIBILITY = 1000
EXTRA_GLOBAL_ADMINS = 3  # beside the two break-glass accounts
UNIT_MEMBERS = (200, 400)
ELIGIBLE_FROM = "2026-01-01T00:00:00Z"


@functools.cache
def _built_in_definitions() -> tuple[dict[str, Any], ...]:
    """The demo seed's built-in role definitions, read once from its own section of seeds/demo.yaml.

    Only that section is parsed: the whole demo file takes far longer to read than a synthetic tenant to make.
    """
    text = resources.files("entra_gitops.emulator").joinpath("seeds/demo.yaml").read_text(encoding="utf-8")
    start = text.index(f"\n{DEFINITIONS_KEY}:\n") + 1
    end = next(i for i in range(start + len(DEFINITIONS_KEY), len(text)) if text[i - 1] == "\n" and text[i].isalpha())
    section = YAML(typ="safe").load(text[start:end])[DEFINITIONS_KEY]
    return tuple(d for d in section if d.get("isBuiltIn") is True)


def role_definitions() -> list[dict[str, Any]]:
    """Fresh copies of the built-in definitions: the emulator changes objects in place, so none are shared."""
    return [copy.deepcopy(d) for d in _built_in_definitions()]


def administrative_units(draft: Draft, n_users: int, people: People) -> list[str]:
    """One unit per USERS_PER_UNIT users (at least one), a few hundred users each; returns their ids."""
    n = max(1, n_users // USERS_PER_UNIT)
    unit_ids = ids(TAG_ADMIN_UNIT, n)
    rng = draft.rng
    units = []
    for i, unit_id in enumerate(unit_ids):
        units.append(
            {
                "id": unit_id,
                "displayName": f"AU-Region-{i + 1:03d}",
                "description": f"Staff of region {i + 1}; its helpdesk manages them.",
                "visibility": None,
                "isMemberManagementRestricted": False,
                "membershipType": "Assigned",
                "membershipRule": None,
                "membershipRuleProcessingState": None,
            }
        )
        size = min(n_users, rng.randint(*UNIT_MEMBERS))
        draft.seed[f"directory/administrativeUnits/{unit_id}/members"] = [
            people.ids[j] for j in sorted(rng.sample(range(n_users), size))
        ]
    draft.seed["directory/administrativeUnits"] = units
    return unit_ids


def _assignment(role: str, principal: str, scope: str) -> dict[str, Any]:
    return {
        "id": role_assignment_id(role, principal, scope),
        "principalId": principal,
        "roleDefinitionId": role,
        "directoryScopeId": scope,
        "appScopeId": None,
    }


def role_assignments(draft: Draft, people: People, groups: Groups, unit_ids: list[str]) -> None:
    """Global Administrator for the break-glass accounts and a handful of others, then one more assignment per
    USERS_PER_ASSIGNMENT users: a built-in role for a user or a role-assignable group, every third at a unit."""
    rng = draft.rng
    user_ids = people.ids
    others = [d["id"] for d in _built_in_definitions() if d["id"] != GLOBAL_ADMINISTRATOR]
    assignable = [g["id"] for g in groups.objects if g.get("isAssignableToRole")]
    extra = rng.sample(range(2, len(user_ids)), max(0, min(EXTRA_GLOBAL_ADMINS, len(user_ids) - 2)))
    holders = user_ids[:2] + [user_ids[j] for j in extra]
    out = [_assignment(GLOBAL_ADMINISTRATOR, uid, "/") for uid in holders]
    taken = {(GLOBAL_ADMINISTRATOR, uid, "/") for uid in holders}
    for k in range(len(user_ids) // USERS_PER_ASSIGNMENT):
        scoped = k % 3 == 2 and unit_ids
        role = UNIT_SCOPED_ROLES[k % len(UNIT_SCOPED_ROLES)] if scoped else others[rng.randrange(len(others))]
        scope = f"/administrativeUnits/{unit_ids[rng.randrange(len(unit_ids))]}" if scoped else "/"
        use_group = assignable and not scoped and rng.random() < 0.1
        principal = assignable[rng.randrange(len(assignable))] if use_group else user_ids[rng.randrange(len(user_ids))]
        if (role, principal, scope) not in taken:
            taken.add((role, principal, scope))
            out.append(_assignment(role, principal, scope))
    draft.seed["roleManagement/directory/roleAssignments"] = out


def role_eligibilities(draft: Draft, people: People) -> None:
    """One Privileged Identity Management eligibility per USERS_PER_ELIGIBILITY users (at least one), tenant-wide."""
    rng = draft.rng
    user_ids = people.ids
    roles = [d["id"] for d in _built_in_definitions()]
    n = max(1, len(user_ids) // USERS_PER_ELIGIBILITY)
    schedules = ids(TAG_ELIGIBILITY_SCHEDULE, n)
    out, taken = [], set()
    for schedule in schedules:
        role, principal = roles[rng.randrange(len(roles))], user_ids[rng.randrange(len(user_ids))]
        if (role, principal) in taken:
            continue
        taken.add((role, principal))
        out.append(
            {
                "id": role_eligibility_id(role, principal, "/"),
                "principalId": principal,
                "roleDefinitionId": role,
                "directoryScopeId": "/",
                "appScopeId": None,
                "memberType": "Direct",
                "roleEligibilityScheduleId": schedule,
                "startDateTime": ELIGIBLE_FROM,
                "endDateTime": None,
            }
        )
    draft.seed["roleManagement/directory/roleEligibilityScheduleInstances"] = out
