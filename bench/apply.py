"""Apply benchmark: about 2,000 recovery writes of mixed kinds against the throttled emulator, journalled.

Run from a checkout with the package installed:  python bench/apply.py  (about a minute)
Faster or slower limits:                         python bench/apply.py --scale 4   (80 writes/s enforced)
The emulator's own 150 s write window:           python bench/apply.py --window 150
Graph-like answer times:                         python bench/apply.py --scale 1 --latency-ms 60

A small recovery at two sizes, as commands:      python bench/recovery.py

It prints counts, times and ratios; it asserts nothing. Everything runs in this one process: the
emulator serves real HTTP on loopback from a thread with its throttling on, every limit multiplied
by --scale, so its write limit is 20 x scale writes/s. A snapshot of users and groups goes into a
temporary state repository; then the emulated tenant drifts (properties changed, users
soft-deleted, members added and removed, users and groups created), and the plan that undoes the
drift is applied with the write pace set to the enforced limit. Duplicates and lost writes are
counted three ways: in the journal, in the writes the emulator committed, and in the live tenant
read back through Graph.

Graph's write limit is 3,000 writes in any 150 s, so a run shorter than that never fills the window
and the limit could not answer 429 even to a client that ignored it. By default the emulator's write
window is therefore shortened to --window 10 s at the same rate (400 writes per 10 s at --scale 2):
after the first 10 s every write meets a full window, and pacing at the limit is really tested.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from entra_gitops.emulator import create_emulator
from entra_gitops.emulator.app import WRITE_METHODS
from entra_gitops.emulator.limits import WRITE_WINDOW_SECONDS, WRITES_PER_WINDOW
from entra_gitops.emulator.server import serve_in_background
from entra_gitops.graph.client import connect
from entra_gitops.model.registry import default_registry
from entra_gitops.model.settings import Config
from entra_gitops.recovery.apply import apply_plan
from entra_gitops.recovery.journal import Journal, JournalEvent
from entra_gitops.recovery.outcome import ApplyOutcome
from entra_gitops.recovery.plan import Plan, Step, Write, build_plan
from entra_gitops.recovery.recheck import read_live_for
from entra_gitops.report.diff import difference_report
from entra_gitops.state.gitstore import StateRepo
from entra_gitops.state.snapshot import take_snapshot
from entra_gitops.state.sources import backup_state, live_state

REGISTRY = default_registry()
USER = REGISTRY.get("user")
GROUP = REGISTRY.get("group")
TYPES = (GROUP, USER)
MEMBERS = ("group", "members")

# Shares of the writes by kind (Conditional Access is left out: its 1 request/s would set the pace).
MIX = {
    "users changed (PATCH)": 0.30,
    "groups changed (PATCH)": 0.15,
    "users soft-deleted (POST restore)": 0.15,
    "members removed (POST $ref)": 0.15,
    "members added (DELETE $ref)": 0.15,
    "users and groups created (DELETE)": 0.10,
}


def record_writes(app: Any) -> list[tuple[float, str, str, str | None, int]]:
    """Log every write the emulator answers, $batch envelopes aside: (time, method, path, link target, status)."""
    log: list[tuple[float, str, str, str | None, int]] = []
    handle = app.handle

    def logged(request: Any, request_id: str | None = None) -> Any:
        reply = handle(request, request_id)
        if request.method in WRITE_METHODS and request.path != "$batch":
            body = request.body if isinstance(request.body, dict) else {}
            reference = body.get("@odata.id")
            target = str(reference).rsplit("/", 1)[-1] if reference else None
            log.append((time.perf_counter(), request.method, request.path, target, reply.status))
        return reply

    app.handle = logged  # the ASGI entry calls self.handle, so the instance attribute wins
    return log


class TimedJournal(Journal):
    """The product's journal, also noting a precise clock per event (its own times have 1 s resolution)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.clock: list[tuple[float, int, str]] = []
        self.seconds = 0.0

    def record(self, index: int, event: JournalEvent, write: Write, **details: Any) -> None:
        started = time.perf_counter()
        super().record(index, event, write, **details)
        now = time.perf_counter()
        self.seconds += now - started
        self.clock.append((now, index, event.value))


def time_writes(client: Any) -> list[float]:
    """Seconds each write request takes in the client, from the call to the parsed answer."""
    spent: list[float] = []
    send = client.send

    async def timed(method: str, path: str, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await send(method, path, **kwargs)
        finally:
            if method != "GET" and path != "$batch":
                spent.append(time.perf_counter() - started)

    client.send = timed  # the applier calls client.send, so the instance attribute wins
    return spent


def write_key(method: str, path: str, target: str | None) -> tuple[str, str, str | None]:
    return (method, path.strip("/"), target)


def plan_key(write: Write) -> tuple[str, str, str | None]:
    target = None
    if write.step is Step.ADD_LINK and isinstance(write.body, dict):
        target = str(write.body["@odata.id"]).rsplit("/", 1)[-1]
    return write_key(write.method, write.path, target)


def drift(app: Any, writes: int, rng: random.Random) -> dict[str, int]:
    """Change the emulated tenant through its own methods (so its change log stays right)."""
    tenant = app.tenant
    want = {kind: round(writes * share) for kind, share in MIX.items()}
    kinds = list(want)
    want[kinds[0]] += writes - sum(want.values())
    users = [
        u
        for u in tenant.objects(USER).values()
        if not u.get("onPremisesSyncEnabled") and not str(u.get("userPrincipalName", "")).startswith("breakglass")
    ]
    groups = [
        g
        for g in tenant.objects(GROUP).values()
        if not g.get("onPremisesSyncEnabled") and not g.get("membershipRule") and not g.get("isAssignableToRole")
    ]
    rng.shuffle(users)
    rng.shuffle(groups)
    n_user_patch, n_group_patch, n_restore, n_add, n_remove, n_create = (want[k] for k in kinds)
    if n_user_patch + n_restore > len(users) // 2:
        raise SystemExit(f"{len(users)} cloud users are too few for {writes} writes: raise --users")

    patched, deleted, others = (
        users[:n_user_patch],
        users[n_user_patch : n_user_patch + n_restore],
        users[n_user_patch + n_restore :],
    )
    gone = {u["id"] for u in deleted}
    for n, user in enumerate(patched):
        prop = ("jobTitle", "department", "officeLocation")[n % 3]
        tenant.update(USER, user, {prop: f"drifted {n}"})
    patched_groups = groups[:n_group_patch]
    for n, group in enumerate(patched_groups):
        tenant.update(GROUP, group, {"description": f"drifted {n}"})
    for user in deleted:
        tenant.delete(USER, user["id"])

    # Members: groups other than the patched ones; removed members are users, never ones soft-deleted.
    link_groups = groups[n_group_patch:] or groups
    removed = added = 0
    for group in link_groups:
        if removed >= n_add:
            break
        members = tenant.members(MEMBERS, group["id"])
        for member in [m for m in members if tenant.directory.get(m) == "user" and m not in gone][:2]:
            if removed < n_add:
                tenant.remove_link(MEMBERS, group["id"], member)
                removed += 1
    candidates = [u["id"] for u in others]
    for group in link_groups:
        if added >= n_remove:
            break
        members = tenant.members(MEMBERS, group["id"])
        for member in rng.sample(candidates, 3):
            if added < n_remove and member not in members:
                tenant.add_link(MEMBERS, group["id"], member)
                added += 1

    created = 0
    for n in range(n_create):
        if n % 4:
            nick = f"bench.drift{n:05d}"
            tenant.create(
                USER,
                {
                    "displayName": f"Drift User {n:05d}",
                    "userPrincipalName": f"{nick}@contoso.com",
                    "mailNickname": nick,
                    "accountEnabled": True,
                    "userType": "Member",
                },
            )
        else:
            tenant.create(
                GROUP,
                {
                    "displayName": f"Drift Group {n:05d}",
                    "mailNickname": f"drift-group-{n:05d}",
                    "securityEnabled": True,
                    "mailEnabled": False,
                    "groupTypes": [],
                },
            )
        created += 1
    done = [n_user_patch, n_group_patch, len(deleted), removed, added, created]
    return dict(zip(kinds, done, strict=True))


async def make_plan(url: str, store: StateRepo, backup: Any) -> tuple[Plan, Any, float]:
    started = time.perf_counter()
    before = backup_state(store, REGISTRY, backup)
    async with connect(url) as client:
        live = await live_state(client, REGISTRY, TYPES)
    report = difference_report(REGISTRY, before, live, backup_name=backup.name, against_name="live")
    plan = build_plan(
        REGISTRY,
        report,
        before,
        live,
        tool="entra-gitops bench",
        tenant=None,
        backup_commit=backup.commit,
        created=dt.datetime.now(dt.UTC).isoformat(),
    )
    return plan, before, time.perf_counter() - started


async def run_apply(
    url: str, plan: Plan, journal: TimedJournal, before: Any, rate: float
) -> tuple[ApplyOutcome, Any, list[float], float, float]:
    async with connect(url) as client:
        requests = time_writes(client)
        started = time.perf_counter()
        live = await read_live_for(client, REGISTRY, plan)
        outcome = await apply_plan(client, REGISTRY, plan, journal, before, live, write_rate=rate)
        finished = time.perf_counter()
        return outcome, client.stats, requests, started, finished


async def read_back(url: str, plan: Plan) -> dict[str, Any]:
    """What the live tenant says afterwards, read through Graph the way any client would."""
    async with connect(url) as client:
        users = await client.list_all("users", {"$select": "id", "$top": 999})
        groups = await client.list_all("groups", {"$select": "id", "$top": 999})
        gone = await client.list_all("directory/deletedItems/microsoft.graph.user", {"$select": "id", "$top": 999})
        gone += await client.list_all("directory/deletedItems/microsoft.graph.group", {"$select": "id", "$top": 999})
        linked = sorted({w.object_id for w in plan.writes if w.step in (Step.ADD_LINK, Step.REMOVE_LINK)})
        members = {}
        for group_id in linked:
            members[group_id] = [
                m["id"] for m in await client.list_all(f"groups/{group_id}/members", {"$select": "id"})
            ]
        live = await live_state(client, REGISTRY, TYPES)
    return {
        "live_ids": [o["id"] for o in users + groups],
        "deleted_ids": [o["id"] for o in gone],
        "members": members,
        "state": live,
    }


def row(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<52} {value:>12}  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=2_000, help="recovery writes to plan and apply")
    parser.add_argument("--scale", type=float, default=2.0, help="multiplies every emulator limit (2 = 40 writes/s)")
    parser.add_argument(
        "--window", type=float, default=10.0, help="seconds of the emulator's write window (Graph: 150)"
    )
    parser.add_argument("--latency-ms", type=int, default=0, help="added to every emulator answer")
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--groups", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=7, help="which objects drift")
    args = parser.parse_args()

    spec = f"synthetic:users={args.users},groups={args.groups}"
    limit = WRITES_PER_WINDOW * args.scale / WRITE_WINDOW_SECONDS
    latency = f", +{args.latency_ms} ms per answer" if args.latency_ms else ""
    print(
        f"entra-gitops apply benchmark: {spec}, {args.writes:,} writes, "
        f"emulator --throttle x{args.scale:g}{latency}, one process"
    )
    started = time.perf_counter()
    app = create_emulator(spec, throttle=True, throttle_scale=args.scale, latency_ms=args.latency_ms)
    url = serve_in_background(app)
    window = app.throttle.writes
    if args.window != WRITE_WINDOW_SECONDS:
        # Same rate, shorter memory: a bench-only change to the emulator's Throttle.
        window.seconds, window.limit = args.window, limit * args.window
    print(f"  emulator seeded and listening in {time.perf_counter() - started:.1f} s at {url}")
    print(f"  enforced write limit: {window.limit:,.0f} writes per {window.seconds:g} s = {limit:g} writes/s")
    log = record_writes(app)

    work = Path(tempfile.mkdtemp(prefix="entra-gitops-bench-"))
    try:
        store = StateRepo.open(work / "state", create=True)
        moment = dt.datetime(2026, 11, 21, 23, 0, tzinfo=dt.UTC)

        async def snapshot() -> Any:
            async with connect(url) as client:
                return await take_snapshot(client, store, REGISTRY, TYPES, Config(), moment)

        started = time.perf_counter()
        first = asyncio.run(snapshot())
        snapshot_seconds = time.perf_counter() - started
        drifted = drift(app, args.writes, random.Random(args.seed))
        plan, before, plan_seconds = asyncio.run(make_plan(url, store, first.backup))

        journal = TimedJournal(work / "journal.jsonl")
        log_start = len(log)
        peak = [0]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(0.05):
                peak[0] = max(peak[0], window.used)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            outcome, stats, requests, apply_start, apply_end = asyncio.run(run_apply(url, plan, journal, before, limit))
        finally:
            sampling.set()
            sampler.join()
            journal.close()
        served = log[log_start:]
        after = asyncio.run(read_back(url, plan))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # -- the journal ------------------------------------------------------------------------------
    per_write: dict[int, list[str]] = collections.defaultdict(list)
    for entry in journal.entries:
        per_write[entry["write"]].append(entry["event"])
    finished_events = {i: sum(e in ("done", "confirmed") for e in events) for i, events in per_write.items()}
    journal_duplicates = sum(1 for n in finished_events.values() if n > 1)
    lost = [i for i in range(len(plan.writes)) if finished_events.get(i, 0) == 0]
    sent_times = [t for t, _, e in journal.clock if e == "sent"]
    done_times = [t for t, _, e in journal.clock if e in ("done", "confirmed")]
    first_sent, last_done = (
        (min(sent_times), max(done_times)) if sent_times and done_times else (apply_start, apply_start)
    )
    finished = len(outcome.written) + len(outcome.confirmed)
    span = max(last_done - first_sent, 1e-9)
    sustained = finished / span

    # -- what the emulator committed --------------------------------------------------------------
    committed = collections.Counter(write_key(m, p, t) for _, m, p, t, s in served if s < 400)
    throttled_writes = sum(1 for *_, s in served if s == 429)
    other_errors = collections.Counter(s for *_, s in served if s >= 400 and s != 429)
    planned_keys = collections.Counter(plan_key(w) for w in plan.writes)
    server_duplicates = sum(1 for k, n in planned_keys.items() if committed[k] > n)
    server_lost = sum(1 for k, n in planned_keys.items() if committed[k] < n)
    unplanned = sum(n for k, n in committed.items() if k not in planned_keys)
    commit_times = [t for t, *_, s in served if s < 400]
    server_rate = (len(commit_times) - 1) / (commit_times[-1] - commit_times[0]) if len(commit_times) > 1 else 0.0

    # -- the live tenant ---------------------------------------------------------------------------
    live_ids = collections.Counter(after["live_ids"])
    deleted_ids = collections.Counter(after["deleted_ids"])
    twice_members = sum(len(m) - len(set(m)) for m in after["members"].values())
    restored = [w.object_id for w in plan.writes if w.step is Step.RESTORE]
    restored_wrong = sum(1 for i in restored if live_ids[i] != 1 or deleted_ids[i] != 0)
    removed = [w.object_id for w in plan.writes if w.step is Step.SOFT_DELETE]
    removed_wrong = sum(1 for i in removed if live_ids[i] != 0 or deleted_ids[i] != 1)
    listed_twice = sum(1 for n in live_ids.values() if n > 1) + sum(1 for n in deleted_ids.values() if n > 1)
    left = difference_report(REGISTRY, before, after["state"], backup_name=first.backup.name, against_name="live")

    kinds = collections.Counter(w.step for w in plan.writes)
    print("\nSetup")
    row("snapshot of users and groups", f"{snapshot_seconds:.1f} s", f"{sum(first.backup.counts.values()):,} objects")
    for kind, count in drifted.items():
        row(f"drift: {kind}", f"{count:,}")
    row("plan (backup, live read, report, plan)", f"{plan_seconds:.1f} s")
    print("\nPlan")
    row("writes planned", f"{len(plan.writes):,}", ", ".join(f"{s.value} {n:,}" for s, n in kinds.items()))
    reasons = collections.Counter(s.reason for s in plan.skipped)
    row(
        "differences not written (skipped)", f"{len(plan.skipped):,}", "; ".join(f"{n} {r}" for r, n in reasons.items())
    )
    print("\nApply")
    row("status", outcome.status.value, f"{len(outcome.failures)} failed, {len(outcome.warnings)} warnings")
    row(
        "writes done (journal: done or confirmed)",
        f"{finished:,}",
        f"{len(outcome.confirmed)} confirmed after an error",
    )
    row("re-read before writing", f"{first_sent - apply_start:.1f} s")
    row("write phase (first sent to last done)", f"{span:.1f} s")
    row("verify after writing", f"{apply_end - last_done:.1f} s")
    row("whole apply", f"{apply_end - apply_start:.1f} s")
    row("enforced write limit", f"{limit:g}/s", f"write_rate passed to apply_plan: {limit:g}/s")
    row("sustained writes/s (journal)", f"{sustained:.1f}/s", f"emulator side: {server_rate:.1f}/s committed")
    row("ratio to the limit, target >= 90%", f"{sustained / limit:.1%}")
    gap = span / max(finished, 1)
    in_request = sum(requests) / max(len(requests), 1)
    in_journal = journal.seconds / max(len(journal.entries), 1) * 2
    row(
        "per write: time between writes",
        f"{gap * 1000:.1f} ms",
        f"pace interval {1000 / limit:.1f} ms; request {in_request * 1000:.1f} ms, "
        f"journal (2 records, fsync each) {in_journal * 1000:.1f} ms",
    )
    row(
        "ceiling of one request at a time (request + journal)",
        f"{1 / max(in_request + in_journal, 1e-9):.0f}/s",
        "independent writes of one step share a $batch call, up to 20 per request",
    )
    row(
        "peak writes in the emulator's window",
        f"{peak[0]:,}",
        f"of {window.limit:,.0f} per {window.seconds:g} s ({peak[0] / window.limit:.0%})",
    )
    row("429s seen by the client (reads and writes)", f"{stats.throttled:,}", f"{stats.requests:,} requests")
    row("429s answered to writes", f"{throttled_writes:,}")
    row(
        "other write errors",
        f"{sum(other_errors.values()):,}",
        ", ".join(f"{s}: {n}" for s, n in sorted(other_errors.items())),
    )
    print("\nDuplicates, target 0")
    row("writes done more than once (journal)", f"{journal_duplicates:,}")
    row("planned writes committed more than once (emulator)", f"{server_duplicates:,}")
    row("writes committed that no plan step asked for", f"{unplanned:,}")
    row("group members listed twice", f"{twice_members:,}", f"in {len(after['members']):,} groups read back")
    row("objects listed twice (live or deleted)", f"{listed_twice:,}")
    row("restored users not active exactly once", f"{restored_wrong:,}", f"of {len(restored):,}")
    row("created objects not soft-deleted exactly once", f"{removed_wrong:,}", f"of {len(removed):,}")
    print("\nLost writes, target 0")
    row("planned writes without done or confirmed (journal)", f"{len(lost):,}")
    row("planned writes the emulator never committed", f"{server_lost:,}")
    row("differences left, backup against live, target 0", f"{len(left.changes):,}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
