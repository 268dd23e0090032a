"""Apply: execute a verified plan against the live tenant, write by write, journalled, then verified.

Each write's intent is journalled before it is sent and its result before the next one, so a rerun
knows where a killed run stopped; what became of each write travels from write to write as a frozen
Tally, and the run ends in a frozen ApplyOutcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from entra_gitops.graph.client import MAX_BATCH, GraphClient, batch_error
from entra_gitops.graph.targeted import Target
from entra_gitops.model.errors import GraphError
from entra_gitops.model.ids import fold_id
from entra_gitops.model.progress import Progress, watched
from entra_gitops.model.registry import Registry, ThrottleScope
from entra_gitops.model.tenant import Lifecycle, TenantState
from entra_gitops.recovery.errors import StalePlanError
from entra_gitops.recovery.journal import FINISHED, Journal, JournalEvent, now_text
from entra_gitops.recovery.outcome import ApplyOutcome, Failure, ending
from entra_gitops.recovery.plan import Plan, holds_redaction
from entra_gitops.recovery.recheck import stale_objects, touched_objects, verify_plan
from entra_gitops.recovery.recreate import changing_ids, recreated_identifiers, remap_object, unresolved
from entra_gitops.recovery.render import write_label
from entra_gitops.recovery.steps import Step, Write
from entra_gitops.recovery.writer import WRITES_PER_SECOND, Writer
from entra_gitops.report.diff import ChangeKind, ObjectChange, difference_report
from entra_gitops.state.sources import targeted_live_state

# Where callers from before the split (bench/apply.py) find these.
# How long to wait for Graph to find an object this run just restored or created (about seven seconds).
REPLICATION_LAG_DELAYS = (1.0, 2.0, 4.0)
IN_DOUBT = frozenset({None, 500, 502, 503, 504})


@dataclass(frozen=True)
class Tally:
    """What this run did so far, by write index; each write's result makes a new Tally."""

    written: tuple[int, ...] = ()
    confirmed: tuple[int, ...] = ()
    failures: tuple[Failure, ...] = ()
    failed_objects: frozenset[tuple[str, str]] = frozenset()  # nothing more is written to these
    fresh: frozenset[str] = frozenset()  # objects this run restored or created: Graph may not find them at once

    def wrote(self, index: int, made: str | None = None) -> Tally:
        """`index` written; `made` the object it restored or created, which Graph may not find for a while."""
        return replace(self, written=(*self.written, index), fresh=self.fresh | {made} if made else self.fresh)

    def confirm(self, index: int) -> Tally:
        return replace(self, confirmed=(*self.confirmed, index))

    def fail(self, failure: Failure, key: tuple[str, str]) -> Tally:
        return replace(self, failures=(*self.failures, failure), failed_objects=self.failed_objects | {key})


class _Run:
    """One run's writes of one verified plan: each step journalled, sent, and its result tallied."""

    def __init__(
        self,
        writer: Writer,
        journal: Journal,
        plan: Plan,
        lag_delays: tuple[float, ...],
        progress: Progress,
        recreated: frozenset[str] = frozenset(),
    ) -> None:
        self.writer = writer
        self.journal = journal
        self.plan = plan
        self.recreated = recreated  # every id that changes with the plan's re-creations: sent only once known
        for entry in journal.entries:  # a rerun sends with the ids an earlier run's creates were given
            index, made = entry.get("write"), entry.get("created")
            if isinstance(index, int) and 0 <= index < len(plan.writes) and isinstance(made, Mapping):
                writer.ids.update({fold_id(str(k)): str(v) for k, v in made.items()})
        self.lag_delays = lag_delays
        self.progress = progress  # told of each write as its result is journalled

    def created(self, write: Write) -> dict[str, dict[str, str]]:
        """The journal's note of the ids Graph gave a re-created object (backup id -> new id, its appId too): what
        a rerun sends with."""
        if write.step is not Step.CREATE or fold_id(write.object_id) not in self.writer.ids:
            return {}
        olds = [write.object_id, *self.writer.renames.get(fold_id(write.object_id), {}).values()]
        return {"created": {old: self.writer.ids[fold_id(old)] for old in olds if fold_id(old) in self.writer.ids}}

    def done(self, tally: Tally, index: int, status: int, **details: Any) -> Tally:
        write = self.plan.writes[index]
        self.journal.record(index, JournalEvent.DONE, write, status=status, **details, **self.created(write))
        self.progress.advance()
        return tally.wrote(index, fold_id(write.object_id) if write.step in (Step.RESTORE, Step.CREATE) else None)

    def confirmed(self, tally: Tally, index: int, **details: Any) -> Tally:
        write = self.plan.writes[index]
        self.journal.record(index, JournalEvent.CONFIRMED, write, **details, **self.created(write))
        self.progress.advance()
        return tally.confirm(index)

    def failed(self, tally: Tally, index: int, err: GraphError) -> Tally:
        write = self.plan.writes[index]
        self.journal.record(index, JournalEvent.FAILED, write, status=err.status, code=err.code, error=str(err))
        self.progress.advance()
        return tally.fail(Failure.of(index, write, err), write.key)

    async def send(self, write: Write) -> int | GraphError:
        """Graph's status for `write`, or the error it answered with."""
        try:
            return await self.writer.send(write)
        except GraphError as err:
            return err

    async def after_lag(self, write: Write, err: GraphError) -> int | GraphError:
        """Send again while Graph does not find an object this run just made; `err` when it never does."""
        # Safe to resend: every attempt so far found nothing to write to.
        for delay in self.lag_delays:
            await asyncio.sleep(delay)
            answer = await self.send(write)
            if not (isinstance(answer, GraphError) and answer.status == 404):
                return answer
        return err

    async def settle(self, tally: Tally, index: int, err: GraphError) -> Tally:
        """A write Graph refused or left unanswered: confirm it took effect, resend once, or record it."""
        write = self.plan.writes[index]
        # A re-creation refused with a 400 did not happen: an object found by its key then is someone else's.
        recreation = write.step is Step.CREATE and self.writer.registry.get(write.type_name).recreate_as_new
        doubt = err.status in IN_DOUBT or (err.status in (400, 404) and not recreation)
        if doubt and await self.writer.applied(write):
            return self.confirmed(tally, index, status=err.status)
        answer: int | GraphError = await self.send(write) if err.status in IN_DOUBT else err
        # Graph is eventually consistent: an object this run just restored or created may not be found for a while.
        if isinstance(answer, GraphError) and answer.status == 404 and self.made_now(write, tally):
            answer = await self.after_lag(write, answer)
        if isinstance(answer, GraphError):
            return self.failed(tally, index, answer)
        self.journal.record(index, JournalEvent.DONE, write, status=answer, retried=True, **self.created(write))
        self.progress.advance()
        return tally.wrote(index)

    @staticmethod
    def made_now(write: Write, tally: Tally) -> bool:
        return bool({fold_id(write.object_id), fold_id(write.target or "")} & tally.fresh)

    async def flush(self, tally: Tally, chunk: list[int]) -> Tally:
        """Send a group of independent writes: one request alone, several through one $batch call."""
        for index in chunk:
            self.journal.record(index, JournalEvent.SENT, self.plan.writes[index])
        more = f" and {len(chunk) - 1} more in one $batch" if len(chunk) > 1 else ""
        self.progress.advance(0, current=write_label(self.plan.writes[chunk[0]]) + more)
        if len(chunk) == 1:
            answer = await self.send(self.plan.writes[chunk[0]])
            if isinstance(answer, GraphError):
                return await self.settle(tally, chunk[0], answer)
            return self.done(tally, chunk[0], answer)
        writes = [self.plan.writes[i] for i in chunk]
        for index, write, answer in zip(chunk, writes, await self.writer.send_batch(writes), strict=True):
            if answer.status < 400:
                tally = self.done(tally, index, answer.status, batched=True)
            else:
                tally = await self.settle(tally, index, batch_error(answer, f"{write.method} {write.path}"))
        return tally

    async def in_effect_already(self, write: Write, event: JournalEvent | None) -> str | None:
        """Why `write` need not be sent (an earlier attempt took effect, the relationship exists), or None."""
        if event is JournalEvent.SENT and await self.writer.applied(write):
            return "the earlier attempt took effect"
        recreation = self.writer.registry.get(write.type_name).recreate_as_new is not None
        if write.step is Step.CREATE and event is None and not recreation and await self.writer.applied(write):
            return "it exists already: not created twice"
        return None

    def breaks_chunk(self, chunk: list[int], write: Write) -> bool:
        """Whether `write` must wait for `chunk` to be sent: another step, a full batch, or the same object."""
        first = self.plan.writes[chunk[0]]
        return (
            first.step is not write.step
            or len(chunk) == MAX_BATCH
            or any(self.plan.writes[i].key == write.key for i in chunk)
        )

    async def writes(
        self, registry: Registry, events: Mapping[int, JournalEvent], settled: frozenset[int], tally: Tally
    ) -> Tally:
        """Every write not finished yet, in the plan's order, batched where Graph allows."""
        earlier = sum(1 for index in range(len(self.plan.writes)) if events.get(index) in FINISHED)
        self.progress.phase("apply", len(self.plan.writes), "writes", done=earlier)
        chunk: list[int] = []
        for index, write in enumerate(self.plan.writes):
            if events.get(index) in FINISHED:
                continue
            if index in settled:
                tally = self.confirmed(tally, index, note="it is in effect already: not sent again")
                continue
            if chunk and self.breaks_chunk(chunk, write):
                tally, chunk = await self.flush(tally, chunk), []
            if write.key in tally.failed_objects:
                self.progress.advance()  # not written: an earlier write to the object failed, or it is stale
                continue
            gone = unresolved(write, self.recreated, self.writer.ids)
            if gone is not None:
                if chunk:
                    tally, chunk = await self.flush(tally, chunk), []
                if unresolved(write, self.recreated, self.writer.ids) is not None:
                    message = f"not sent: it names {gone}, whose re-creation did not succeed"
                    tally = self.failed(tally, index, GraphError(message, code="recreationFailed"))
                    continue
            note = await self.in_effect_already(write, events.get(index))
            if note is not None:
                tally = self.confirmed(tally, index, note=note)
            elif registry.get(write.type_name).throttle_scope is not ThrottleScope.IDENTITY:
                # Conditional Access allows one request a second, batched or not: these go one by one.
                if chunk:
                    tally, chunk = await self.flush(tally, chunk), []
                tally = await self.flush(tally, [index])
            else:
                chunk.append(index)
        return await self.flush(tally, chunk) if chunk else tally


def _refuse_stale(stale: tuple[tuple[str, str], ...]) -> StalePlanError:
    listed = "; ".join(f"{t} {i}" for t, i in stale[:10]) + (" and more" if len(stale) > 10 else "")
    return StalePlanError(
        f"{len(stale)} object(s) changed since the plan was made, so nothing was written: {listed}",
        hint="make and review a new plan, or apply the rest with --skip-stale",
    )


async def apply_plan(
    client: GraphClient,
    registry: Registry,
    plan: Plan,
    journal: Journal,
    source: TenantState,
    live: TenantState,
    *,
    skip_stale: bool = False,
    write_rate: float = WRITES_PER_SECOND,
    verify_attempts: int = 5,
    verify_delay: float = 1.0,
    lag_delays: tuple[float, ...] = REPLICATION_LAG_DELAYS,
    overrides: tuple[str, ...] = (),
    progress: Progress | None = None,
) -> ApplyOutcome:
    """Execute a verified `plan` (see `verify_plan`): refuse when targets moved, write in order, verify.

    `progress` is told the writes done of the plan's total, the step at hand and each wait on the write pace.
    """
    watch = watched(progress)
    started = now_text()
    events = journal.last_events()
    touched = touched_objects(plan, events)
    stale = tuple(stale_objects(plan, live, touched))
    if stale and not skip_stale:
        raise _refuse_stale(stale)
    plan, settled = verify_plan(registry, plan, source, live, touched)
    writer = Writer(client, registry, write_rate, watch)
    writer.renames = {fold_id(w.object_id): changing_ids(registry, w, source) for w in plan.writes}
    run = _Run(writer, journal, plan, lag_delays, watch, recreated_identifiers(registry, plan.writes, source))
    tally = await run.writes(registry, events, settled, Tally(failed_objects=frozenset(stale)))
    types = registry.select(list(plan.types))
    ids = MappingProxyType(dict(run.writer.ids))
    warnings = await _verify(
        client, registry, plan, source, types, tally.failed_objects, verify_attempts, verify_delay, watch, ids
    )
    earlier = tuple(sorted(i for i, e in events.items() if e in FINISHED and i < len(plan.writes)))
    succeeded = len(earlier) + len(tally.written) + len(tally.confirmed)
    return ApplyOutcome(
        status=ending(succeeded, tally.failures, bool(warnings or stale)),
        earlier=earlier,
        written=tally.written,
        confirmed=tally.confirmed,
        stale=stale,
        failures=tally.failures,
        warnings=tuple(warnings),
        overrides=overrides,
        started=started,
        finished=now_text(),
        recreated=tuple(
            (w.type_name, w.object_id, ids[fold_id(w.object_id)])
            for w in plan.writes
            if w.step is Step.CREATE and fold_id(w.object_id) in run.recreated and fold_id(w.object_id) in ids
        ),
    )


async def _verify(
    client: GraphClient,
    registry: Registry,
    plan: Plan,
    source: TenantState,
    types: tuple[Any, ...],
    skip: frozenset[tuple[str, str]],
    attempts: int,
    delay: float,
    progress: Progress,
    ids: Mapping[str, str] = MappingProxyType({}),
) -> list[str]:
    """Poll until every written object matches the source (Graph is eventually consistent); objects re-created
    with new ids are looked for by their new ids, and the source's references to them moved there."""

    def moved(key: tuple[str, str]) -> tuple[str, str]:
        return (key[0], ids.get(fold_id(key[1]), key[1]))

    targets = {moved(w.key) for w in plan.writes if w.step is not Step.CREATE} - {moved(k) for k in skip}
    if not targets:
        return []
    wanted = TenantState.of([remap_object(registry, o, ids) for o in source if moved(o.key) in targets], source.types)
    remaining = targets
    # Only the written objects are read back, by id: a large tenant costs no more to verify than a small one.
    names = [t.name for t in types]
    wanted_keys = [Target(*key) for key in sorted(targets)]
    for attempt in range(attempts):
        live = await targeted_live_state(
            client, registry, names, wanted_keys, counted=False, progress=progress, phase="verify"
        )
        present = TenantState.of([o for o in live if o.key in targets], live.types)
        report = difference_report(registry, wanted, present, backup_name="plan", against_name="live")
        remaining = {
            (c.type_name, c.id)
            for c in report.changes
            if c.recoverable
            and not (c.kind is ChangeKind.CREATED and _deleted(live, c.type_name, c.id))
            and _written_back(c)
        }
        if not remaining:
            return []
        if attempt < attempts - 1:
            await asyncio.sleep(delay)
    return [
        f"{t} {i} does not match the source yet after the writes (Graph may still be catching up)"
        for t, i in sorted(remaining)
    ]


def _written_back(change: ObjectChange) -> bool:
    """Whether a remaining difference is one the plan writes (a redacted backup value never is)."""
    if change.kind is not ChangeKind.MODIFIED:
        return True
    return any(p.recoverable and not holds_redaction(p.before) for p in change.properties) or any(
        link.blocker is None for link in change.links
    )


def _deleted(live: TenantState, type_name: str, object_id: str) -> bool:
    found = live.get(type_name, object_id)
    return found is None or found.lifecycle is Lifecycle.SOFT_DELETED
