"""Apply: execute a reviewed plan file against the live tenant, journalled, stale-checked and verified."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from entra_gitops.diff import ChangeKind, ObjectChange, difference_report
from entra_gitops.errors import EntraGitopsError, ExitCode, GraphError
from entra_gitops.graph.client import MAX_BATCH, BatchRequest, GraphClient, GraphResponse
from entra_gitops.graph.reader import batch_error
from entra_gitops.plan import (
    PLAN_FORMAT,
    Plan,
    Step,
    Write,
    compute_checksum,
    fingerprint,
    holds_redaction,
    plan_from_document,
)
from entra_gitops.registry import Registry, ThrottleScope
from entra_gitops.sources import live_state
from entra_gitops.state import Lifecycle, TenantState

WRITES_PER_SECOND = 20.0
IN_DOUBT = frozenset({None, 500, 502, 503, 504})


class PlanFileError(EntraGitopsError):
    """A plan file that cannot be trusted: unreadable, another format, or changed after it was made."""


class StalePlanError(EntraGitopsError):
    """Objects moved since the plan was made; applying would overwrite newer changes."""

    exit_code = ExitCode.STALE


class UnsafePlanError(EntraGitopsError):
    """A plan that crosses a safety threshold or touches a protected object."""

    exit_code = ExitCode.UNSAFE


class Status(enum.Enum):
    """How an apply ended, as recovery history records it."""

    SUCCEEDED = "succeeded"
    SUCCEEDED_WITH_WARNINGS = "succeededWithWarnings"
    PARTIALLY_APPLIED = "partiallyApplied"
    FAILED = "failed"


def read_plan_file(path: Path) -> tuple[Plan, dict[str, Any]]:
    """The plan in `path`, refused unless it is ours, whole, and unchanged since it was made."""
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
                self.entries.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a crash: its write stays in doubt
        self.handle = path.open("a", encoding="utf-8")
        if text and not text.endswith("\n"):
            self.handle.write("\n")  # end the cut line, or the next entry would be lost with it

    def record(self, index: int, event: str, write: Write, **details: Any) -> None:
        entry = {
            "write": index,
            "event": event,
            "time": _now_text(),
            "method": write.method,
            "path": write.path,
            **details,
        }
        self.entries.append(entry)
        self.handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def last_events(self) -> dict[int, str]:
        return {e["write"]: e["event"] for e in self.entries}

    def close(self) -> None:
        self.handle.close()


def _now_text() -> str:
    # Milliseconds: a quick rerun of the same plan must not get the same history id (and file) as the first run.
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class ApplyOutcome:
    """What an apply did, for the summary and for recovery history."""

    status: Status = Status.SUCCEEDED
    earlier: list[int] = field(default_factory=list)  # done by an earlier, interrupted run of the same plan
    written: list[int] = field(default_factory=list)
    confirmed: list[int] = field(default_factory=list)
    stale: list[tuple[str, str]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    started: str = ""
    finished: str = ""


def journal_path(git_dir: Path, plan: Plan) -> Path:
    return git_dir / "entra-gitops" / "journal" / f"{plan.checksum.removeprefix('sha256:')}.jsonl"


def stale_objects(plan: Plan, live: TenantState, touched: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """Objects whose live fingerprint moved since the plan; ones this plan already wrote are expected to."""
    stale: dict[tuple[str, str], None] = {}
    for write in plan.writes:
        key = (write.type_name, write.object_id)
        if key in touched or write.step is Step.CREATE:
            continue
        if fingerprint(live.get(*key)) != write.fingerprint:
            stale[key] = None
    return list(stale)


class _Applier:
    """Runs one plan's writes in order against one client."""

    def __init__(
        self, client: GraphClient, registry: Registry, plan: Plan, journal: Journal, write_rate: float
    ) -> None:
        self.client = client
        self.registry = registry
        self.plan = plan
        self.journal = journal
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

    async def send(self, write: Write) -> int:
        rtype = self.registry.get(write.type_name)
        await self.pace()
        response = await self.client.send(write.method, write.path, body=self.body(write), scope=rtype.throttle_scope)
        return response.status

    async def send_batch(self, writes: list[Write]) -> list[GraphResponse]:
        """Several independent writes in one $batch call; each still counts against the write pace."""
        for _ in writes:
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
            item = rtype.singleton_path or (rtype.item or "").format(id=write.object_id, **_parent_of(write, rtype))
            found = await self.client.send("GET", item, params={"$select": "id"}, scope=scope, accept=frozenset({404}))
            return (found.status == 200) == (write.step is Step.RESTORE)
        if write.step in (Step.ADD_LINK, Step.REMOVE_LINK):
            owner_prop = rtype.prop(write.changes[0][0]) if write.changes else None
            if owner_prop is None or owner_prop.link is None:
                return False
            target = write.changes[0][2] or write.changes[0][1]
            members = await self.client.list_all(
                owner_prop.link.list_path.format(id=write.object_id), {"$select": "id"}
            )
            present = any(m.get("id") == target for m in members)
            return present == (write.step is Step.ADD_LINK)
        if write.step is Step.CREATE and isinstance(write.body, dict):
            existing = await self.client.list_all(write.path)
            keys = [k for k in write.body if k not in ("displayName",)]
            return any(all(e.get(k) == write.body[k] for k in keys) for e in existing)
        return False


def _parent_of(write: Write, rtype: Any) -> dict[str, str]:
    if rtype.parent is None:
        return {}
    # Child paths carry the parent id right after the parent collection: servicePrincipals/{id}/...
    parts = write.path.split("/")
    return {rtype.parent.param: parts[1] if len(parts) > 1 else ""}


async def apply_plan(
    client: GraphClient,
    registry: Registry,
    plan: Plan,
    journal: Journal,
    backup: TenantState,
    *,
    skip_stale: bool = False,
    write_rate: float = WRITES_PER_SECOND,
    verify_attempts: int = 5,
    verify_delay: float = 1.0,
) -> ApplyOutcome:
    """Execute `plan`: refuse when targets moved (unless skipping them), write in order, verify."""
    outcome = ApplyOutcome(started=_now_text())
    types = tuple(registry.get(t) for t in sorted({w.type_name for w in plan.writes}))
    events = journal.last_events()
    touched = {(plan.writes[i].type_name, plan.writes[i].object_id) for i in events if i < len(plan.writes)}
    outcome.earlier = sorted(i for i, e in events.items() if e in ("done", "confirmed") and i < len(plan.writes))
    live = await live_state(client, registry, types)
    outcome.stale = stale_objects(plan, live, touched)
    if outcome.stale and not skip_stale:
        listed = "; ".join(f"{t} {i}" for t, i in outcome.stale[:10]) + (" and more" if len(outcome.stale) > 10 else "")
        raise StalePlanError(
            f"{len(outcome.stale)} object(s) changed since the plan was made, so nothing was written: {listed}",
            hint="make and review a new plan, or apply the rest with --skip-stale",
        )
    applier = _Applier(client, registry, plan, journal, write_rate)
    failed_objects: set[tuple[str, str]] = set(outcome.stale)

    async def settle(index: int, write: Write, err: GraphError) -> None:
        """A write Graph refused or left unanswered: confirm it took effect, resend once, or record it."""
        if (err.status in IN_DOUBT or err.status in (400, 404)) and await applier.applied(write):
            journal.record(index, "confirmed", write, status=err.status)
            outcome.confirmed.append(index)
            return
        if err.status in IN_DOUBT:
            try:
                status = await applier.send(write)
            except GraphError as again:
                err = again
            else:
                journal.record(index, "done", write, status=status, retried=True)
                outcome.written.append(index)
                return
        journal.record(index, "failed", write, status=err.status, code=err.code, error=str(err))
        outcome.failures.append(
            {
                "write": index,
                "type": write.type_name,
                "id": write.object_id,
                "method": write.method,
                "path": write.path,
                "status": err.status,
                "code": err.code,
                "message": str(err),
                "requestId": err.request_id,
            }
        )
        failed_objects.add((write.type_name, write.object_id))

    async def flush(chunk: list[int]) -> None:
        """Send a group of independent writes: one request alone, several through one $batch call."""
        for index in chunk:
            journal.record(index, "sent", plan.writes[index])
        if len(chunk) == 1:
            index = chunk[0]
            try:
                status = await applier.send(plan.writes[index])
            except GraphError as err:
                await settle(index, plan.writes[index], err)
            else:
                journal.record(index, "done", plan.writes[index], status=status)
                outcome.written.append(index)
            return
        answers = await applier.send_batch([plan.writes[i] for i in chunk])
        for index, answer in zip(chunk, answers, strict=True):
            write = plan.writes[index]
            if answer.status < 400:
                journal.record(index, "done", write, status=answer.status, batched=True)
                outcome.written.append(index)
            else:
                await settle(index, write, batch_error(answer, f"{write.method} {write.path}"))

    chunk: list[int] = []
    for index, write in enumerate(plan.writes):
        key = (write.type_name, write.object_id)
        if events.get(index) in ("done", "confirmed"):
            continue
        if chunk and (
            plan.writes[chunk[0]].step is not write.step
            or len(chunk) == MAX_BATCH
            or any((plan.writes[i].type_name, plan.writes[i].object_id) == key for i in chunk)
        ):
            await flush(chunk)
            chunk = []
        if key in failed_objects:
            continue
        if events.get(index) == "sent" and await applier.applied(write):
            journal.record(index, "confirmed", write, note="the earlier attempt took effect")
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
    outcome.warnings.extend(
        await _verify(client, registry, plan, backup, types, failed_objects, verify_attempts, verify_delay)
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
    backup: TenantState,
    types: tuple[Any, ...],
    skip: set[tuple[str, str]],
    attempts: int,
    delay: float,
) -> list[str]:
    """Poll until every written object matches the backup (Graph is eventually consistent)."""
    targets = {(w.type_name, w.object_id) for w in plan.writes if w.step is not Step.CREATE} - skip
    if not targets:
        return []
    remaining = targets
    for attempt in range(attempts):
        live = await live_state(client, registry, types)
        wanted = TenantState.of([o for o in backup if o.key in targets], backup.types)
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
        f"{t} {i} does not match the backup yet after the writes (Graph may still be catching up)"
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
    links = sum(1 for i in applied if plan.writes[i].step in (Step.ADD_LINK, Step.REMOVE_LINK))
    return {
        "id": f"{outcome.started.translate(str.maketrans('', '', '-:.'))}-{plan.checksum.removeprefix('sha256:')[:12]}",
        "status": outcome.status.value,
        "backup": plan.backup,
        "backupCommit": plan.backup_commit,
        "tenant": plan.tenant,
        "planChecksum": plan.checksum,
        "started": outcome.started,
        "finished": outcome.finished,
        "writes": len(plan.writes),
        "written": len(applied),
        "objectsModified": objects,
        "linksModified": links,
        "skippedStale": [f"{t}/{i}" for t, i in outcome.stale],
        "failures": outcome.failures,
        "warnings": outcome.warnings,
    }


def pending_from_journal(plan: Plan, journal: Journal) -> Mapping[str, int]:
    """How many writes the journal has as done, failed, in doubt, for a rerun's message."""
    events = journal.last_events()
    counts = {"done": 0, "failed": 0, "inDoubt": 0, "notStarted": 0}
    for index in range(len(plan.writes)):
        event = events.get(index)
        key = {"done": "done", "confirmed": "done", "failed": "failed", "sent": "inDoubt"}.get(
            event or "", "notStarted"
        )
        counts[key] += 1
    return counts
