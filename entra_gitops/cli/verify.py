"""The verify command: prove each backup tag unaltered (signature, manifest, history, and against a remote)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from entra_gitops.cli.options import repo_option
from entra_gitops.model.errors import ExitCode
from entra_gitops.model.registry import default_registry
from entra_gitops.model.settings import load_config
from entra_gitops.model.textsafe import printable
from entra_gitops.state.gitstore import StateRepo
from entra_gitops.state.verify import ALLOWED_SIGNERS, Verdict, check_remote, verify_backup


@click.command("verify")
@repo_option
@click.option("--backup", "backup_id", default=None, metavar="ID", help="Only this backup (default: every backup tag).")
@click.option(
    "--remote",
    metavar="NAME",
    default=None,
    help="Also compare the backup tags with this remote's (a name or URL): deleted, re-pointed or moved there.",
)
@click.option(
    "--branch",
    metavar="REF",
    default=None,
    help="The branch whose history every backup's commit must be on (default: any local or remote-tracking "
    "branch's; the snapshot workflow commits to entra-gitops/drift).",
)
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def verify_command(
    ctx: click.Context, repo: Path, backup_id: str | None, remote: str | None, branch: str | None, output_format: str
) -> None:
    """Check that each backup tag is what its snapshot made, and name every one that is not.

    For each backup tag: its signature is good and made by a key in .entra-gitops/allowed_signers
    (signing: ssh) or in your keyring (signing: gpg); its record's manifest names the very commit
    the tag points at and that commit's tenant-state/ tree; the record's object counts are those of
    the tree; and the commit is on a branch's history (--branch: that branch's). With --remote, each tag is also compared
    with the remote's: deleted there, pointing at another commit, or another tag object.

    A tag that fails any check is not evidence of the tenant's state: when signing is set in
    entra-gitops.yaml, diff, plan and apply refuse it unless --no-verify.

    \b
    Examples:
      entra-gitops verify                                   every backup tag of this repository
      entra-gitops verify --backup 20261121T230000Z --remote origin
    Exit 0 every backup checked is good, 1 any failure (each named) or error.
    """
    registry = default_registry()
    store = StateRepo.open(repo)
    config = load_config(store.root)
    backups = [store.resolve_backup(backup_id)] if backup_id else store.backups()
    if branch is not None:
        store.resolve(branch)  # a typo in --branch is an error, not a failure of every backup
    verdicts = [verify_backup(store, registry, b, config.signing, branch) for b in backups]
    only_there: tuple[str, ...] = ()
    if remote is not None:
        remote_check = check_remote(store, backups, remote)
        verdicts = [v._replace(problems=v.problems + remote_check.problems.get(v.backup.name, ())) for v in verdicts]
        only_there = remote_check.only_there
    if output_format == "json":
        click.echo(json.dumps(verify_document(verdicts, remote, only_there), indent=2))
    else:
        for line in verify_lines(verdicts, remote, only_there, signing=config.signing):
            click.echo(line)
    if not verdicts or any(not v.good for v in verdicts):
        ctx.exit(ExitCode.ERROR)


def verify_lines(
    verdicts: list[Verdict], remote: str | None, only_there: tuple[str, ...], *, signing: str | None
) -> list[str]:
    """The text report: one line per backup, its problems under it, then a summary."""
    if not verdicts:
        return ["No backups to verify: nothing is proven (run entra-gitops snapshot first)."]
    lines = []
    for verdict in verdicts:
        name = verdict.backup.name
        if verdict.good:
            lines.append(f"good  {name}  signed: {printable(verdict.signer or '')}")
            continue
        lines.append(f"FAIL  {name}")
        lines += [f"        {printable(p)}" for p in verdict.problems]
    lines += [
        f"note  {name} is on {remote} only (not fetched here): fetch the tags and verify again" for name in only_there
    ]
    failed = sum(not v.good for v in verdicts)
    against = f", compared with {remote}" if remote else ""
    if failed:
        lines.append(f"{failed} of {len(verdicts)} backup(s) failed verification{against}.")
        if signing is None:
            lines.append(f"Set signing in entra-gitops.yaml and list the signing keys in {ALLOWED_SIGNERS} (README).")
    else:
        lines.append(f"All {len(verdicts)} backup(s) verified{against}.")
    return lines


def verify_document(verdicts: list[Verdict], remote: str | None, only_there: tuple[str, ...]) -> dict[str, object]:
    """The JSON report: every backup with its verdict."""
    return {
        "verified": all(v.good for v in verdicts) and bool(verdicts),
        "remote": remote,
        "backups": [
            {
                "id": v.backup.id,
                "tag": v.backup.name,
                "commit": v.backup.commit,
                "good": v.good,
                "signer": v.signer,
                "problems": list(v.problems),
            }
            for v in verdicts
        ],
        "onRemoteOnly": list(only_there),
    }
