"""Backups proven unaltered: each backup tag's signature, its manifest against the commit and tree, its history."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

from entra_gitops.model.errors import EntraGitopsError
from entra_gitops.model.registry import Registry
from entra_gitops.model.tenant import Lifecycle
from entra_gitops.state.gitstore import Backup, StateRepo
from entra_gitops.state.layout import locate

ALLOWED_SIGNERS = Path(".entra-gitops") / "allowed_signers"
"""The ssh keys allowed to sign backups, in ssh-keygen's allowed signers format, relative to the repository."""


class BackupNotVerified(EntraGitopsError):
    """A backup that fails verification was offered as a source while signing is configured: nothing was used."""


class Verdict(NamedTuple):
    """One backup tag as `verify` found it: who signed it, and every problem (none: it is what was recorded)."""

    backup: Backup
    signer: str | None
    problems: tuple[str, ...]

    @property
    def good(self) -> bool:
        return not self.problems


class RemoteCheck(NamedTuple):
    """A remote's backup tags against these: problems per local tag, and the tags only the remote has."""

    problems: Mapping[str, tuple[str, ...]]
    only_there: tuple[str, ...]


def verify_backup(
    store: StateRepo, registry: Registry, backup: Backup, signing: str | None, branch: str | None = None
) -> Verdict:
    """Check one backup tag: signed by an allowed key, its manifest the commit and tree it names, its record's
    counts those of the tree, and its commit on the history of `branch` (None: of some branch, local or
    remote-tracking, as a snapshot's commit is on the branch it was made on)."""
    problems: list[str] = []
    signer = None
    if not backup.signed or backup.tag is None:
        problems.append("unsigned" if signing else "unsigned (signing is not set in entra-gitops.yaml)")
    else:
        signer, problem = _signature(store, backup.tag, signing or "ssh")
        problems += [problem] if problem else []
    manifest = backup.manifest
    if manifest is None:
        problems.append("its record has no manifest (made before manifests, or not by entra-gitops)")
    else:
        if manifest.commit != backup.commit:
            problems.append(f"the tag names commit {backup.commit[:12]}, its manifest {manifest.commit[:12]}")
        tree = store.state_tree(backup.commit)
        if tree != manifest.tree:
            problems.append(f"the commit's tenant-state/ tree is {tree[:12]}, its manifest says {manifest.tree[:12]}")
        problems += _count_problems(registry, backup, store.tree_blobs(backup.commit))
    if not store.is_ancestor(backup.commit, branch):
        where = f"the history of {branch}" if branch else "the history of any branch"
        problems.append(
            f"commit {backup.commit[:12]} is not on {where}: the history was rewritten, "
            "or the tag was moved to a commit of its own"
        )
    return Verdict(backup, signer, tuple(problems))


def check_remote(store: StateRepo, backups: Iterable[Backup], remote: str) -> RemoteCheck:
    """Each local backup tag against the remote's: deleted there, re-pointed to another commit, or moved."""
    theirs = store.remote_tags(remote)
    ours = {b.name: b for b in backups}
    problems: dict[str, tuple[str, ...]] = {}
    for name, backup in ours.items():
        if name not in theirs:
            problems[name] = (f"not on {remote}: deleted there, or never pushed",)
            continue
        tag, commit = theirs[name]
        if commit != backup.commit:
            problems[name] = (
                f"re-pointed on {remote}: there it names commit {commit[:12]}, here {backup.commit[:12]}",
            )
        elif tag != backup.tag:
            problems[name] = (f"moved on {remote}: there it is tag object {tag[:12]}, here {str(backup.tag)[:12]}",)
    return RemoteCheck(problems, tuple(sorted(set(theirs) - set(ours), reverse=True)))


def required_verification(
    store: StateRepo, registry: Registry, signing: str | None, name: str, *, no_verify: bool
) -> str | None:
    """Refuse backup tag `name` as a source when signing is configured and it fails verification; with
    `no_verify`, the warning to show instead. Nothing is checked when signing is not configured."""
    if signing is None:
        return None
    backup = next((b for b in store.backups() if b.name == name), None)
    if backup is None:
        problems: tuple[str, ...] = (f"no tag {name} is left to check (retention removed it, or it was deleted)",)
    else:
        problems = verify_backup(store, registry, backup, signing).problems
    if not problems:
        return None
    found = "; ".join(problems)
    if no_verify:
        return f"{name} fails verification ({found}); used anyway because of --no-verify"
    raise BackupNotVerified(
        f"{name} fails verification: {found}; nothing was compared, planned or applied from it",
        hint="entra-gitops verify says more; --no-verify uses it anyway (apply records that in history)",
    )


def _signature(store: StateRepo, tag: str, signing: str) -> tuple[str | None, str | None]:
    """(who signed, None) for a signature git verifies, else (None, the problem)."""
    allowed = store.root / ALLOWED_SIGNERS
    if signing == "ssh" and not allowed.is_file():
        return None, f"its signature cannot be checked: {ALLOWED_SIGNERS} is missing (the keys allowed to sign)"
    good, said = store.verify_signature(tag, signing, allowed if signing == "ssh" else None)
    return (said, None) if good else (None, f"its signature does not verify: {said}")


def _count_problems(registry: Registry, backup: Backup, paths: Iterable[str]) -> list[str]:
    """Where the record's per-type counts differ from the files of the backup's tree."""
    found: Counter[tuple[str, Lifecycle]] = Counter()
    for path in paths:
        where = locate(registry, path)
        if where is not None:
            found[(where.rtype.name, where.lifecycle)] += 1
    problems = []
    for recorded, lifecycle, what in (
        (backup.counts, Lifecycle.ACTIVE, ""),
        (backup.deleted, Lifecycle.SOFT_DELETED, "deleted "),
    ):
        for type_name, count in sorted(recorded.items()):
            held = found[(type_name, lifecycle)]
            if held != count:
                problems.append(f"its record counts {count} {what}{type_name} objects, the tree holds {held}")
    return problems
