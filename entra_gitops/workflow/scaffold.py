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
from entra_gitops.workflow.install import REQUIREMENTS_FILE, InstallSpec
from entra_gitops.workflow.permissions import NEVER_GRANT, Job, markdown_table

_TOKEN = re.compile(r"@([A-Z][A-Z_]*)@")
APPLY_ENVIRONMENT = "entra-gitops-apply"
SNAPSHOT_WORKFLOW = ".github/workflows/entra-gitops-snapshot.yml"

# Files of a new state repository -> their template under entra_gitops/templates/.
TEMPLATES: Mapping[str, str] = {
    CONFIG_FILE: "entra-gitops.yaml",
    SNAPSHOT_WORKFLOW: "workflows/entra-gitops-snapshot.yml",
    ".github/workflows/entra-gitops-plan.yml": "workflows/entra-gitops-plan.yml",
    ".github/workflows/entra-gitops-apply.yml": "workflows/entra-gitops-apply.yml",
    REQUIREMENTS_FILE: "entra-gitops-requirements.txt",
    ".github/dependabot.yml": "dependabot.yml",
    ".pre-commit-config.yaml": "pre-commit-config.yaml",
    "README.md": "README.md",
    ".gitignore": "gitignore",
}

# The actions the workflows use, by template token: pinned by full commit SHA (a tag can be moved; a commit
# cannot), with the release in a comment for people and for Dependabot, which the scaffolded
# .github/dependabot.yml runs weekly to propose newer releases. Each SHA is the commit its release tag
# pointed at, as several independent public repositories pin it; it could not be read from GitHub itself
# here (no network to github.com), so a maintainer bumping these checks them with
# `git ls-remote --tags https://github.com/actions/checkout v7.0.1` and the like.
ACTIONS: Mapping[str, tuple[str, str, str]] = {
    "ACTION_CHECKOUT": ("actions/checkout", "3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "ACTION_SETUP_PYTHON": ("actions/setup-python", "5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "ACTION_UPLOAD_ARTIFACT": ("actions/upload-artifact", "043fb46d1a93c77aae656e7c1c64a875d1fc6a0a", "v7.0.1"),
    "ACTION_DOWNLOAD_ARTIFACT": ("actions/download-artifact", "3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1"),
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


def template_values(install: InstallSpec, default_branch: str) -> dict[str, str]:
    """What every template may use: the install spec, the pinned actions, the shared workflow steps."""
    values = {
        "DEFAULT_BRANCH": default_branch,
        "VERSION": __version__,
        "INSTALL": str(install),
        "REQUIREMENTS": install.requirements_text().rstrip("\n"),
        "REQUIREMENTS_FILE": REQUIREMENTS_FILE,
        "PRE_COMMIT_DEPENDENCIES": install.pre_commit_dependencies(),
        **{token: f"{name}@{sha} # {version}" for token, (name, sha, version) in ACTIONS.items()},
    }
    for fragment in ("SETUP_STEPS", "SNAPSHOT_STEPS"):
        name = f"workflows/{fragment.lower().replace('_', '-')}.yml"
        lines = _fill(_template(name), values, name).rstrip("\n").split("\n")
        values[fragment] = "\n".join(lines[next(i for i, line in enumerate(lines) if not line.startswith("#")) :])
    return values


def render(files: Mapping[str, str], values: Mapping[str, str]) -> dict[str, str]:
    """Files by path, each rendered from its template (by name) with `values`."""
    return {path: _fill(_template(name), values, name) for path, name in files.items()}


def scaffold_files(
    tenant_id: str,
    client_id: str | None,
    apply_client_id: str | None,
    default_branch: str,
    install: InstallSpec | None = None,
    *,
    fleet_note: str = "",
) -> dict[str, str]:
    """The files of a new state repository, by path, rendered from the package's templates. A repository in a
    fleet (`fleet_note` says which) has no snapshot workflow: the fleet's matrix takes its snapshots."""
    types = tuple(default_registry())
    values = {
        **template_values(install or InstallSpec.parse(None), default_branch),
        "TENANT_ID": tenant_id,
        "CLIENT_ID": client_id or "<read-app-client-id>",
        "APPLY_CLIENT_ID": apply_client_id or "<apply-app-client-id>",
        "SNAPSHOT_PERMISSIONS": markdown_table(types, Job.SNAPSHOT),
        "APPLY_PERMISSIONS": markdown_table(types, Job.APPLY),
        "NEVER_GRANT": never_grant_markdown(),
        "FLEET_NOTE": fleet_note,
    }
    return render({p: t for p, t in TEMPLATES.items() if not (fleet_note and p == SNAPSHOT_WORKFLOW)}, values)


@dataclass(frozen=True)
class Scaffolded:
    """What writing a new state repository's files did."""

    created_repo: bool  # the directory was not a git repository, and now is
    overwritten: tuple[str, ...]  # files that existed (written over under force)
    branch: str | None  # the checked-out branch of a repository that existed already


def write_scaffold(directory: Path, files: Mapping[str, str], *, force: bool, default_branch: str) -> Scaffolded:
    """Write `files` into `directory`, a git repository (initialised when it is not one); nothing is written
    over unless `force`."""
    return write_scaffolds({directory: (files, default_branch)}, force=force)[directory]


def write_scaffolds(targets: Mapping[Path, tuple[Mapping[str, str], str]], *, force: bool) -> dict[Path, Scaffolded]:
    """Write each directory's files (with its default branch, for a new repository) as `write_scaffold` does;
    every directory is checked before anything is written, so a refusal writes nothing anywhere."""
    existing: dict[Path, tuple[str, ...]] = {}
    for directory, (files, _) in targets.items():
        if directory.exists() and not directory.is_dir():
            raise ConfigError(f"{directory} is not a directory")
        blocked = [path for path in files if (directory / path).is_dir()]
        if blocked:
            raise ConfigError(f"{directory}: cannot write over the folder(s) {', '.join(blocked)}")
        existing[directory] = tuple(path for path in files if (directory / path).exists())
        if existing[directory] and not force:
            raise ConfigError(
                f"{directory}: {len(existing[directory])} file(s) exist already, nothing was written: "
                f"{', '.join(existing[directory])}",
                hint="--force overwrites them",
            )
    done: dict[Path, Scaffolded] = {}
    for directory, (files, default_branch) in targets.items():
        directory.mkdir(parents=True, exist_ok=True)
        try:
            repo = git.Repo(directory)  # this directory's own repository: a fleet's tenants/<name> gets its own
            created_repo = False
        except git.InvalidGitRepositoryError:
            repo = git.Repo.init(directory, initial_branch=default_branch)
            created_repo = True
        for path, text in files.items():
            target = directory / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text.encode("utf-8"))
        load_config(directory)  # what was written must load; a template bug is caught here, not in a workflow
        done[directory] = Scaffolded(created_repo, existing[directory], None if created_repo else _branch_of(repo))
    return done


def _branch_of(repo: git.Repo) -> str | None:
    try:
        return repo.active_branch.name
    except TypeError:
        return None  # a detached HEAD
