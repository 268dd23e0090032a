"""Commands for running entra-gitops from a state repository's workflows: init, permissions, drift.

`init` scaffolds a state repository from the templates shipped in entra_gitops/templates/: the
settings file, the GitHub Actions workflows (snapshot, plan, apply), the pre-commit hook, a runbook
and a .gitignore. `permissions` prints the least-privilege Graph application permissions of each
identity. `drift` is the snapshot workflow's difference report against the reviewed baseline.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import git

from entra_gitops.cli.graphopts import GraphOptions, ReadProgress, graph_options, with_graph
from entra_gitops.cli.options import repo_option, settings_repo_option
from entra_gitops.cli.output import use_colour, warn
from entra_gitops.graph.audit import AuditRead
from entra_gitops.graph.client import GraphClient
from entra_gitops.model.errors import ConfigError, EntraGitopsError, ExitCode
from entra_gitops.model.ids import GUID
from entra_gitops.model.registry import Registry, default_registry
from entra_gitops.model.settings import load_config
from entra_gitops.recovery.session import audit_for, check_repository_tenant
from entra_gitops.report.jsonout import render_json
from entra_gitops.report.markdown import GITHUB_COMMENT_LIMIT, render_markdown
from entra_gitops.report.text import render_text
from entra_gitops.state.gitstore import StateRepo
from entra_gitops.workflow.drift import Drift, attributed_drift, drift_since
from entra_gitops.workflow.fleet import init_fleet
from entra_gitops.workflow.install import REQUIREMENTS_FILE, InstallSpec, install_warning
from entra_gitops.workflow.permissions import (
    NEVER_GRANT,
    Job,
    directory_roles_for,
    optional_permissions,
    permissions_document,
    permissions_for,
)
from entra_gitops.workflow.scaffold import APPLY_ENVIRONMENT, scaffold_files, write_scaffold


def _guid(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    if not GUID.match(value.strip()):
        raise ConfigError(
            f"{option} must be a GUID like 8d3b6f0a-1c2d-4e5f-8a9b-0c1d2e3f4a5b, not {value!r}",
            hint="the Entra admin center shows it on the tenant's (or the app registration's) overview page",
        )
    return value.strip().lower()


def _branch(name: str) -> str:
    try:
        git.Git().check_ref_format("--branch", name)
    except git.GitCommandError:
        raise ConfigError(f"--default-branch {name!r} is not a valid git branch name") from None
    return name


@click.command("init")
@click.argument("directory", required=False, default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--tenant-id", default=None, help="The tenant's directory (tenant) id, a GUID (or --tenants).")
@click.option("--client-id", default=None, help="Application (client) id of the read identity (snapshot, plan).")
@click.option("--apply-client-id", default=None, help="Application (client) id of the write identity (apply).")
@click.option(
    "--default-branch", default="main", show_default=True, help="The reviewed baseline branch (and git init's branch)."
)
@click.option(
    "--install",
    "--package",
    "install",
    default=None,
    metavar="SPEC",
    help="What the workflows and the pre-commit hook pip-install (default: this version, entra-gitops==VERSION, "
    "from PyPI): a requirement such as git+https://github.com/ORG/entra-gitops@v0.1.0, or one with an index, "
    "'--extra-index-url URL entra-gitops==0.1.0'. Written to .github/entra-gitops-requirements.txt.",
)
@click.option(
    "--tenants",
    "tenants_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A fleet: scaffold DIRECTORY as the fleet repository (one matrix workflow over the tenants this file "
    "lists) and each tenant's state repository in DIRECTORY/tenants/<name>.",
)
@click.option("--force", is_flag=True, help="Overwrite files that exist already.")
def init_command(
    directory: Path,
    tenant_id: str | None,
    client_id: str | None,
    apply_client_id: str | None,
    default_branch: str,
    install: str | None,
    tenants_file: Path | None,
    force: bool,
) -> None:
    """Scaffold a state repository in DIRECTORY (default: here) for GitHub Actions.

    Writes entra-gitops.yaml (settings, commented), three workflows (daily snapshot with a drift
    pull request, recovery plan, reviewed apply; actions pinned by commit, permissions per job), the
    requirements file they install from, a Dependabot config, a pre-commit hook running entra-gitops validate,
    a README.md runbook (app registrations, federated credentials, the Graph permissions each job
    needs and why, drift review, recovery) and a .gitignore. Files that exist are never
    overwritten without --force. A directory that is not a git repository is initialised.

    The workflows install this version from PyPI unless --install says otherwise; init warns when it
    cannot confirm that PyPI has it. With --tenants, DIRECTORY becomes a fleet repository instead
    (README.md, Fleets).

    \b
    Examples:
      entra-gitops init tenant-state-repo --tenant-id 8d3b6f0a-1c2d-4e5f-8a9b-0c1d2e3f4a5b
      entra-gitops init fleet --tenants tenants.yaml --install git+https://github.com/ORG/entra-gitops@v0.1.0
    Exit 0 scaffolded, 1 error (a file exists without --force, an id that is no GUID, a bad tenants.yaml).
    """
    spec = InstallSpec.parse(install)
    if tenants_file is not None:
        if tenant_id or client_id or apply_client_id:
            raise ConfigError("--tenants takes every id from the file: leave out --tenant-id and the client ids")
        for line in init_fleet(directory, tenants_file, _branch(default_branch), spec, force=force):
            click.echo(line)
        _warn_install(spec)
        return
    if tenant_id is None:
        raise click.UsageError("Missing option '--tenant-id' (or --tenants FILE, for a fleet).")
    tenant = _guid(tenant_id, "--tenant-id")
    assert tenant is not None
    files = scaffold_files(
        tenant,
        _guid(client_id, "--client-id"),
        _guid(apply_client_id, "--apply-client-id"),
        _branch(default_branch),
        spec,
    )
    done = write_scaffold(directory, files, force=force, default_branch=default_branch)
    where = "a new git repository" if done.created_repo else "the git repository"
    click.echo(f"Scaffolded an entra-gitops state repository for tenant {tenant} in {where} {directory}:")
    for path in files:
        click.echo(f"  {'overwrote' if path in done.overwritten else 'wrote'} {path}")
    if done.branch and done.branch != default_branch:
        click.echo(f"Note: the workflows treat {default_branch!r} as the baseline; this clone is on {done.branch!r}.")
    click.echo("")
    click.echo("Next steps (README.md explains each one):")
    steps = [
        f"cd {directory} && git add -A && git commit -m 'Start the entra-gitops state repository'",
        "push it to a private GitHub repository: gh repo create OWNER/REPO --private --source . --push",
        "create the read and the write app registrations, their federated credentials and their Graph "
        "application permissions (README.md, Setting up; entra-gitops permissions lists them)",
        "gh variable set ENTRA_GITOPS_TENANT_ID, ENTRA_GITOPS_CLIENT_ID and ENTRA_GITOPS_APPLY_CLIENT_ID",
        f"create the environment {APPLY_ENVIRONMENT} with required reviewers, and allow GitHub Actions to create "
        "pull requests",
        "gh workflow run entra-gitops-snapshot.yml, then review and merge the first drift pull request",
    ]
    for number, step in enumerate(steps, start=1):
        click.echo(f"  {number}. {step}")
    if not client_id or not apply_client_id:
        click.echo("README.md shows placeholders for the client ids not given (--client-id, --apply-client-id).")
    _warn_install(spec)


def _warn_install(spec: InstallSpec) -> None:
    click.echo(f"The workflows and the pre-commit hook install: {spec} ({REQUIREMENTS_FILE}).")
    warning = install_warning(spec)
    if warning:
        click.echo(f"warning: {warning}", err=True)


@click.command("permissions")
@click.option(
    "--for",
    "job_name",
    type=click.Choice([j.value for j in Job]),
    default=None,
    help="Only this job's identity. Default: both.",
)
@settings_repo_option
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def permissions_command(job_name: str | None, repo: Path, output_format: str) -> None:
    """The least-privilege Microsoft Graph application permissions the configured scope needs.

    snapshot: the read identity of the snapshot, diff and plan jobs (read permissions only).
    apply: the write identity of the apply job (it re-reads every target, then writes).
    Each permission is listed with the reasons it is needed, per resource type, and then the writes
    Graph allows only to a caller that also holds a directory role.

    \b
    Examples:
      entra-gitops permissions
      entra-gitops permissions --for apply --format json
    Exit 0 listed, 1 error (a broken entra-gitops.yaml).
    """
    load_config(repo)  # the scope lives in the repository's settings; a broken file is an error here too
    types = tuple(default_registry())
    jobs = [Job(job_name)] if job_name else list(Job)
    if output_format == "json":
        click.echo(json.dumps(permissions_document(types, jobs), indent=2))
        return
    for job in jobs:
        granted = permissions_for(types, job)
        click.echo(
            f"{job.value}: {len(granted)} Microsoft Graph application permission(s) for {job.description}, "
            f"scope: all {len(types)} resource types"
        )
        for permission, reasons in granted:
            click.echo(f"  {permission}")
            for reason in reasons:
                click.echo(f"      {reason}")
        for permission, reasons in optional_permissions(job):
            click.echo(f"  {permission} (optional)")
            for reason in reasons:
                click.echo(f"      {reason}")
        click.echo("")
        roles = directory_roles_for(types, job)
        if roles:
            click.echo(
                f"{job.value}: writes Graph also puts behind a directory role (the permissions above are not enough):"
            )
            for write in roles:
                click.echo(f"  {write.summary}")
            click.echo("")
    for permission, why in NEVER_GRANT.items():
        click.echo(f"Never grant {permission}: {why}.")


@click.command("drift")
@graph_options
@repo_option
@click.option("--baseline", required=True, help="The reviewed baseline: a branch, tag or commit (origin/main).")
@click.option(
    "--backup", "backup_id", default="latest", show_default=True, help="The backup that shows the tenant now."
)
@click.option("--type", "type_names", multiple=True, metavar="TYPE", help="Only this resource type (repeatable).")
@click.option(
    "--format", "output_format", type=click.Choice(("text", "markdown", "json")), default="text", show_default=True
)
@click.option(
    "--max-chars",
    type=click.IntRange(1000, GITHUB_COMMENT_LIMIT),
    default=GITHUB_COMMENT_LIMIT,
    show_default=True,
    help="Longest markdown to write (room for text around it in a pull request).",
)
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write here instead of stdout."
)
@click.pass_context
def drift_command(
    ctx: click.Context,
    graph: GraphOptions,
    repo: Path,
    baseline: str,
    backup_id: str,
    type_names: tuple[str, ...],
    output_format: str,
    max_chars: int,
    output: Path | None,
) -> None:
    """What changed in the tenant since the reviewed baseline: the baseline against a backup, offline.

    The baseline's tenant-state/ is the "before" side and the backup (default: the newest) the
    "after" side, so every change reads as something done to the tenant since the baseline was
    reviewed, with the recovery action that would undo it. The snapshot workflow puts this report
    in the drift pull request.

    Who made each change comes from the directory audit log (AuditLog.Read.All) when Graph is
    configured (--graph-url, ENTRA_GITOPS_GRAPH_URL, --auth or graphUrl in entra-gitops.yaml); otherwise
    the report stays offline and says "unknown". A log that cannot be read is one warning.

    \b
    Examples:
      entra-gitops drift --baseline origin/main
      entra-gitops drift --baseline origin/main --format markdown --output drift.md
    Exit 0 no drift, 1 error, 2 drift.
    """
    registry = default_registry()
    registry.select(list(type_names))
    store = StateRepo.open(repo)
    drift = drift_since(store, registry, baseline, backup_id, tuple(type_names))
    report, view, *_ = _attributed(drift, graph, store, registry)
    if output_format == "markdown":
        text = render_markdown(view, limit=max_chars)
    elif output_format == "json":
        text = render_json(view)
    else:
        text = render_text(view, colour=output is None and use_colour())
    if output is None:
        click.echo(text, nl=False)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        click.echo(f"Wrote {output}.", err=True)
    if not report.empty:
        ctx.exit(ExitCode.CHANGES)


def _attributed(drift: Drift, graph: GraphOptions, store: StateRepo, registry: Registry) -> Drift:
    """The drift with who changed what: from the audit log when Graph is configured, else "unknown"."""
    config = load_config(store.root)
    if drift.report.empty or drift.since is None or not (graph.url_chosen or graph.auth_method or config.graph_url):
        return attributed_drift(drift, None)
    since = drift.since

    async def read(client: GraphClient, progress: ReadProgress) -> AuditRead:
        await check_repository_tenant(client, store, config, registry)
        return await audit_for(client, drift.report, since, progress)

    try:
        audit = with_graph(graph, config, read)
    except EntraGitopsError as err:
        # Who changed it is for reviewers: a Graph that cannot be reached leaves the drift report as it is.
        audit = AuditRead((), False, f"who changed it is unknown: {err}")
    if audit.warning:
        warn(audit.warning)
    return attributed_drift(drift, audit.events if audit.available else None)
