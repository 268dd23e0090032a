"""What a plan's journal says before a rerun: how far an earlier apply got, and its outcome when it finished (pure)."""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from entra_gitops.recovery.journal import FINISHED, Entry, JournalEvent, span
from entra_gitops.recovery.outcome import ApplyOutcome
from entra_gitops.recovery.plan import Plan


class WriteState(enum.Enum):
    """Where one write of a plan stands by its journal."""

    DONE = "done"  # done or confirmed in the tenant
    IN_DOUBT = "inDoubt"  # sent, and no result was journalled: it is checked before anything is resent
    FAILED = "failed"
    NOT_STARTED = "notStarted"


def write_state(event: JournalEvent | None) -> WriteState:
    """A write's state from its latest journal event (None: the journal never saw it)."""
    if event is None:
        return WriteState.NOT_STARTED
    if event in FINISHED:
        return WriteState.DONE
    return WriteState.FAILED if event is JournalEvent.FAILED else WriteState.IN_DOUBT


@dataclass(frozen=True)
class JournalProgress:
    """How many of a plan's writes the journal has in each state."""

    done: int = 0
    in_doubt: int = 0
    failed: int = 0
    not_started: int = 0

    @property
    def started(self) -> bool:
        """Whether an earlier run sent anything of this plan."""
        return bool(self.done or self.in_doubt or self.failed)

    @property
    def complete(self) -> bool:
        """Whether every write of a plan that has writes is done."""
        return self.done > 0 and not (self.in_doubt or self.failed or self.not_started)


def journal_progress(plan: Plan, events: Mapping[int, JournalEvent]) -> JournalProgress:
    """Where each of the plan's writes stands by the journal's latest events."""
    counts = Counter(write_state(events.get(index)) for index in range(len(plan.writes)))
    return JournalProgress(
        counts[WriteState.DONE], counts[WriteState.IN_DOUBT], counts[WriteState.FAILED], counts[WriteState.NOT_STARTED]
    )


def finished_outcome(plan: Plan, entries: Iterable[Entry]) -> ApplyOutcome:
    """The outcome of a run that did every write and died before its history record, rebuilt from its journal."""
    started, finished = span(entries)
    return ApplyOutcome(written=tuple(range(len(plan.writes))), started=started, finished=finished)
