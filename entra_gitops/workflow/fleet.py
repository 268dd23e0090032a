"""A fleet of tenants (a managed service provider's customers): `init --tenants tenants.yaml`.

One state repository per tenant stays the unit: each tenant's backups, drift pull requests, plans, approvals and
history live in a repository of its own, with its own plan and apply workflows. The fleet repository holds
tenants.yaml and one scheduled workflow whose GitHub Actions matrix snapshots every tenant (each job with its own
tenant id, client id, concurrency group and state directory, `tenants/<name>`, where it checks the tenant's
repository out), then one job that gathers each tenant's drift into one job summary. Locally, init writes each
tenant's repository into the same `tenants/<name>` folder, ready to push.

tenants.yaml is read as strictly as entra-gitops.yaml (model/settings.py, schemas/settings/tenants.schema.json):
every mistake at file:line:column. `entra-gitops fleet-matrix tenants.yaml` (cli/fleet.py) is the workflow's
first job: it checks the file and writes the matrix as step outputs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entra_gitops.model.errors import ConfigError
from entra_gitops.model.ids import fold_id
from entra_gitops.model.settings import TENANTS_SCHEMA_FILE, checked_settings
from entra_gitops.workflow.install import REQUIREMENTS_FILE, InstallSpec
from entra_gitops.workflow.scaffold import render, scaffold_files, template_values, write_scaffolds

TENANTS_FILE = "tenants.yaml"
TENANTS_DIR = "tenants"
FLEET_WORKFLOW = ".github/workflows/entra-gitops-fleet.yml"
FLEET_TOKEN_SECRET = "ENTRA_GITOPS_FLEET_TOKEN"
DEFAULT_MAX_PARALLEL = 10
UNIQUE = ("name", "tenantId", "repository")  # two tenants may share none of these (compared without case)

# The fleet repository's files -> their template under entra_gitops/templates/.
FLEET_TEMPLATES: Mapping[str, str] = {
    FLEET_WORKFLOW: "workflows/entra-gitops-fleet.yml",
    REQUIREMENTS_FILE: "entra-gitops-requirements.txt",
    ".github/dependabot.yml": "dependabot.yml",
    "README.md": "fleet/README.md",
    ".gitignore": "fleet/gitignore",
}


@dataclass(frozen=True)
class FleetTenant:
    """One tenant of the fleet, as tenants.yaml names it."""

    name: str
    tenant_id: str
    client_id: str
    apply_client_id: str | None
    repository: str
    default_branch: str

    @property
    def directory(self) -> str:
        """Where the tenant's state repository is: checked out by its matrix job, written by init."""
        return f"{TENANTS_DIR}/{self.name}"

    def matrix_entry(self) -> dict[str, str]:
        """The tenant as its matrix job sees it (`matrix.tenant.*`)."""
        return {
            "name": self.name,
            "tenantId": self.tenant_id,
            "clientId": self.client_id,
            "repository": self.repository,
            "defaultBranch": self.default_branch,
            "directory": self.directory,
        }


@dataclass(frozen=True)
class Fleet:
    tenants: tuple[FleetTenant, ...]
    max_parallel: int = DEFAULT_MAX_PARALLEL


def parse_tenants(content: bytes, source: str, default_branch: str = "main") -> Fleet:
    """The fleet a tenants.yaml holds; any mistake raises ConfigFileError (file:line:column)."""
    data = checked_settings(content, source, TENANTS_SCHEMA_FILE, _duplicates)
    tenants = tuple(
        FleetTenant(
            name=entry["name"],
            tenant_id=fold_id(entry["tenantId"]),
            client_id=fold_id(entry["clientId"]),
            apply_client_id=fold_id(entry["applyClientId"]) if "applyClientId" in entry else None,
            repository=entry["repository"],
            default_branch=entry.get("defaultBranch", default_branch),
        )
        for entry in data["tenants"]
    )
    return Fleet(tenants, int(data.get("maxParallel", DEFAULT_MAX_PARALLEL)))


def load_tenants(path: Path, default_branch: str = "main") -> Fleet:
    try:
        content = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None
    return parse_tenants(content, str(path), default_branch)


def _duplicates(data: Mapping[str, Any]) -> Iterator[tuple[list[Any], str]]:
    """Each name, tenant id or repository that an earlier tenant has already, at the later one."""
    for key in UNIQUE:
        seen: dict[str, int] = {}
        for index, entry in enumerate(data["tenants"]):
            value = str(entry[key]).lower()
            if value in seen:
                yield (
                    ["tenants", index, key],
                    f"{entry[key]!r} is already tenants[{seen[value]}]'s {key}: each tenant needs its own",
                )
            seen.setdefault(value, index)


def fleet_files(
    fleet: Fleet, tenants_text: bytes | None, install: InstallSpec, default_branch: str
) -> dict[str, tuple[dict[str, str], str]]:
    """Every folder init writes for a fleet, relative to the fleet's folder ("" the fleet repository itself,
    `tenants/<name>` each tenant's), with its files and the branch a new repository starts on. tenants.yaml is
    copied byte for byte when it comes from elsewhere (`tenants_text`)."""
    values = {**template_values(install, default_branch), "TENANTS_SECRET": FLEET_TOKEN_SECRET}
    own = render(FLEET_TEMPLATES, values)
    if tenants_text is not None:
        own[TENANTS_FILE] = tenants_text.decode("utf-8")
    folders = {"": (own, default_branch)}
    for tenant in fleet.tenants:
        note = (
            f"\n> This tenant is one of a fleet: the fleet repository's `{FLEET_WORKFLOW}` matrix takes its daily "
            f"snapshot (job *Snapshot {tenant.name}*), pushes `entra-gitops/drift` and the backup tags here and "
            "keeps the drift pull request, so this repository has no snapshot workflow of its own. Where this "
            "runbook says `gh workflow run entra-gitops-snapshot.yml`, run `gh workflow run entra-gitops-fleet.yml` "
            "in the fleet repository. The read identity also trusts the fleet repository: add the federated "
            "credential subject `repo:OWNER/FLEET:ref:refs/heads/main` (the fleet's README.md, Setting up).\n"
        )
        files = scaffold_files(
            tenant.tenant_id, tenant.client_id, tenant.apply_client_id, tenant.default_branch, install, fleet_note=note
        )
        folders[tenant.directory] = (files, tenant.default_branch)
    return folders


def init_fleet(
    directory: Path, tenants_path: Path, default_branch: str, install: InstallSpec, *, force: bool
) -> list[str]:
    """Scaffold the fleet tenants.yaml describes in `directory` (nothing anywhere when any file is in the way);
    what to tell the user, line by line."""
    fleet = load_tenants(tenants_path, default_branch)
    inside = (directory / TENANTS_FILE).resolve() == tenants_path.resolve()
    folders = fleet_files(fleet, None if inside else tenants_path.read_bytes(), install, default_branch)
    done = write_scaffolds({directory / folder: spec for folder, spec in folders.items()}, force=force)
    lines = [f"Scaffolded an entra-gitops fleet of {len(fleet.tenants)} tenant(s) in {directory}:"]
    for folder, (files, _) in folders.items():
        written = done[directory / folder]
        where = f"{folder}/" if folder else ""
        lines.append(f"  {where or 'the fleet repository'}{' (a new git repository)' if written.created_repo else ''}:")
        lines += [f"    {'overwrote' if path in written.overwritten else 'wrote'} {where}{path}" for path in files]
    lines += [
        "",
        "Next steps (README.md explains each one):",
        f"  1. push each tenants/<name> to its repository ({', '.join(t.repository for t in fleet.tenants)}) and set "
        "it up as its README.md says, adding the fleet repository's federated credential to its read identity",
        f"  2. gh secret set {FLEET_TOKEN_SECRET}: a token that may push to and open pull requests in those repositories",
        f"  3. cd {directory} && git add -A && git commit -m 'Start the entra-gitops fleet', push it to a private "
        "repository, then gh workflow run entra-gitops-fleet.yml",
    ]
    return lines


def matrix_outputs(fleet: Fleet) -> str:
    """The fleet workflow's first job's step outputs: the matrix (one line of JSON) and max-parallel."""
    tenants = json.dumps([t.matrix_entry() for t in fleet.tenants], separators=(",", ":"))
    return f"tenants={tenants}\nmax-parallel={min(fleet.max_parallel, len(fleet.tenants))}\n"
