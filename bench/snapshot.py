"""Snapshot benchmark: a 100,000-user throttled emulator, our snapshot, and two baselines side by side; then
the daily run: 1% churn, the snapshot by delta against a full read of the same tenant, and `diff` against live.

Run from a checkout with the package installed:  python bench/snapshot.py  (about three minutes)
Smaller for a quick look:                        python bench/snapshot.py --users 10000 --groups 2000
At 300,000 users, to see the daily cost stay:    python bench/snapshot.py --users 300000 --groups 60000

It prints times and ratios; it asserts nothing. Everything runs in this one process: the emulator
serves real HTTP on loopback from a thread, the way a separate Graph would, with --throttle limits.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core import PageIterator

from entra_gitops.emulator import create_emulator
from entra_gitops.emulator.server import serve_in_background
from entra_gitops.graph.client import connect
from entra_gitops.model.reads import GraphStats
from entra_gitops.model.registry import default_registry
from entra_gitops.model.settings import Config
from entra_gitops.state.gitstore import StateRepo
from entra_gitops.state.incremental import narrowed_live
from entra_gitops.state.snapshot import SnapshotOutcome, take_snapshot
from entra_gitops.state.sources import backup_source, live_state, load_source

REGISTRY = default_registry()
USERS = REGISTRY.get("user")


async def our_users(url: str) -> tuple[int, float]:
    async with connect(url) as client:
        started = time.perf_counter()
        users = await client.list_all("users", {"$select": ",".join(USERS.select), "$top": 999})
        return len(users), time.perf_counter() - started


async def typed_users(url: str, limit: int) -> tuple[int, float]:
    """Baseline (a): the SDK's typed models and PageIterator, as most scripts read users."""
    async with connect(url) as client:
        started = time.perf_counter()
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=999, select=list(USERS.select))
        first = await client.sdk.users.get(request_configuration=RequestConfiguration(query_parameters=query))
        count = 0

        def keep(_: object) -> bool:
            nonlocal count
            count += 1
            return count < limit

        assert first is not None
        await PageIterator(first, client.adapter).iterate(keep)
        return count, time.perf_counter() - started


async def snapshot(url: str, store: StateRepo, when: dt.datetime, *, full: bool = False) -> SnapshotOutcome:
    async with connect(url) as client:
        return await take_snapshot(client, store, REGISTRY, tuple(REGISTRY), Config(), when, full=full)


async def diff_inputs(url: str, store: StateRepo, *, narrowed: bool) -> tuple[int, GraphStats, float]:
    """What `diff` against live loads and reads before it compares: the newest backup and the live tenant, either
    narrowed (delta since the backup, only objects whose blobs differ parsed) or in full (every file parsed, every
    type read). Returns the objects it will compare, what Graph served, and the seconds."""
    async with connect(url) as client:
        started = time.perf_counter()
        types = tuple(REGISTRY)
        source = backup_source(store.resolve_backup("latest"))
        if narrowed:
            cut = await narrowed_live(client, store, REGISTRY, types, source.commit, source.types)
            count = len(cut.before) + len(cut.after)
        else:
            before = load_source(store, REGISTRY, source)
            after = await live_state(client, REGISTRY, types)
            count = len(before) + len(after)
        return count, client.stats, time.perf_counter() - started


def git_add_commit(tree: Path, into: Path) -> float:
    """Baseline (b): `git add -A && git commit` of the same tenant-state/ tree in a fresh repository."""
    shutil.copytree(tree, into / "tenant-state")
    subprocess.run(["git", "init", "-q", str(into)], check=True)
    started = time.perf_counter()
    subprocess.run(
        "git add -A && git commit -q -m snapshot",
        shell=True,
        cwd=into,
        check=True,
        env={
            "GIT_AUTHOR_NAME": "b",
            "GIT_AUTHOR_EMAIL": "b@b",
            "GIT_COMMITTER_NAME": "b",
            "GIT_COMMITTER_EMAIL": "b@b",
            "PATH": "/usr/bin:/bin:/usr/local/bin",
        },
    )
    return time.perf_counter() - started


def change_one_percent(app: object) -> int:
    """Change 1% of users and groups in the emulated tenant, as a day's drift would: properties, and a member
    added to each changed group, each recorded in the tenant's change log as Graph records a write."""
    tenant = app.tenant  # type: ignore[attr-defined]
    changed = 0
    users = list(tenant.objects(REGISTRY.get("user")).values())
    for type_name, prop in (("user", "jobTitle"), ("group", "description")):
        rtype = REGISTRY.get(type_name)
        for obj in list(tenant.objects(rtype).values())[::100]:
            tenant.update(rtype, obj, {prop: f"changed {changed}"})
            if type_name == "group" and "DynamicMembership" not in (obj.get("groupTypes") or []):
                tenant.add_link(("group", "members"), obj["id"], users[changed % len(users)]["id"])
            changed += 1
    return changed


def side_by_side(label: str, ours: float, full: float, unit: str, target: float | None = None) -> None:
    goal = f", target <= {target:.0%}" if target is not None else ""
    row(label, f"{ours:,.1f} {unit}", f"full read {full:,.1f} {unit}: {ours / max(full, 1e-9):.1%}{goal}")


def row(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<44} {value:>14}  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=20_000)
    parser.add_argument("--apps", type=int, default=1_000)
    parser.add_argument("--sample", type=int, default=5_000, help="users the typed baseline parses (then scaled)")
    args = parser.parse_args()

    spec = f"synthetic:users={args.users},groups={args.groups},apps={args.apps}"
    print(f"entra-gitops snapshot benchmark: {spec}, emulator --throttle, one process")
    started = time.perf_counter()
    app = create_emulator(spec, throttle=True)
    url = serve_in_background(app)
    # The emulated tenant lives in this process but belongs to "Graph": out of the garbage collector's sight,
    # as it would be in a process of its own, so collections do not charge its objects to the tool's runs.
    gc.collect()
    gc.freeze()
    print(f"  emulator seeded and listening in {time.perf_counter() - started:.1f} s at {url}")

    work = Path(tempfile.mkdtemp(prefix="entra-gitops-bench-"))
    try:
        store = StateRepo.open(work / "state", create=True)
        day = dt.datetime(2026, 11, 21, 23, 0, tzinfo=dt.UTC)
        first = asyncio.run(snapshot(url, store, day))
        files = sum(len(f) for f in (first.change.added, first.change.modified))

        ours_count, ours_seconds = asyncio.run(our_users(url))
        sample_count, sample_seconds = asyncio.run(typed_users(url, args.sample))
        typed_seconds = sample_seconds * ours_count / max(sample_count, 1)
        baseline_git = git_add_commit(store.root / "tenant-state", work / "baseline")

        changed = change_one_percent(app)
        # The baseline's files still on their way to disk would slow the next run's git: they go first.
        os.sync()
        started = time.perf_counter()
        second = asyncio.run(snapshot(url, store, day + dt.timedelta(days=1)))
        second_seconds = time.perf_counter() - started
        delta_count, delta_stats, delta_seconds = asyncio.run(diff_inputs(url, store, narrowed=True))
        full_count, full_stats, full_seconds = asyncio.run(diff_inputs(url, store, narrowed=False))
        os.sync()
        started = time.perf_counter()
        check = asyncio.run(snapshot(url, store, day + dt.timedelta(days=1, hours=1), full=True))
        check_seconds = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        shutil.rmtree(work, ignore_errors=True)

    total = sum(first.seconds.values())
    print("\nFull snapshot")
    row("objects written (files)", f"{files:,}")
    row(
        "read (Graph, throttled)",
        f"{first.seconds['read']:.1f} s",
        f"{first.stats.requests:,} requests, {first.stats.resource_units:,} RU, {first.stats.throttled} throttled",
    )
    row("normalize and render", f"{first.seconds['normalize']:.1f} s")
    row("write (fast-import, read-tree, tag)", f"{first.seconds['write']:.1f} s")
    row("total", f"{total:.1f} s")
    print("\nBaseline (a): users through typed models and PageIterator")
    row(
        f"typed: {sample_count:,} users parsed",
        f"{sample_seconds:.1f} s",
        f"scaled to {ours_count:,}: {typed_seconds:.0f} s",
    )
    row(f"ours: {ours_count:,} users as raw JSON pages", f"{ours_seconds:.1f} s")
    row("ratio (typed / ours), target >= 20x", f"{typed_seconds / ours_seconds:.0f}x")
    print("\nBaseline (b): git add -A && git commit of the same tree")
    row("git add -A && git commit", f"{baseline_git:.1f} s")
    row("our write", f"{first.seconds['write']:.1f} s")
    row("ratio (ours / git add), target <= 1.5x", f"{first.seconds['write'] / baseline_git:.2f}x")
    by_delta = sorted(n for n, how in second.read_by.items() if how == "delta")
    print(f"\nThe daily run: second snapshot after {changed:,} objects changed (1%), by delta ({', '.join(by_delta)})")
    row("files written", f"{len(second.change.modified) + len(second.change.added)}")
    row("write and commit, target < 2 s", f"{second.seconds['write']:.2f} s")
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in second.seconds.items())
    row("its phases", f"{sum(second.seconds.values()):.1f} s", phases)
    side_by_side("requests", second.stats.requests, check.stats.requests, "")
    side_by_side("bytes read", second.stats.bytes_read / 2**20, check.stats.bytes_read / 2**20, "MiB", 0.05)
    side_by_side("whole snapshot, end to end", second_seconds, check_seconds, "s", 0.15)
    row("a full read of the same tenant commits nothing", "yes" if not check.created_commit else "NO: trees differ")
    print("\n`diff` against live after the churn: backup and live state loaded, before the comparison")
    row("objects parsed and compared", f"{delta_count:,}", f"full parse and read: {full_count:,}")
    side_by_side("requests", delta_stats.requests, full_stats.requests, "")
    side_by_side("backup loaded and live read, end to end", delta_seconds, full_seconds, "s", 0.15)
    print()
    row("peak memory (emulator included), target < 2 GB", f"{peak_mb:,.0f} MB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
