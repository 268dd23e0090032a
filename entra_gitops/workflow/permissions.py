"""The least-privilege Microsoft Graph application permissions each job needs, read from the schemas (pure)."""

# Each type's schema lists, in x-entra-graph.x-entra-permissions, what the tool does with it (read it;
# write it back during recovery) and, for each need, the application permissions that allow it, least
# privileged first, as Microsoft's Graph API reference documents them (schemas/README.md). A job's set
# is the smallest one that satisfies all its needs for the types in scope: each need takes its least
# privileged permission, then a permission is left out when the others kept already cover every need it
# was chosen for (Policy.Read.All covers reading the authentication methods policy, Directory.Read.All
# covers reading users). Needs every command has (the tenant check reads the organization) count
# whatever the scope. Writes Graph allows only to a caller that also holds a directory role are listed
# apart: no permission grants them.

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from entra_gitops.model.errors import SchemaError
from entra_gitops.model.registry import (
    Access,
    PermissionNeed,
    Registry,
    ResourceType,
    RoleRequirement,
    default_registry,
)

__all__ = [
    "NEVER_GRANT",
    "Access",
    "DirectoryRoleWrite",
    "Job",
    "Need",
    "directory_roles_for",
    "markdown_table",
    "needs_of",
    "optional_permissions",
    "permissions_document",
    "permissions_for",
]

# One need as the schemas declare it (registry.PermissionNeed): access, reason, any_of, and what Graph covers.
Need = PermissionNeed


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
class DirectoryRoleWrite:
    """A write recovery may make that Graph allows only with a directory role, whatever the permissions."""

    type_name: str
    requirement: RoleRequirement

    @property
    def summary(self) -> str:
        """One line for people: which writes, of which objects, need which role, in which context."""
        req = self.requirement
        what = ", ".join(req.operations)
        if req.properties:
            what += f" ({', '.join(req.properties)})"
        context = {"any": "app-only and delegated", "application": "app-only", "delegated": "delegated only"}
        return (
            f"{self.type_name}: {what} of {req.target} needs the role {' or '.join(req.roles)} "
            f"({context[req.context]}): {req.reason}"
        )


# Permissions that must never be granted to either identity, with the reason.
NEVER_GRANT: Mapping[str, str] = MappingProxyType(
    {
        "Directory.ReadWrite.All": "it writes almost the whole directory; every write entra-gitops makes has a narrower "
        "permission, listed here",
    }
)


# Permissions a job uses when granted and does without when not: no type's schema needs them, so they are
# listed here. Reading the directory audit log (api-reference/v1.0/api/directoryaudit-list.md: AuditLog.Read.All
# with Directory.Read.All) tells who made each change; without it, a report says "unknown" and warns once.
OPTIONAL: Mapping[Job, tuple[tuple[str, tuple[str, ...]], ...]] = MappingProxyType(
    {
        Job.SNAPSHOT: (
            (
                "AuditLog.Read.All",
                (
                    "directoryAudit: snapshot (its commit message), diff, plan and drift read the directory audit "
                    "log to say who changed each object (optional: without it they say 'unknown', with one warning)",
                ),
            ),
        ),
    }
)


def optional_permissions(purpose: Job | str) -> list[tuple[str, tuple[str, ...]]]:
    """The permissions `purpose` uses when granted and degrades without: sorted (permission, reasons)."""
    return sorted(OPTIONAL.get(_job(purpose), ()))


def _breadth(permission: str) -> int:
    """How much a permission allows beyond one type: broader permissions are dropped first when redundant."""
    if permission.startswith("Directory."):
        return 2
    return 1 if ".ReadWrite." in permission or permission == "Policy.Read.All" else 0


def _job(purpose: Job | str) -> Job:
    return purpose if isinstance(purpose, Job) else Job(purpose)


def _resolve(types: Iterable[str | ResourceType], registry: Registry) -> list[ResourceType]:
    """The types named, once each, in order; an unknown name is an UnknownTypeError with a suggestion."""
    found = [t if isinstance(t, ResourceType) else registry.get(t) for t in types]
    return list({t.name: t for t in found}.values())


def needs_of(
    type_names: Iterable[str | ResourceType], job: Job, registry: Registry | None = None
) -> list[tuple[str, Need]]:
    """Every listed (type, need) of `job` for the types named and every command's own; SchemaError for a type without."""
    registry = registry or default_registry()
    chosen = _resolve(type_names, registry)
    found: list[tuple[str, Need]] = []
    for rtype in chosen:
        if not rtype.permissions:
            raise SchemaError(f"{rtype.schema_path.name}: no x-entra-permissions are recorded for {rtype.name!r}")
        found.extend((rtype.name, n) for n in rtype.permissions if n.listed and n.access in job.access)
    names = {t.name for t in chosen}
    for rtype in registry:
        if rtype.name not in names:
            found.extend((rtype.name, n) for n in rtype.permissions if n.always and n.listed and n.access in job.access)
    return found


def permissions_for(types: Iterable[str | ResourceType], purpose: Job | str) -> list[tuple[str, tuple[str, ...]]]:
    """The smallest set of application permissions `purpose` needs for `types`: sorted (permission, reasons)."""
    needs = needs_of(types, _job(purpose))
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


def directory_roles_for(types: Iterable[str | ResourceType], purpose: Job | str) -> list[DirectoryRoleWrite]:
    """The writes of `purpose` for `types` that Graph allows only with a directory role (none for a read job)."""
    if Access.WRITE not in _job(purpose).access:
        return []
    chosen = _resolve(types, default_registry())
    found = [DirectoryRoleWrite(t.name, r) for t in chosen for r in t.directory_roles]
    # The job identities sign in app-only: what binds them comes first, what binds a signed-in person after.
    return sorted(found, key=lambda w: (w.requirement.context == "delegated", w.type_name))


def markdown_table(types: Iterable[str | ResourceType], purpose: Job | str) -> str:
    """The permissions of one job as a markdown table (for a state repository's runbook)."""
    lines = ["| application permission | why |", "|---|---|"]
    for permission, reasons in permissions_for(types, purpose):
        lines.append(f"| `{permission}` | " + "<br>".join(reasons) + " |")
    for permission, reasons in optional_permissions(purpose):
        lines.append(f"| `{permission}` (optional) | " + "<br>".join(reasons) + " |")
    return "\n".join(lines)


def permissions_document(types: tuple[ResourceType, ...], jobs: Iterable[Job]) -> dict[str, Any]:
    """The permissions of `jobs` for `types` as JSON: each one's reasons, what never to grant, the directory roles."""
    jobs = tuple(jobs)
    return {
        "scope": [t.name for t in types],
        "jobs": {
            job.value: [{"permission": p, "reasons": list(r)} for p, r in permissions_for(types, job)]
            + [{"permission": p, "reasons": list(r), "optional": True} for p, r in optional_permissions(job)]
            for job in jobs
        },
        "neverGrant": [{"permission": p, "reason": why} for p, why in NEVER_GRANT.items()],
        "directoryRoles": [
            {
                "type": w.type_name,
                "operations": list(w.requirement.operations),
                "properties": list(w.requirement.properties),
                "target": w.requirement.target,
                "roles": list(w.requirement.roles),
                "context": w.requirement.context,
                "reason": w.requirement.reason,
            }
            for job in jobs
            for w in directory_roles_for(types, job)
        ],
    }
