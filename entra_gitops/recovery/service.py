"""The recovery runs the plan and apply commands and the demo share: save a checked plan, apply it under its
journal and the repository's lock, and finish a plan whose writes an earlier run did.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from entra_gitops.graph.client import GraphClient
from entra_gitops.model.progress import Progress
from entra_gitops.model.registry import Registry
from entra_gitops.recovery.apply import apply_plan
from entra_gitops.recovery.errors import unsafe
from entra_gitops.recovery.history import read_history, record_history
from entra_gitops.recovery.journal import Journal, journal_path
from entra_gitops.recovery.outcome import ApplyOutcome
from entra_gitops.recovery.plan import Plan
from entra_gitops.recovery.planfile import write_plan_file
from entra_gitops.recovery.recheck import read_live_for
from entra_gitops.recovery.resume import finished_outcome
from entra_gitops.recovery.safety import Assessment
from entra_gitops.recovery.session import Checked
from entra_gitops.recovery.writer import WRITES_PER_SECOND
from entra_gitops.state.gitstore import StateRepo
from entra_gitops.state.lock import exclusive


class Saved(enum.Enum):
    """What became of a plan asked to be saved."""

    SAVED = "saved"
    NEEDS_FORCE = "needsForce"  # saved, and apply refuses it unless --force
    REFUSED = "refused"  # not saved: no review can accept it as it stands


def save_plan(path: Path, checked: Checked, *, allow_lockout: bool = False) -> Saved:
    """Write the plan file unless a refusal no flag of apply's can take stands in its way."""
    if checked.assessment.remaining(force=True, allow_lockout=allow_lockout):
        return Saved.REFUSED
    write_plan_file(path, checked.plan)
    return Saved.NEEDS_FORCE if checked.assessment.remaining(allow_lockout=allow_lockout) else Saved.SAVED


@contextmanager
def journal_for(store: StateRepo, plan: Plan, notice: Callable[[str], None] | None = None) -> Iterator[Journal]:
    """The plan's journal, held under the repository's lock for the whole apply (history commit included)."""
    git_dir = Path(store.repo.git_dir)
    with exclusive(git_dir, "apply", notice=notice):
        journal = Journal(journal_path(git_dir, plan))
        try:
            yield journal
        finally:
            journal.close()


def admitted_overrides(assessment: Assessment, *, force: bool, allow_lockout: bool) -> tuple[str, ...]:
    """The overrides an apply runs under, as history records them; refused as unsafe while a refusal remains."""
    remaining = assessment.remaining(force=force, allow_lockout=allow_lockout)
    if remaining:
        raise unsafe(remaining)
    return tuple(sorted({r.override for r in assessment.refusals}))


async def apply_checked(
    client: GraphClient,
    registry: Registry,
    checked: Checked,
    journal: Journal,
    *,
    reread_live: bool = False,
    overrides: tuple[str, ...] = (),
    skip_stale: bool = False,
    write_rate: float = WRITES_PER_SECOND,
    verify_delay: float = 1.0,
    progress: Progress | None = None,
) -> ApplyOutcome:
    """Apply a plan `check_for_apply` passed; `reread_live` when time went by since (a person was asked)."""
    live = await read_live_for(client, registry, checked.plan, progress=progress) if reread_live else checked.live
    return await apply_plan(
        client, registry, checked.plan, journal, checked.source, live, skip_stale=skip_stale, write_rate=write_rate,
        verify_delay=verify_delay, overrides=overrides, progress=progress,
    )  # fmt: skip


@dataclass(frozen=True)
class Completed:
    """A plan an earlier run wrote completely: the history record made now (None: history had one already)."""

    recorded: str | None
    warnings: tuple[str, ...]  # history records that could not be read


def record_completed(store: StateRepo, plan: Plan, journal: Journal, when: dt.datetime) -> Completed:
    """Finish a plan whose every write the journal has as done: record it, unless history holds it already."""
    history = read_history(store)
    if plan.checksum in history.plans:
        return Completed(None, history.warnings)
    # The run died after its last write and before its history record: the journal says when it ran.
    return Completed(record_history(store, plan, finished_outcome(plan, journal.replayed()), when), history.warnings)
