"""Deterministic synthetic Entra tenants of any size, in the emulator's seed format."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

from entra_gitops.emulator import synthetic_apps as apps
from entra_gitops.emulator import synthetic_directory as directory
from entra_gitops.emulator import synthetic_policies as policies
from entra_gitops.emulator import synthetic_roles as roles
from entra_gitops.emulator.synthetic_base import (
    APPS_PER_BLUEPRINT,
    DEFAULT_ACCESS_ROLE,
    DOMAIN,
    GRAPH_APP_ID,
    INITIAL_DOMAIN,
    MICROSOFT_TENANT_ID,
    Draft,
    delegated_app_count,
)

__all__ = [
    "APPS_PER_BLUEPRINT",
    "DEFAULT_ACCESS_ROLE",
    "DOMAIN",
    "GRAPH_APP_ID",
    "INITIAL_DOMAIN",
    "MAX_COUNT",
    "MICROSOFT_TENANT_ID",
    "SyntheticSpec",
    "generate",
    "parse_spec",
]

# A typo such as users=1000000000 would otherwise try to allocate hundreds of gigabytes.
MAX_COUNT = 10_000_000


# -- the spec ----------------------------------------------------------------------------------

_SPEC_KEYS = ("users", "groups", "apps", "grants", "policies", "locations", "deleted", "seed")
_NUMBER = re.compile(r"[0-9]+(?:_[0-9]+)*")


@dataclass(frozen=True)
class SyntheticSpec:
    """The size of a synthetic tenant.

    Counts left as None are derived from `users` on construction: groups users/5, apps users/500
    (at least 3), grants one admin grant per app that signs users in plus half as many user grants,
    6 Conditional Access policies, 4 named locations, deleted users/1000 (at least 1). Agent ID comes with
    the apps: one agent identity blueprint per 50 apps, each with its principal, one agent identity and that
    identity's agent user (sponsored by a user), on top of the counts above. Directory roles come with the users:
    the built-in role definitions, Global Administrator for the break-glass accounts and three others, one more
    role assignment per 500 users (every third scoped to an administrative unit), one administrative unit per
    2,000 users (at least one, 200 to 400 members each) and one role eligibility per 1,000 users (at least one).
    """

    users: int = 1000
    groups: int | None = None
    apps: int | None = None
    grants: int | None = None
    policies: int | None = None
    locations: int | None = None
    deleted: int | None = None
    seed: int = 1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            # bool is an int subclass; users=True is a bug, not one user.
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{f.name}={value!r}: must be a whole number")
            if value < 0:
                raise ValueError(f"{f.name}={value}: must not be negative")
            if f.name != "seed" and value > MAX_COUNT:
                raise ValueError(f"{f.name}={value}: at most {MAX_COUNT:,} is supported")
        if self.users < 1:
            raise ValueError(f"users={self.users}: a tenant needs at least 1 user (the break-glass account)")
        users = self.users
        derived = {
            "groups": max(1, users // 5),
            "apps": max(3, users // 500),
            "policies": 6,
            "locations": 4,
            "deleted": max(1, users // 1000),
        }
        for name, value in derived.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        delegated = delegated_app_count(self.apps)
        if self.grants is None:
            object.__setattr__(self, "grants", delegated + delegated // 2)
        # Each client app holds one admin grant and at most one grant per consenting user.
        capacity = delegated * (users + 1)
        if self.grants > capacity:
            raise ValueError(
                f"grants={self.grants}: apps={self.apps} and users={users} allow at most {capacity} "
                f"delegated grants ({delegated} apps sign users in)"
            )


def parse_spec(text: str) -> SyntheticSpec:
    """A spec from "users=N,groups=N,apps=N,grants=N,policies=N,locations=N,deleted=N,seed=N" (all optional)."""
    values: dict[str, int] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, raw = part.partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep:
            raise ValueError(f"{part!r}: expected NAME=NUMBER, for example users=1000")
        if name not in _SPEC_KEYS:
            raise ValueError(f"{part!r}: unknown key {name!r}; known keys: {', '.join(_SPEC_KEYS)}")
        if name in values:
            raise ValueError(f"{part!r}: {name} is given twice")
        if not _NUMBER.fullmatch(raw):
            raise ValueError(f"{part!r}: {raw!r} is not a whole number")
        values[name] = int(raw)
    return SyntheticSpec(**values)


def generate(spec: SyntheticSpec) -> dict[str, Any]:
    """A seed mapping (Graph v1.0 shapes) for a tenant of the spec's size; same spec, same output.

    Strings are shared between objects wherever they repeat; containers (dicts, lists) never are,
    because the emulator changes objects in place and a YAML dumper would turn shared containers
    into anchors and aliases.
    """
    # One random stream runs through every step in this order, and the seed keeps its keys in the order
    # they are made: reordering the steps changes every tenant.
    draft = Draft.start(spec.seed)
    s = draft.seed
    s["organization"] = [directory.organization(draft.tenant_id)]
    people = directory.users(draft, spec.users)
    groups = directory.groups(draft, spec.groups, people)
    made = apps.applications(draft, spec.apps, people, groups)
    apps.grants(draft, spec.grants, made, people)
    named = policies.locations(draft, spec.locations)
    s["identity/conditionalAccess/namedLocations"] = named
    s["policies/authenticationStrengthPolicies"] = policies.strengths()
    s["identity/conditionalAccess/policies"] = policies.conditional_access(
        draft, spec.policies, people, groups, [loc["id"] for loc in named]
    )
    s["policies/authenticationMethodsPolicy"] = policies.methods_policy(groups)
    s["policies/authorizationPolicy"] = policies.authorization_policy()
    s["directory/deletedItems"] = directory.deleted_users(draft, spec.deleted)
    apps.agents(draft, spec.apps, people)
    # Directory roles come last, so every object above is the one it was before they were generated.
    s[roles.DEFINITIONS_KEY] = roles.role_definitions()
    units = roles.administrative_units(draft, spec.users, people)
    roles.role_assignments(draft, people, groups, units)
    roles.role_eligibilities(draft, people)
    return s
