"""The least-privilege Microsoft Graph application permissions each job needs, per resource type (pure data).

Every resource type lists what the tool does with it (read it; write it back during recovery) and,
for each of those needs, the application permissions that allow it, least privileged first, as
Microsoft's Graph API reference documents them. A job's set is the smallest one that satisfies all
its needs for the types in scope: each need takes its least privileged permission, then a
permission is left out when the others kept already cover every need it was chosen for (Policy.Read.All
covers reading the authentication methods policy, Directory.Read.All covers reading users).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from entra_gitops.registry import ResourceType


class Access(enum.Enum):
    """What a job does with a type."""

    READ = "read"
    WRITE = "write"


class Job(enum.Enum):
    """The identities a state repository uses: one that only reads, one that also writes."""

    SNAPSHOT = "snapshot"  # snapshot, backups, diff, drift and plan: reads only
    APPLY = "apply"  # apply: re-reads every target, then writes

    @property
    def access(self) -> tuple[Access, ...]:
        return (Access.READ,) if self is Job.SNAPSHOT else (Access.READ, Access.WRITE)

    @property
    def description(self) -> str:
        if self is Job.SNAPSHOT:
            return "the read identity (snapshot, diff, plan)"
        return "the write identity (apply)"


@dataclass(frozen=True)
class Need:
    """One thing a job does with one type, and the permissions that allow it, least privileged first."""

    access: Access
    reason: str
    any_of: tuple[str, ...]


R, W = Access.READ, Access.WRITE

# Permissions that must never be granted to either identity, with the reason.
NEVER_GRANT: Mapping[str, str] = MappingProxyType(
    {
        "Directory.ReadWrite.All": "it writes almost the whole directory; every write entra-gitops makes has a narrower "
        "permission, listed here",
    }
)

# Per resource type: what the tool does with it, and which application permissions allow that.
# Sources: each API's "Permissions" table in Microsoft's Graph v1.0 reference (list, get, delta,
# update, delete, directory/deletedItems list and restore, $ref links, actions).
PERMISSIONS: Mapping[str, tuple[Need, ...]] = MappingProxyType(
    {
        "user": (
            Need(R, "list users and soft-deleted users", ("User.Read.All", "Directory.Read.All", "User.ReadWrite.All")),
            Need(
                R,
                "read employeeLeaveDateTime (Graph returns it only with a lifecycle permission)",
                ("User-LifeCycleInfo.Read.All", "User-LifeCycleInfo.ReadWrite.All"),
            ),
            Need(W, "update, soft-delete and restore users", ("User.ReadWrite.All",)),
            Need(W, "write employeeLeaveDateTime back", ("User-LifeCycleInfo.ReadWrite.All",)),
        ),
        "group": (
            Need(
                R,
                "list groups with all their properties, soft-deleted groups, members and owners "
                "(GroupMember.Read.All reads only basic properties)",
                ("Group.Read.All", "Directory.Read.All", "Group.ReadWrite.All"),
            ),
            Need(
                W,
                "update, soft-delete and restore groups; add and remove members",
                ("Group.ReadWrite.All",),
            ),
        ),
        "application": (
            Need(
                R,
                "list app registrations and soft-deleted ones",
                ("Application.Read.All", "Directory.Read.All", "Application.ReadWrite.All"),
            ),
            Need(W, "update, soft-delete and restore app registrations", ("Application.ReadWrite.All",)),
        ),
        "servicePrincipal": (
            Need(
                R,
                "list service principals and soft-deleted ones",
                ("Application.Read.All", "Directory.Read.All", "Application.ReadWrite.All"),
            ),
            Need(W, "update, soft-delete and restore service principals", ("Application.ReadWrite.All",)),
        ),
        "appRoleAssignment": (
            Need(
                R,
                "list each service principal's app role assignments (appRoleAssignedTo)",
                ("Application.Read.All", "Directory.Read.All", "AppRoleAssignment.ReadWrite.All"),
            ),
            Need(
                W,
                "re-create and remove app role assignments (it can grant any app role: keep this identity reviewed)",
                ("AppRoleAssignment.ReadWrite.All",),
            ),
        ),
        "oauth2PermissionGrant": (
            Need(
                R,
                "list delegated permission grants (Graph documents no narrower read permission for them)",
                ("Directory.Read.All", "DelegatedPermissionGrant.ReadWrite.All"),
            ),
            Need(W, "re-create, update and remove admin-consented grants", ("DelegatedPermissionGrant.ReadWrite.All",)),
        ),
        "conditionalAccessPolicy": (
            Need(
                R,
                "list Conditional Access policies and deleted ones",
                ("Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"),
            ),
            Need(W, "update, delete and restore Conditional Access policies", ("Policy.ReadWrite.ConditionalAccess",)),
            Need(
                W, "Graph requires it beside Policy.ReadWrite.ConditionalAccess for policy writes", ("Policy.Read.All",)
            ),
        ),
        "namedLocation": (
            Need(
                R,
                "list named locations and deleted ones",
                ("Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"),
            ),
            Need(W, "update, delete and restore named locations", ("Policy.ReadWrite.ConditionalAccess",)),
            Need(
                W,
                "Graph requires it beside Policy.ReadWrite.ConditionalAccess for location writes",
                ("Policy.Read.All",),
            ),
        ),
        "authenticationMethodsPolicy": (
            Need(
                R,
                "read the authentication methods policy and its method configurations",
                ("Policy.Read.AuthenticationMethod", "Policy.Read.All", "Policy.ReadWrite.AuthenticationMethod"),
            ),
            Need(W, "update the method configurations", ("Policy.ReadWrite.AuthenticationMethod",)),
        ),
        "authenticationStrengthPolicy": (
            Need(
                R,
                "list authentication strengths",
                ("Policy.Read.All", "Policy.ReadWrite.ConditionalAccess", "Policy.ReadWrite.AuthenticationMethod"),
            ),
            Need(
                W,
                "update custom strengths and their allowed combinations (Graph files strengths under Conditional Access)",
                ("Policy.ReadWrite.ConditionalAccess", "Policy.ReadWrite.AuthenticationMethod"),
            ),
        ),
        "authorizationPolicy": (
            Need(R, "read the authorization policy", ("Policy.Read.All", "Policy.ReadWrite.Authorization")),
            Need(W, "update blockMsolPowerShell and guestUserRoleId", ("Policy.ReadWrite.Authorization",)),
        ),
        "organization": (
            Need(
                R,
                "read the organization (also the tenant check before every apply)",
                ("Organization.Read.All", "Directory.Read.All", "Organization.ReadWrite.All"),
            ),
            # No organization property Graph v1.0 exposes is recoverable, so recovery never writes it.
        ),
    }
)


def _breadth(permission: str) -> int:
    """How much a permission allows beyond one type: broader permissions are dropped first when redundant."""
    if permission.startswith("Directory."):
        return 2
    return 1 if ".ReadWrite." in permission or permission == "Policy.Read.All" else 0


def needs_of(type_names: Iterable[str], job: Job) -> list[tuple[str, Need]]:
    """Every (type, need) of `job` for the types named; a type without an entry is an error."""
    found = []
    for name in type_names:
        if name not in PERMISSIONS:
            raise KeyError(f"no Graph permissions are recorded for resource type {name!r}")
        found.extend((name, need) for need in PERMISSIONS[name] if need.access in job.access)
    return found


def permissions_for(types: Iterable[str | ResourceType], purpose: Job | str) -> list[tuple[str, tuple[str, ...]]]:
    """The smallest set of application permissions `purpose` needs for `types`: sorted (permission, reasons)."""
    job = purpose if isinstance(purpose, Job) else Job(purpose)
    names = [t if isinstance(t, str) else t.name for t in types]
    needs = needs_of(dict.fromkeys(names), job)
    chosen = {need.any_of[0] for _, need in needs}
    for candidate in sorted(chosen, key=lambda p: (-_breadth(p), p)):
        rest = chosen - {candidate}
        if all(any(p in rest for p in need.any_of) for _, need in needs):
            chosen = rest
    reasons: dict[str, list[str]] = {p: [] for p in chosen}
    for name, need in needs:
        granted = next(p for p in need.any_of if p in chosen)
        reasons[granted].append(f"{name}: {need.reason}")
    return [(p, tuple(reasons[p])) for p in sorted(chosen)]


def markdown_table(types: Iterable[str | ResourceType], purpose: Job | str) -> str:
    """The permissions of one job as a markdown table (for a state repository's runbook)."""
    lines = ["| application permission | why |", "|---|---|"]
    for permission, reasons in permissions_for(types, purpose):
        lines.append(f"| `{permission}` | " + "<br>".join(reasons) + " |")
    return "\n".join(lines)
