"""Apply: execute a reviewed plan against the live tenant: verified step by step, journalled, stale-checked.

Apply executes steps, never stored requests: every step is checked against the plan's source and the
live tenant, and its request derived again through the registry (steps.py). A plan whose stored request
differs, or whose step recovery would not make, is refused before anything is sent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from entra_gitops.graph.client import MAX_BATCH, BatchRequest, GraphClient, GraphResponse, batch_error
from entra_gitops.model.errors import EntraGitopsError, ExitCode, GraphError
from entra_gitops.model.frozen import thaw
from entra_gitops.model.ids import fold_id, graph_path, utc_text
from entra_gitops.model.registry import Registry, ThrottleScope, schemas_dir
from entra_gitops.model.tenant import Lifecycle, TenantState
from entra_gitops.recovery.plan import (
    PLAN_FORMAT,
    Plan,
    compute_checksum,
    fingerprint,
    holds_redaction,
    plan_from_document,
)
from entra_gitops.recovery.steps import LINK_STEPS, Step, StepError, Write, check_step, derive_request, link_ids
from entra_gitops.report.diff import ChangeKind, ObjectChange, difference_report
from entra_gitops.state.sources import live_state

WRITES_PER_SECOND = 20.0
# How long to wait for Graph to find an object this run just restored or created (about seven seconds).
REPLICATION_LAG_DELAYS = (1.0, 2.0, 4.0)
IN_DOUBT = frozenset({None, 500, 502, 503, 504})


class PlanFileError(EntraGitopsError):
    """A plan file that cannot be trusted: unreadable, another format, changed, or holding steps no recovery makes."""


class StalePlanError(EntraGitopsError):
    """Objects moved since the plan was made; applying would overwrite newer changes."""

    exit_code = ExitCode.STALE


class UnsafePlanError(EntraGitopsError):
    """A plan that a safety guard refuses: a threshold, a protected object, a missing type, a lockout."""

    exit_code = ExitCode.UNSAFE


class Status(enum.Enum):
    """How an apply ended, as recovery history records it."""

    SUCCEEDED = "succeeded"
    SUCCEEDED_WITH_WARNINGS = "succeededWithWarnings"
    PARTIALLY_APPLIED = "partiallyApplied"
    FAILED = "failed"


class JournalEvent(enum.Enum):
    """What the journal knows of one write: sent (in doubt until a result follows), done, confirmed, failed."""

    SENT = "sent"
    DONE = "done"
    CONFIRMED = "confirmed"  # took effect, seen in the tenant, although its answer was lost or refused
    FAILED = "failed"


FINISHED = frozenset({JournalEvent.DONE, JournalEvent.CONFIRMED})


@dataclass(frozen=True)
class Failure:
    """A write Graph refused, as history keeps it."""

    write: int
    type_name: str
    object_id: str
    method: str
    path: str
    status: int | None
    code: str | None
    message: str
    request_id: str | None

    def record(self) -> dict[str, Any]:
        return {
            "write": self.write,
            "type": self.type_name,
            "id": self.object_id,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "requestId": self.request_id,
        }


@cache
def _plan_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((schemas_dir() / "plan" / "plan.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def read_plan_file(path: Path) -> tuple[Plan, dict[str, Any]]:
    """The plan in `path`, refused unless it is ours, well-formed, and unchanged since it was made."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise PlanFileError(f"{path}: cannot read the plan file: {err.strerror}") from None
    except ValueError as err:
        line, column = getattr(err, "lineno", 1), getattr(err, "colno", 1)
        raise PlanFileError(f"{path}:{line}:{column}: not a plan file: {err}") from None
    if not isinstance(document, dict) or document.get("format") != PLAN_FORMAT:
        found = document.get("format") if isinstance(document, dict) else None
        raise PlanFileError(
            f"{path}: plan format {found!r} is not {PLAN_FORMAT!r}", hint="make a new plan with this version"
        )
    error = jsonschema.exceptions.best_match(_plan_validator().iter_errors(document))
    if error is not None:
        where = "/".join(map(str, error.absolute_path)) or "(the document)"
        raise PlanFileError(f"{path}: not a well-formed plan at {where}: {error.message}")
    if document.get("checksum") != compute_checksum(document):
        raise PlanFileError(
            f"{path}: the plan was changed after it was made (its checksum does not match)",
            hint="a plan is applied exactly as reviewed: make and review a new plan",
        )
    try:
        return plan_from_document(document), document
    except (KeyError, TypeError, ValueError) as err:
        raise PlanFileError(f"{path}: the plan file is incomplete ({err})") from None


class Journal:
    """Each write's intent and result, appended and flushed before the next write, so nothing is lost."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.entries: list[dict[str, Any]] = []
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        for line in text.splitlines():
            try:
                entry = json.loads(line)
                JournalEvent(entry["event"])
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash: its write stays in doubt
            self.entries.append(entry)
        self.handle: Any = None
        self.cut = bool(text) and not text.endswith("\n")

    def record(self, index: int, event: JournalEvent, write: Write, **details: Any) -> None:
        entry = {
            "write": index,
            "event": event.value,
            "time": _now_text(),
            "method": write.method,
            "path": write.path,
            **details,
        }
        self.entries.append(entry)
        if self.handle is None:
            # Opened at the first write's intent: a run refused before writing leaves no journal behind.
            self.handle = self.path.open("a", encoding="utf-8")
            if self.cut:
                self.handle.write("\n")  # end the cut line, or the next entry would be lost with it
        self.handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def last_events(self) -> dict[int, JournalEvent]:
        return {e["write"]: JournalEvent(e["event"]) for e in self.entries if isinstance(e.get("write"), int)}

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def _now_text() -> str:
    # Milliseconds: a quick rerun of the same plan must not get the same history id (and file) as the first run.
    return utc_text(dt.datetime.now(dt.UTC), "milliseconds")


@dataclass
class ApplyOutcome:
    """What an apply did, for the summary and for recovery history."""

    status: Status = Status.SUCCEEDED
    earlier: list[int] = field(default_factory=list)  # done by an earlier, interrupted run of the same plan
    written: list[int] = field(default_factory=list)
    confirmed: list[int] = field(default_factory=list)
    stale: list[tuple[str, str]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    overrides: tuple[str, ...] = ()
    started: str = ""
    finished: str = ""


def journal_path(git_dir: Path, plan: Plan) -> Path:
    return git_dir / "entra-gitops" / "journal" / f"{plan.checksum.removeprefix('sha256:')}.jsonl"


def touched_objects(plan: Plan, events: Mapping[int, JournalEvent]) -> set[tuple[str, str]]:
    """Objects an earlier run of this plan may have written: they are expected to have moved."""
    return {plan.writes[i].key for i in events if i < len(plan.writes)}


def stale_objects(plan: Plan, live: TenantState, touched: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """Objects whose live fingerprint moved since the plan; ones this plan already wrote are expected to."""
    stale: dict[tuple[str, str], None] = {}
    for write in plan.writes:
        if write.key in touched or write.step is Step.CREATE:
            continue
        if fingerprint(live.get(*write.key)) != write.fingerprint:
            stale[write.key] = None
    return list(stale)


def in_effect(write: Write, live: TenantState) -> bool:
    """Whether the tenant already shows what `write` does (a rerun after an answer was lost)."""
    now = live.get(*write.key)
    if write.step is Step.RESTORE:
        return now is not None and now.lifecycle is Lifecycle.ACTIVE
    if write.step is Step.SOFT_DELETE:
        return now is None or now.lifecycle is Lifecycle.SOFT_DELETED
    if write.step is Step.DELETE:
        return now is None
    if write.step in LINK_STEPS:
        present = fold_id(write.target or "") in link_ids(now, write.link or "")
        return now is not None and present == (write.step is Step.ADD_LINK)
    return False  # updates are resent (harmless); a re-created relationship has a new id to look for


def verify_plan(
    registry: Registry, plan: Plan, source: TenantState, live: TenantState, touched: set[tuple[str, str]]
) -> tuple[Plan, frozenset[int]]:
    """The plan as apply runs it: each step checked against its source, its request derived again, its name
    taken from the states rather than the file; and the writes an earlier run already put in effect.

    Raises PlanFileError, naming the steps, when any step is not one recovery to the source makes.
    """
    problems: list[str] = []
    writes: list[Write] = []
    settled: set[int] = set()
    for index, write in enumerate(plan.writes):
        was, now = source.get(*write.key), live.get(*write.key)
        label = f"step {index + 1} ({write.step.value} {write.type_name} {write.object_id})"
        if write.key in touched and in_effect(write, live):
            settled.add(index)
            writes.append(write)
            continue
        if write.step is Step.CREATE and now is not None and was is not None:
            # Graph derives some relationship ids from what they join (a grant's client and resource), so one
            # made again meanwhile has the backup's id: the same content is in effect, other content is news.
            if _relationship_content(registry, now) == _relationship_content(registry, was):
                settled.add(index)
                writes.append(write)
            else:
                problems.append(f"{label}: it exists again since the plan was made, with other values")
            continue
        try:
            check_step(
                registry, write, source, live, allow_delete=plan.options.allow_delete, touched=write.key in touched
            )
            derived = derive_request(registry, write, was, now)
        except StepError as err:
            problems.append(f"{label}: {err}")
            continue
        if derived != write.request:
            problems.append(f"{label}: the file's request {write.method} {write.path} is not what the step makes")
            continue
        rtype = registry.get(write.type_name)
        display = next((o.display(rtype.display) for o in (now, was) if o is not None), None) or write.display
        writes.append(replace(write, display=display, request=derived))
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise PlanFileError(
            f"the plan holds {len(problems)} step(s) that recovery to {plan.backup} would not make, so nothing was "
            f"written: {shown}",
            hint="never edit a plan file: make and review a new plan",
        )
    return replace(plan, writes=tuple(writes)), frozenset(settled)


class _Applier:
    """Runs one plan's writes in order against one client."""

    def __init__(self, client: GraphClient, registry: Registry, plan: Plan, write_rate: float) -> None:
        self.client = client
        self.registry = registry
        self.plan = plan
        self.interval = 1.0 / write_rate
        self.next_write = 0.0

    async def pace(self) -> None:
        # Graph allows 20 writes/s per app and tenant; pacing below it beats discovering it through 429s.
        delay = self.next_write - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        # Carry a late wake-up over (at most one interval), so timer overshoot does not lower the rate.
        self.next_write = max(self.next_write, time.monotonic() - self.interval) + self.interval

    def body(self, write: Write) -> Any:
        if write.step is Step.ADD_LINK and isinstance(write.body, dict):
            target = str(write.body["@odata.id"]).rsplit("/", 1)[-1]
            return {"@odata.id": f"{self.client.base_url}/directoryObjects/{target}"}
        return write.body

    def guard(self, write: Write) -> None:
        """The last line: nothing is ever purged from deleted items, whatever a step says."""
        if write.method == "DELETE" and "deleteditems" in write.path.lower():
            raise PlanFileError(f"refused {write.method} {write.path}: entra-gitops never purges deleted items")

    async def send(self, write: Write) -> int:
        self.guard(write)
        rtype = self.registry.get(write.type_name)
        await self.pace()
        response = await self.client.send(write.method, write.path, body=self.body(write), scope=rtype.throttle_scope)
        return response.status

    async def send_batch(self, writes: list[Write]) -> list[GraphResponse]:
        """Several independent writes in one $batch call; each still counts against the write pace."""
        for write in writes:
            self.guard(write)
            await self.pace()
        requests = [BatchRequest(str(n), w.method, w.path, self.body(w)) for n, w in enumerate(writes)]
        answers = await self.client.batch(requests)
        return [answers[str(n)] for n in range(len(writes))]

    async def applied(self, write: Write) -> bool:
        """Whether a write whose answer was lost (or refused as redundant) took effect anyway."""
        rtype = self.registry.get(write.type_name)
        scope = rtype.throttle_scope
        if write.step in (Step.UPDATE, Step.ACTION):
            return False  # resending is harmless: PATCH and these actions are idempotent
        if write.step in (Step.RESTORE, Step.SOFT_DELETE, Step.DELETE):
            # A restore's own path is an action; whether it worked shows at the object's item path.
            item = _live_path(write, rtype) if write.step is Step.RESTORE else write.path
            found = await self.client.send("GET", item, params={"$select": "id"}, scope=scope, accept=frozenset({404}))
            return (found.status == 200) == (write.step is Step.RESTORE)
        if write.step in LINK_STEPS:
            owner_prop = rtype.prop(write.link or "")
            if owner_prop is None or owner_prop.link is None:
                return False
            members = await self.client.list_all(
                graph_path(owner_prop.link.list_path, id=write.object_id), {"$select": "id"}
            )
            present = any(fold_id(str(m.get("id"))) == fold_id(write.target or "") for m in members)
            return present == (write.step is Step.ADD_LINK)
        if write.step is Step.CREATE and isinstance(write.body, dict):
            # Found by the properties Graph filters on (a grant's client and resource), so a re-creation never
            # duplicates one that exists already, whoever made it.
            terms = [f"{k} eq '{write.body[k]}'" for k in rtype.lookup_by if isinstance(write.body.get(k), str)]
            params = {"$filter": " and ".join(terms)} if terms else None
            existing = await self.client.list_all(write.path, params, scope=scope)
            keys = [k for k in write.body if k not in ("displayName",)]
            return any(all(_same_value(e.get(k), write.body[k]) for k in keys) for e in existing)
        return False


def _relationship_content(registry: Registry, obj: Any) -> dict[str, Any]:
    """What a re-created relationship must equal: everything but what the server sets."""
    rtype = registry.get(obj.type_name)
    return {k: v for k, v in thaw(obj.data).items() if k not in rtype.server_generated}


def _same_value(found: Any, wanted: Any) -> bool:
    """Graph's equality for a lookup: GUIDs without regard to case, empty the same as absent."""
    if isinstance(found, str) and isinstance(wanted, str):
        return fold_id(found) == fold_id(wanted)
    return found == wanted or (not found and not wanted)


def _live_path(write: Write, rtype: Any) -> str:
    """Where a restored object lives again (its item path)."""
    if rtype.singleton_path:
        return rtype.singleton_path
    return graph_path(rtype.item or "", id=write.object_id)


async def read_live_for(
    client: GraphClient, registry: Registry, plan: Plan, extra: frozenset[str] = frozenset()
) -> TenantState:
    """The live state a plan's checks need: its types, the types they reference, and `extra` (the guards')."""
    names = set(plan.types) | set(extra)
    for name in list(names):
        names |= registry.get(name).referenced_types
    return await live_state(client, registry, registry.select(sorted(names)))


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
) -> ApplyOutcome:
    """Execute a verified `plan` (see `verify_plan`): refuse when targets moved, write in order, verify."""
    outcome = ApplyOutcome(started=_now_text())
    events = journal.last_events()
    touched = touched_objects(plan, events)
    outcome.earlier = sorted(i for i, e in events.items() if e in FINISHED and i < len(plan.writes))
    outcome.stale = stale_objects(plan, live, touched)
    if outcome.stale and not skip_stale:
        listed = "; ".join(f"{t} {i}" for t, i in outcome.stale[:10]) + (" and more" if len(outcome.stale) > 10 else "")
        raise StalePlanError(
            f"{len(outcome.stale)} object(s) changed since the plan was made, so nothing was written: {listed}",
            hint="make and review a new plan, or apply the rest with --skip-stale",
        )
    plan, settled = verify_plan(registry, plan, source, live, touched)
    applier = _Applier(client, registry, plan, write_rate)
    failed_objects: set[tuple[str, str]] = set(outcome.stale)

    fresh: set[str] = set()  # objects this run restored or created: Graph may not find them for a few seconds

    def remember(write: Write) -> None:
        if write.step in (Step.RESTORE, Step.CREATE):
            fresh.add(fold_id(write.object_id))

    def fail(index: int, write: Write, err: GraphError) -> None:
        journal.record(index, JournalEvent.FAILED, write, status=err.status, code=err.code, error=str(err))
        outcome.failures.append(
            Failure(
                index, write.type_name, write.object_id, write.method, write.path, err.status, err.code, str(err),
                err.request_id,
            )
        )  # fmt: skip
        failed_objects.add(write.key)

    async def settle(index: int, write: Write, err: GraphError) -> None:
        """A write Graph refused or left unanswered: confirm it took effect, resend once, or record it."""
        if (err.status in IN_DOUBT or err.status in (400, 404)) and await applier.applied(write):
            journal.record(index, JournalEvent.CONFIRMED, write, status=err.status)
            outcome.confirmed.append(index)
            return
        if err.status in IN_DOUBT:
            try:
                status = await applier.send(write)
            except GraphError as again:
                err = again
            else:
                journal.record(index, JournalEvent.DONE, write, status=status, retried=True)
                outcome.written.append(index)
                return
        if err.status == 404 and {fold_id(write.object_id), fold_id(write.target or "")} & fresh:
            # Graph is eventually consistent: an object this run just restored or created may not be
            # found for a few seconds. Waiting and sending again is safe: the first attempt found nothing.
            for delay in lag_delays:
                await asyncio.sleep(delay)
                try:
                    status = await applier.send(write)
                except GraphError as again:
                    if again.status != 404:
                        err = again
                        break
                else:
                    journal.record(index, JournalEvent.DONE, write, status=status, retried=True)
                    outcome.written.append(index)
                    return
        fail(index, write, err)

    async def flush(chunk: list[int]) -> None:
        """Send a group of independent writes: one request alone, several through one $batch call."""
        for index in chunk:
            journal.record(index, JournalEvent.SENT, plan.writes[index])
        if len(chunk) == 1:
            index = chunk[0]
            try:
                status = await applier.send(plan.writes[index])
            except GraphError as err:
                await settle(index, plan.writes[index], err)
            else:
                journal.record(index, JournalEvent.DONE, plan.writes[index], status=status)
                outcome.written.append(index)
                remember(plan.writes[index])
            return
        answers = await applier.send_batch([plan.writes[i] for i in chunk])
        for index, answer in zip(chunk, answers, strict=True):
            write = plan.writes[index]
            if answer.status < 400:
                journal.record(index, JournalEvent.DONE, write, status=answer.status, batched=True)
                outcome.written.append(index)
                remember(write)
            else:
                await settle(index, write, batch_error(answer, f"{write.method} {write.path}"))

    chunk: list[int] = []
    for index, write in enumerate(plan.writes):
        if events.get(index) in FINISHED:
            continue
        if index in settled:
            journal.record(index, JournalEvent.CONFIRMED, write, note="it is in effect already: not sent again")
            outcome.confirmed.append(index)
            continue
        if chunk and (
            plan.writes[chunk[0]].step is not write.step
            or len(chunk) == MAX_BATCH
            or any(plan.writes[i].key == write.key for i in chunk)
        ):
            await flush(chunk)
            chunk = []
        if write.key in failed_objects:
            continue
        if events.get(index) is JournalEvent.SENT and await applier.applied(write):
            journal.record(index, JournalEvent.CONFIRMED, write, note="the earlier attempt took effect")
            outcome.confirmed.append(index)
            continue
        if write.step is Step.CREATE and events.get(index) is None and await applier.applied(write):
            journal.record(index, JournalEvent.CONFIRMED, write, note="it exists already: not created twice")
            outcome.confirmed.append(index)
            continue
        if registry.get(write.type_name).throttle_scope is not ThrottleScope.IDENTITY:
            # Conditional Access allows one request a second, batched or not: these go one by one.
            if chunk:
                await flush(chunk)
                chunk = []
            await flush([index])
            continue
        chunk.append(index)
    if chunk:
        await flush(chunk)
    types = registry.select(list(plan.types))
    outcome.warnings.extend(
        await _verify(client, registry, plan, source, types, failed_objects, verify_attempts, verify_delay)
    )
    outcome.finished = _now_text()
    succeeded = len(outcome.earlier) + len(outcome.written) + len(outcome.confirmed)
    if outcome.failures:
        outcome.status = Status.PARTIALLY_APPLIED if succeeded else Status.FAILED
    elif outcome.warnings or outcome.stale:
        outcome.status = Status.SUCCEEDED_WITH_WARNINGS
    return outcome


async def _verify(
    client: GraphClient,
    registry: Registry,
    plan: Plan,
    source: TenantState,
    types: tuple[Any, ...],
    skip: set[tuple[str, str]],
    attempts: int,
    delay: float,
) -> list[str]:
    """Poll until every written object matches the source (Graph is eventually consistent)."""
    targets = {w.key for w in plan.writes if w.step is not Step.CREATE} - skip
    if not targets:
        return []
    remaining = targets
    for attempt in range(attempts):
        live = await live_state(client, registry, types)
        wanted = TenantState.of([o for o in source if o.key in targets], source.types)
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


def history_record(plan: Plan, outcome: ApplyOutcome) -> dict[str, Any]:
    """What recovery history keeps of one apply (no request bodies: they are in the plan)."""
    applied = outcome.earlier + outcome.written + outcome.confirmed
    objects = sorted({f"{plan.writes[i].type_name}/{plan.writes[i].object_id}" for i in applied})
    links = sum(1 for i in applied if plan.writes[i].step in LINK_STEPS)
    deleted = sorted(
        {f"{plan.writes[i].type_name}/{plan.writes[i].object_id}" for i in applied if plan.writes[i].irreversible}
    )
    return {
        "id": f"{outcome.started.translate(str.maketrans('', '', '-:.'))}-{plan.checksum.removeprefix('sha256:')[:12]}",
        "status": outcome.status.value,
        "backup": plan.backup,
        "backupCommit": plan.backup_commit,
        "source": plan.kind.value,
        "tenant": plan.tenant,
        "planChecksum": plan.checksum,
        "started": outcome.started,
        "finished": outcome.finished,
        "writes": len(plan.writes),
        "written": len(applied),
        "objectsModified": objects,
        "linksModified": links,
        "permanentlyDeleted": deleted,
        "overrides": list(outcome.overrides),
        "skippedStale": [f"{t}/{i}" for t, i in outcome.stale],
        "failures": [f.record() for f in outcome.failures],
        "warnings": outcome.warnings,
    }


def pending_from_journal(plan: Plan, journal: Journal) -> Mapping[str, int]:
    """How many writes the journal has as done, failed, in doubt, for a rerun's message."""
    events = journal.last_events()
    counts = {"done": 0, "failed": 0, "inDoubt": 0, "notStarted": 0}
    names = {JournalEvent.DONE: "done", JournalEvent.CONFIRMED: "done", JournalEvent.FAILED: "failed"}
    for index in range(len(plan.writes)):
        event = events.get(index)
        counts[names.get(event, "inDoubt") if event else "notStarted"] += 1
    return counts
