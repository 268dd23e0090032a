"""The backup commands: snapshot (read the tenant and commit it as a tagged backup), backups, unlock."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from entra_gitops.cli.graphopts import GraphOptions, describe_stats, graph_options, with_graph
from entra_gitops.cli.options import format_option, repo_option, utc_now
from entra_gitops.cli.output import warn
from entra_gitops.model.ids import utc_text
from entra_gitops.model.registry import Registry, default_registry
from entra_gitops.model.settings import CONFIG_FILE, DEFAULT_CONFIG_TEXT, load_config
from entra_gitops.model.textsafe import json_text, printable
from entra_gitops.state.gitstore import Backup, StateRepo
from entra_gitops.state.lock import clear, exclusive
from entra_gitops.state.normalize import Redaction
from entra_gitops.state.snapshot import SnapshotOutcome, take_snapshot

SNAPSHOT_FORMAT = "entra-gitops.snapshot-report/1"


def snapshot_report(outcome: SnapshotOutcome, elapsed: float, registry: Registry) -> list[str]:
    """The summary a person reads after a snapshot."""
    backup = outcome.backup
    lines = [f"Note: {note}." for note in outcome.notes]
    if outcome.created_commit:
        lines.append(f"Backup {backup.name} on new commit {backup.commit[:10]}.")
    else:
        lines.append(f"Backup {backup.name} on commit {backup.commit[:10]}: nothing changed since the last snapshot.")
    width = max(len(n) for n in registry.names)
    lines.append(f"  {'type':<{width}}  {'objects':>7}  {'deleted':>7}  changed files")
    for name in sorted(backup.counts):
        added, modified, removed = outcome.changes_by_type.get(name, (0, 0, 0))
        changed = f"+{added} ~{modified} -{removed}" if added or modified or removed else "-"
        lines.append(f"  {name:<{width}}  {backup.counts[name]:>7}  {backup.deleted.get(name, 0):>7}  {changed}")
    lines += read_lines(outcome)
    lines += [printable(f"Re-created by entra-gitops apply: {r.line()}.") for r in outcome.recreated]
    if not backup.complete:
        lines.append("This backup covers only the types asked for (--type), so it is marked incomplete.")
    for redaction in outcome.redactions:
        lines.append(f"warning: redacted a value that looked like a client secret: {redaction_text(redaction)}")
    if outcome.pruned:
        lines.append(f"Retention removed {len(outcome.pruned)} older backup tag(s): {', '.join(outcome.pruned)}.")
    lines.append(f"Read with {describe_stats(outcome.stats, elapsed)}.")
    return lines


def read_lines(outcome: SnapshotOutcome) -> list[str]:
    """How each type Graph tracks by delta was read: only what changed, or in full and why."""
    lines = []
    by_delta = sorted(n for n, how in outcome.read_by.items() if how == "delta")
    if by_delta:
        lines.append(f"Read by delta (only what changed since the last backup): {', '.join(by_delta)}.")
    reasons: dict[str, list[str]] = {}
    for name, why in outcome.full_reasons.items():
        reasons.setdefault(why, []).append(name)
    for why, names in reasons.items():
        lines.append(f"Read in full: {', '.join(names)} ({why}).")
    return lines


def redaction_text(redaction: Redaction) -> str:
    return f"{redaction.type_name} {redaction.object_id} {redaction.path}"


def backup_record(backup: Backup) -> dict[str, Any]:
    """One backup as `backups --format json` lists it and `snapshot --format json` reports it."""
    return {
        "id": backup.id,
        "tag": backup.name,
        "time": utc_text(backup.time),
        "commit": backup.commit,
        "tenant": backup.tenant,
        "complete": backup.complete,
        "signed": backup.signed,
        "counts": dict(backup.counts),
        "deleted": dict(backup.deleted),
    }


def snapshot_document(outcome: SnapshotOutcome, elapsed: float) -> dict[str, Any]:
    """What `snapshot --format json` prints (schemas/reports/snapshot-report.schema.json)."""
    stats = outcome.stats
    return {
        "format": SNAPSHOT_FORMAT,
        "backup": backup_record(outcome.backup),
        "createdCommit": outcome.created_commit,
        "changes": {
            name: {"added": added, "modified": modified, "removed": removed}
            for name, (added, modified, removed) in sorted(outcome.changes_by_type.items())
        },
        "pruned": list(outcome.pruned),
        "redactions": [{"type": r.type_name, "id": r.object_id, "path": r.path} for r in outcome.redactions],
        "notes": list(outcome.notes),
        "recreated": [
            {"type": r.type_name, "backupId": r.backup_id, "newId": r.new_id, "backup": r.backup, "history": r.record}
            for r in outcome.recreated
        ],
        "readBy": dict(sorted(outcome.read_by.items())),
        "fullReads": dict(outcome.full_reasons),
        "statistics": {
            "requests": stats.requests,
            "resourceUnits": stats.resource_units,
            "retries": stats.retries,
            "throttled": stats.throttled,
            "bytes": stats.bytes_read,
            "seconds": round(elapsed, 3),
            "phases": {phase: round(seconds, 3) for phase, seconds in outcome.seconds.items()},
        },
    }


@click.command("snapshot")
@graph_options
@repo_option
@click.option(
    "--type",
    "type_names",
    multiple=True,
    metavar="TYPE",
    help="Only this resource type (repeatable); such a backup is marked incomplete. Default: every type.",
)
@click.option(
    "--accept-shrink",
    "accept_shrink",
    multiple=True,
    metavar="TYPE",
    help="Commit the read although TYPE shrank past shrinkGuard (or read empty) against the last complete "
    "backup: for objects that really are gone (repeatable).",
)
@click.option(
    "--full",
    is_flag=True,
    help="Read every type in full instead of continuing from the last backup's delta links "
    "(the snapshot workflow does this once a week).",
)
@format_option(
    "text",
    "json",
    help="json: the backup (tag, commit, counts per type), changed files per type and what the read cost, on stdout.",
)
def snapshot_command(
    graph: GraphOptions,
    repo: Path,
    type_names: tuple[str, ...],
    accept_shrink: tuple[str, ...],
    full: bool,
    output_format: str,
) -> None:
    """Read the tenant and commit it to tenant-state/, tagged as backup/<UTC time>.

    Graph must be the tenant the repository holds (tenantId in entra-gitops.yaml; the first snapshot
    records it). Every type in scope is read first (live objects, soft-deleted objects, links); only
    when all reads succeeded are the files written, committed and tagged. A type whose live objects
    shrank by more than shrinkGuard (default half) against the last complete backup is a suspect
    read: no commit, no tag, exit 1, unless --accept-shrink TYPE. An unchanged tenant gets a new tag
    on the same commit. Older backup tags beyond `retention` (default 5) are removed; their commits
    stay in history. A --repo DIR (or ENTRA_GITOPS_REPO) that is no repository yet is created; without
    either, the repository is the one holding the current folder, and outside any it is an error.

    \b
    Examples:
      entra-gitops snapshot --repo ./tenant               creates ./tenant on the first run
      entra-gitops snapshot --graph-url http://127.0.0.1:8080/v1.0 --type user --type group
      entra-gitops snapshot --accept-shrink user          after removing many users on purpose
    Exit 0 backed up, 1 error (nothing committed or tagged).
    """
    registry = default_registry()
    types = registry.select(list(type_names))
    accepted = frozenset(t.name for t in registry.select(list(accept_shrink))) if accept_shrink else frozenset()
    store = StateRepo.open(repo, create=True, initial_files={CONFIG_FILE: DEFAULT_CONFIG_TEXT.encode()})
    config = load_config(store.root)
    started = time.monotonic()
    with exclusive(Path(store.repo.git_dir), "snapshot", notice=warn):
        outcome = with_graph(
            graph,
            config,
            lambda client, progress: take_snapshot(
                client, store, registry, types, config, utc_now(), progress, accepted, full=full
            ),
        )
    elapsed = time.monotonic() - started
    if outcome.audit_warning:
        warn(outcome.audit_warning)
    if output_format == "json":
        for redaction in outcome.redactions:
            warn(f"redacted a value that looked like a client secret: {redaction_text(redaction)}")
        click.echo(json_text(snapshot_document(outcome, elapsed)))
        return
    for line in snapshot_report(outcome, elapsed, registry):
        click.echo(line)


@click.command("backups")
@repo_option
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def backups_command(repo: Path, output_format: str) -> None:
    """List the backups in a state repository, newest first: id, time, commit, objects, completeness, signature.

    "signed" says the tag carries a signature; `entra-gitops verify` says whether it is good.

    \b
    Examples:
      entra-gitops backups                               in the state repository or any folder inside it
      entra-gitops backups --repo ./tenant --format json | jq -r '.[0].id'
    Exit 0 listed (also when there are none yet), 1 error (no state repository).
    """
    store = StateRepo.open(repo)
    found = store.backups()
    if output_format == "json":
        click.echo(json.dumps([backup_record(b) for b in found], indent=2))
        return
    if not found:
        click.echo(f"No backups in {store.root} yet: run 'entra-gitops snapshot --repo {repo}'.")
        return
    click.echo(f"{'backup':<17}  {'time (UTC)':<19}  {'commit':<10}  {'objects':>7}  complete  signed")
    for b in found:
        when = b.time.strftime("%Y-%m-%d %H:%M:%S")
        complete, signed = ("yes" if b.complete else "no"), ("yes" if b.signed else "no")
        click.echo(f"{b.id:<17}  {when:<19}  {b.commit[:10]:<10}  {sum(b.counts.values()):>7}  {complete:<8}  {signed}")


@click.command("unlock")
@repo_option
@click.option(
    "--force",
    "lock_id",
    metavar="LOCK-ID",
    default=None,
    help="Clear the lock with this id although its holder looks alive (the id is in the refusal).",
)
def unlock_command(repo: Path, lock_id: str | None) -> None:
    """Clear the lock of a snapshot or apply that is gone.

    A holder that is alive on this host (or a lock from another host younger than six hours) is
    not cleared: the refusal names its lock id, and `--force LOCK-ID` clears exactly that lock, as
    Terraform's force-unlock does. A lock whose run is gone is also taken over by the next run.

    \b
    Examples:
      entra-gitops unlock                                clears a lock whose run is gone
      entra-gitops unlock --force 3f9c2a1b7d4e6f80       the id a refusal named
    Exit 0 cleared (or there was no lock), 1 error (a live holder's lock without its --force LOCK-ID).
    """
    store = StateRepo.open(repo)
    holder = clear(Path(store.repo.git_dir), lock_id)
    click.echo(f"Cleared the lock held by {holder.describe()}." if holder else "There was no lock.")
