"""A new state repository's files, rendered from the templates in entra_gitops/templates/, and written once."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import git

from entra_gitops import __version__
from entra_gitops.model.errors import ConfigError
from entra_gitops.model.registry import default_registry
from entra_gitops.model.settings import CONFIG_FILE, load_config
from entra_gitops.workflow.permissions import NEVER_GRANT, Job, markdown_table

_TOKEN = re.compile(r"@([A-Z][A-Z_]*)@")
APPLY_ENVIRONMENT = "entra-gitops-apply"

# Files of a new state repository -> their template under entra_gitops/templates/.
TEMPLATES: Mapping[str, str] = {
    CONFIG_FILE: "entra-gitops.yaml",
    ".github/workflows/entra-gitops-snapshot.yml": "workflows/entra-gitops-snapshot.yml",
    ".github/workflows/entra-gitops-plan.yml": "workflows/entra-gitops-plan.yml",
    ".github/workflows/entra-gitops-apply.yml": "workflows/entra-gitops-apply.yml",
    ".pre-commit-config.yaml": "pre-commit-config.yaml",
    "README.md": "README.md",
    ".gitignore": "gitignore",
}


def _template(name: str) -> str:
    return (resources.files("entra_gitops") / "templates" / name).read_text(encoding="utf-8")


def _fill(text: str, values: Mapping[str, str], name: str) -> str:
    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"template {name} uses @{key}@, which init does not fill")
        return values[key]

    return _TOKEN.sub(value, text)


def never_grant_markdown() -> str:
    return "\n".join(f"**Never grant `{p}`** to either identity: {why}." for p, why in NEVER_GRANT.items())


def scaffold_files(
    tenant_id: str, client_id: str | None, apply_client_id: str | None, default_branch: str, package: str | None = None
) -> dict[str, str]:
    """The files of a new state repository, by path, rendered from the package's templates."""
    types = tuple(default_registry())
    values = {
        "TENANT_ID": tenant_id,
        "CLIENT_ID": client_id or "<read-app-client-id>",
        "APPLY_CLIENT_ID": apply_client_id or "<apply-app-client-id>",
        "DEFAULT_BRANCH": default_branch,
        "VERSION": __version__,
        "PACKAGE": package or f"entra-gitops=={__version__}",
        "SNAPSHOT_PERMISSIONS": markdown_table(types, Job.SNAPSHOT),
        "APPLY_PERMISSIONS": markdown_table(types, Job.APPLY),
        "NEVER_GRANT": never_grant_markdown(),
    }
    return {path: _fill(_template(name), values, name) for path, name in TEMPLATES.items()}


@dataclass(frozen=True)
class Scaffolded:
    """What writing a new state repository's files did."""

    created_repo: bool  # the directory was not a git repository, and now is
    overwritten: tuple[str, ...]  # files that existed (written over under force)
    branch: str | None  # the checked-out branch of a repository that existed already


def write_scaffold(directory: Path, files: Mapping[str, str], *, force: bool, default_branch: str) -> Scaffolded:
    """Write `files` into `directory`, a git repository (initialised when it is not one); nothing is written
    over unless `force`."""
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory} is not a directory")
    blocked = [path for path in files if (directory / path).is_dir()]
    if blocked:
        raise ConfigError(f"{directory}: cannot write over the folder(s) {', '.join(blocked)}")
    existing = tuple(path for path in files if (directory / path).exists())
    if existing and not force:
        raise ConfigError(
            f"{directory}: {len(existing)} file(s) exist already, nothing was written: {', '.join(existing)}",
            hint="--force overwrites them",
        )
    directory.mkdir(parents=True, exist_ok=True)
    try:
        repo = git.Repo(directory)
        created_repo = False
    except git.InvalidGitRepositoryError:
        repo = git.Repo.init(directory, initial_branch=default_branch)
        created_repo = True
    for path, text in files.items():
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text.encode("utf-8"))
    load_config(directory)  # what was written must load; a template bug is caught here, not in a workflow
    return Scaffolded(created_repo, existing, None if created_repo else _branch_of(repo))


def _branch_of(repo: git.Repo) -> str | None:
    try:
        return repo.active_branch.name
    except TypeError:
        return None  # a detached HEAD
