"""Apply benchmark: about 2,000 recovery writes of mixed kinds, applied by `entra-gitops apply` against the throttled
emulator in a process of its own.

Run from a checkout with the package installed:  python bench/apply.py  (one to two minutes)
Faster or slower limits:                         python bench/apply.py --scale 4   (80 writes/s enforced)
The emulator's own 150 s write window:           python bench/apply.py --window 150
Graph-like answer times:                         python bench/apply.py --scale 1 --latency-ms 60

A small recovery at two sizes, as commands:      python bench/recovery.py

It prints counts, times and ratios; it asserts nothing. The emulator serves real HTTP on loopback from a process
of its own (bench/emulated.py) with its throttling on, every limit multiplied by --scale, so its write limit is
20 x scale writes/s. Each step is the command a user runs, in a process of its own: `snapshot --type user --type
group` into a temporary state repository; then the emulated tenant drifts (properties changed, users
soft-deleted, members added and removed, users and groups created); `plan --type user --type group` saves the
plan that undoes the drift (the backup named, as a --type snapshot is incomplete and not `latest`); `apply
--auto-approve --write-rate LIMIT --format json` applies it paced at the enforced limit, with --force when the
plan crossed the safety thresholds (many writes in a small tenant do: the bench says so); and `diff` against live
afterwards finds nothing left when the recovery is whole. Duplicates and lost writes are counted three ways: in
the journal the apply command wrote (.git/entra-gitops/journal/ in the state repository), in the writes the
emulator committed, and in the live tenant read back through Graph.

A command's time is the whole process: the apply's includes starting Python, checking the plan, re-reading its
targets, verifying and recording history. The write phase and the pace come from the apply's journal (times in
milliseconds) and from the emulator's clock on the writes it committed. Two figures of the in-process bench are
gone because the apply is now a separate command: the client's time per request and the journal's fsync time.

Graph's write limit is 3,000 writes in any 150 s, so a run shorter than that never fills the window and the
limit could not answer 429 even to a client that ignored it. By default the emulator's write window is therefore
shortened to --window 10 s at the same rate (400 writes per 10 s at --scale 2): after the first 10 s every write
meets a full window, and pacing at the limit is really tested.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from emulated import Emulated, Run, WriteRecord, emulated, run_command  # noqa: E402

from entra_gitops.emulator.limits import WRITE_WINDOW_SECONDS  # noqa: E402
from entra_gitops.graph.client import connect  # noqa: E402
from entra_gitops.recovery.journal import FINISHED, Entry, JournalEvent, journal_path, replay  # noqa: E402
from entra_gitops.recovery.plan import Plan, Step, Write  # noqa: E402
from entra_gitops.recovery.planfile import read_plan_file  # noqa: E402
from entra_gitops.state.gitstore import StateRepo  # noqa: E402

TYPES = ("--type", "user", "--type", "group")
UNSAFE = 3  # plan's exit when a guard refuses; the plan is saved all the same when --force can take the refusal
CHANGES = 2  # diff's exit when differences are left


def command(tenant: Emulated, args: Sequence[str], work: Path, ok: Sequence[int] = (0,)) -> Run:
    """`entra-gitops ARGS` timed whole in its own process; the bench stops with its stderr if it exits otherwise."""
    run = run_command(tenant, [str(a) for a in args], work)
    if run.exit_code not in ok:
        fail(args[0], run)
    return run


def fail(name: str, run: Run) -> NoReturn:
    raise SystemExit(f"`entra-gitops {name}` exited {run.exit_code}:\n{run.stderr[-4000:]}")


def write_key(method: str, path: str, target: str | None) -> tuple[str, str, str | None]:
    return (method, path.strip("/"), target)


def plan_key(write: Write) -> tuple[str, str, str | None]:
    target = None
    if write.step is Step.ADD_LINK and isinstance(write.body, dict):
        target = str(write.body["@odata.id"]).rsplit("/", 1)[-1]
    return write_key(write.method, write.path, target)


def journal_of(repo: Path, plan: Plan) -> tuple[Entry, ...]:
    """The entries of the journal `entra-gitops apply` kept for this plan in the state repository."""
    path = journal_path(Path(StateRepo.open(repo).repo.git_dir), plan)
    return replay(path.read_text(encoding="utf-8")) if path.exists() else ()


def seconds_of(entry: Entry) -> float:
    return dt.datetime.fromisoformat(entry.time or "").timestamp()


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
    return {
        "live_ids": [o["id"] for o in users + groups],
        "deleted_ids": [o["id"] for o in gone],
        "members": members,
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
    latency = f", +{args.latency_ms} ms per answer" if args.latency_ms else ""
    print(
        f"entra-gitops apply benchmark: {spec}, {args.writes:,} writes, "
        f"emulator --throttle x{args.scale:g}{latency} in a process of its own, each step a command"
    )
    work = Path(tempfile.mkdtemp(prefix="entra-gitops-bench-"))
    repo, plan_file = work / "state", work / "plan.json"
    window = None if args.window == WRITE_WINDOW_SECONDS else args.window
    try:
        started = time.perf_counter()
        with emulated(spec, throttle=True, scale=args.scale, latency_ms=args.latency_ms, write_window=window) as tenant:
            window_limit, window_seconds, _ = tenant.write_window()
            limit = window_limit / window_seconds
            print(f"  emulator seeded and listening in {time.perf_counter() - started:.1f} s at {tenant.url}")
            print(f"  enforced write limit: {window_limit:,.0f} writes per {window_seconds:g} s = {limit:g} writes/s")
            sys.stdout.flush()

            snapshot = command(tenant, ["snapshot", "--repo", repo, *TYPES, "--format", "json"], work)
            backup = json.loads(snapshot.stdout)["backup"]
            try:
                drifted = tenant.drift_mixed(args.writes, args.seed)
            except RuntimeError as err:
                raise SystemExit(str(err)) from None
            made = command(
                tenant,
                ["plan", "--repo", repo, "--backup", backup["id"], *TYPES, "-o", plan_file],
                work,
                ok=(0, UNSAFE),
            )
            if made.exit_code == UNSAFE and not plan_file.exists():
                fail("plan", made)  # refused by a guard --force does not take: not saved
            forced = made.exit_code == UNSAFE
            plan = read_plan_file(plan_file)

            tenant.record_writes(True)
            rate = f"{limit:g}"
            apply_args = [
                "apply",
                plan_file,
                "--repo",
                repo,
                "--auto-approve",
                "--write-rate",
                rate,
                "--format",
                "json",
            ]
            apply = run_command(tenant, [str(a) for a in [*apply_args, *(["--force"] if forced else [])]], work)
            apply_end = time.time()
            tenant.record_writes(False)
            try:
                report = json.loads(apply.stdout)
            except ValueError:
                fail("apply", apply)
            served: list[WriteRecord] = tenant.writes()
            _, _, peak = tenant.write_window()
            journal = journal_of(repo, plan)
            after = asyncio.run(read_back(tenant.url, plan))
            diff = command(
                tenant,
                ["diff", "--repo", repo, "--backup", backup["id"], *TYPES, "--format", "json"],
                work,
                (0, CHANGES),
            )
            left = json.loads(diff.stdout)["summary"]["changedObjects"]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # -- the journal ------------------------------------------------------------------------------
    finished_events = collections.Counter(e.write for e in journal if e.event in FINISHED)
    journal_duplicates = sum(1 for n in finished_events.values() if n > 1)
    lost = [i for i in range(len(plan.writes)) if finished_events[i] == 0]
    confirmed = sum(1 for e in journal if e.event is JournalEvent.CONFIRMED)
    sent_times = [seconds_of(e) for e in journal if e.event is JournalEvent.SENT]
    done_times = [seconds_of(e) for e in journal if e.event in FINISHED]
    apply_start = apply_end - apply.seconds
    first_sent, last_done = (min(sent_times), max(done_times)) if sent_times and done_times else (apply_end, apply_end)
    finished = len(finished_events)
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
    server_span = commit_times[-1] - commit_times[0] if len(commit_times) > 1 else 0.0
    server_rate = (len(commit_times) - 1) / server_span if server_span else 0.0

    # -- the live tenant ---------------------------------------------------------------------------
    live_ids = collections.Counter(after["live_ids"])
    deleted_ids = collections.Counter(after["deleted_ids"])
    twice_members = sum(len(m) - len(set(m)) for m in after["members"].values())
    restored = [w.object_id for w in plan.writes if w.step is Step.RESTORE]
    restored_wrong = sum(1 for i in restored if live_ids[i] != 1 or deleted_ids[i] != 0)
    removed = [w.object_id for w in plan.writes if w.step is Step.SOFT_DELETE]
    removed_wrong = sum(1 for i in removed if live_ids[i] != 0 or deleted_ids[i] != 1)
    listed_twice = sum(1 for n in live_ids.values() if n > 1) + sum(1 for n in deleted_ids.values() if n > 1)

    kinds = collections.Counter(w.step for w in plan.writes)
    print("\nSetup")
    row(
        "snapshot of users and groups (command)",
        f"{snapshot.seconds:.1f} s",
        f"{sum(backup['counts'].values()):,} objects, {snapshot.served.requests:,} requests, "
        f"peak RSS {snapshot.peak_mb:,.0f} MB",
    )
    for kind, count in drifted.items():
        row(f"drift: {kind}", f"{count:,}")
    row(
        "plan (command: backup, live read, report, guards, save)",
        f"{made.seconds:.1f} s",
        f"{made.served.requests:,} requests, peak RSS {made.peak_mb:,.0f} MB",
    )
    print("\nPlan")
    row("writes planned", f"{len(plan.writes):,}", ", ".join(f"{s.value} {n:,}" for s, n in kinds.items()))
    reasons = collections.Counter(s.reason for s in plan.skipped)
    row(
        "differences not written (skipped)", f"{len(plan.skipped):,}", "; ".join(f"{n} {r}" for r, n in reasons.items())
    )
    guards = collections.Counter(r.guard.value for r in plan.refusals)
    row(
        "refused by the guards when planned",
        f"{len(plan.refusals):,}",
        (f"plan exited {UNSAFE}, saved for --force: applied with --force; " if forced else "")
        + ", ".join(f"{g} {n}" for g, n in guards.items()),
    )
    print("\nApply")
    failures, warnings = report["failures"], report["warnings"]
    row(
        "status",
        report["status"],
        f"exit {apply.exit_code}, {len(failures)} failed, {len(warnings)} warnings" + (", --force" if forced else ""),
    )
    row(
        "writes done (apply's report)",
        f"{report['writes']['done']:,}",
        f"of {report['writes']['total']:,}; journal: {finished:,} done or confirmed, {confirmed} confirmed after an "
        "error",
    )
    row("start, plan checks and re-read before the first write", f"{first_sent - apply_start:.1f} s")
    row("write phase (journal: first sent to last done)", f"{span:.1f} s")
    row("verify and history after the last write", f"{apply_end - last_done:.1f} s")
    row("whole apply (command)", f"{apply.seconds:.1f} s", f"peak RSS {apply.peak_mb:,.0f} MB")
    row(
        "served to the apply",
        f"{apply.served.requests:,}",
        f"requests, {apply.served.resource_units:,} RU, {apply.served.throttled:,} answered 429",
    )
    row("enforced write limit", f"{limit:g}/s", f"--write-rate {rate} given to apply")
    row(
        "sustained writes/s (emulator: writes committed)",
        f"{server_rate:.1f}/s",
        f"{len(commit_times):,} in {server_span:.1f} s; journal: {sustained:.1f}/s",
    )
    row("ratio to the limit, target >= 90%", f"{server_rate / limit:.1%}", f"journal: {sustained / limit:.1%}")
    row(
        "per write: time between writes",
        f"{span / max(finished, 1) * 1000:.1f} ms",
        f"pace interval {1000 / limit:.1f} ms",
    )
    row(
        "peak writes in the emulator's window",
        f"{peak:,}",
        f"of {window_limit:,.0f} per {window_seconds:g} s ({peak / window_limit:.0%})",
    )
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
    row(
        "objects differing, backup against live (diff command)",
        f"{left:,}",
        f"exit {diff.exit_code} ({'nothing left to recover' if diff.exit_code == 0 else 'differences left'}), "
        f"{diff.seconds:.1f} s",
    )
    sys.stdout.flush()
    if apply.exit_code != 0:
        fail("apply", apply)


if __name__ == "__main__":
    main()
