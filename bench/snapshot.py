"""Snapshot benchmark: the commands a user waits for, each timed whole against a throttled emulated tenant of
100,000 users, with honest baselines in the same run.

Run from a checkout with the package installed:  python bench/snapshot.py  (about five minutes)
Smaller for a quick look:                        python bench/snapshot.py --users 10000 --groups 2000
At 300,000 users, to see the daily cost stay:    python bench/snapshot.py --users 300000 --groups 60000

The emulator serves real HTTP on loopback from a process of its own (bench/emulated.py), with Graph's limits on,
and counts what it served. Each `entra-gitops` command runs in its own process, as a user runs it: `snapshot`,
then a day's drift of 1% of users and groups, `diff` against live, the daily `snapshot` (by delta), and a
`snapshot --full` of the same tenant, which must commit nothing. Baselines: the read's floor under Graph's
limits, the SDK's typed models, and `git add -A && git commit` of the same files, written too.
It prints times and ratios; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from emulated import Emulated, Run, emulated, run_command  # noqa: E402
from kiota_abstractions.base_request_configuration import RequestConfiguration  # noqa: E402
from msgraph.generated.users.users_request_builder import UsersRequestBuilder  # noqa: E402
from msgraph_core import PageIterator  # noqa: E402

from entra_gitops.emulator.limits import WINDOW_SECONDS, resource_units_per_window  # noqa: E402
from entra_gitops.graph.client import connect  # noqa: E402
from entra_gitops.model.registry import default_registry  # noqa: E402

REGISTRY = default_registry()
USERS = REGISTRY.get("user")
PAGE = 999


async def our_users(url: str) -> tuple[int, float]:
    async with connect(url) as client:
        started = time.perf_counter()
        users = await client.list_all("users", {"$select": ",".join(USERS.select), "$top": PAGE})
        return len(users), time.perf_counter() - started


async def typed_users(url: str, limit: int) -> tuple[int, float]:
    """Baseline: the SDK's typed models and PageIterator, as most scripts read users; whole pages are parsed,
    so every user of them is counted (the pages that hold at least `limit` users)."""
    async with connect(url) as client:
        started = time.perf_counter()
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=PAGE, select=list(USERS.select))
        first = await client.sdk.users.get(request_configuration=RequestConfiguration(query_parameters=query))
        count = 0

        whole_pages = -(-limit // PAGE) * PAGE

        def keep(_: object) -> bool:
            nonlocal count
            count += 1
            return count < whole_pages

        assert first is not None
        await PageIterator(first, client.adapter).iterate(keep)
        return count, time.perf_counter() - started


def git_add_commit(tree: Path, into: Path) -> float:
    """Baseline: the same tenant-state/ files written into a fresh repository, then `git add -A && git commit`."""
    subprocess.run(["git", "init", "-q", str(into)], check=True)
    os.sync()
    started = time.perf_counter()
    shutil.copytree(tree, into / "tenant-state")
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


def read_floor(run: Run, users: int) -> float:
    """The least time Graph's limits allow for what `run` read: its resource units beyond the first window's
    budget at one budget per 10 s, or Conditional Access's one request a second, whichever is longer."""
    budget = resource_units_per_window(users)
    by_units = max(0.0, (run.served.resource_units - budget) / budget * WINDOW_SECONDS)
    return max(by_units, float(max(run.served.paced - 1, 0)))


def snapshot_report(run: Run) -> dict[str, Any]:
    if run.exit_code != 0:
        raise SystemExit(f"snapshot failed (exit {run.exit_code}):\n{run.stderr[-4000:]}")
    return json.loads(run.stdout)


def side_by_side(label: str, ours: float, full: float, unit: str, target: float | None = None) -> None:
    goal = f", target <= {target:.0%}" if target is not None else ""
    row(label, f"{ours:,.1f} {unit}", f"full read {full:,.1f} {unit}: {ours / max(full, 1e-9):.1%}{goal}")


def row(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<44} {value:>14}  {note}")


def served_row(label: str, run: Run) -> None:
    served = run.served
    row(
        label,
        f"{run.seconds:.1f} s",
        f"{served.requests:,} requests, {served.resource_units:,} RU, {served.throttled} x 429, "
        f"{served.bytes_sent / 2**20:,.1f} MiB, peak {run.peak_mb:,.0f} MB",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=20_000)
    parser.add_argument("--apps", type=int, default=1_000)
    parser.add_argument("--sample", type=int, default=5_000, help="users the typed baseline parses (then scaled)")
    args = parser.parse_args()

    spec = f"synthetic:users={args.users},groups={args.groups},apps={args.apps}"
    print(f"entra-gitops snapshot benchmark: {spec}, emulator --throttle in its own process")
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="entra-gitops-bench-"))
    repo = work / "state"
    try:
        with emulated(spec) as tenant:
            print(f"  emulator seeded and listening in {time.perf_counter() - started:.1f} s at {tenant.url}")
            results = measure(tenant, work, repo, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(args, *results)


def measure(tenant: Emulated, work: Path, repo: Path, args: argparse.Namespace) -> tuple[Any, ...]:
    snapshot = ["snapshot", "--repo", str(repo), "--format", "json"]
    first = run_command(tenant, snapshot, work)
    first_report = snapshot_report(first)
    ours_count, ours_seconds = asyncio.run(our_users(tenant.url))
    sample_count, sample_seconds = asyncio.run(typed_users(tenant.url, args.sample))
    baseline_git = git_add_commit(repo / "tenant-state", work / "baseline")
    shutil.rmtree(work / "baseline")

    changed = tenant.churn()
    os.sync()
    diff = run_command(
        tenant, ["diff", "--repo", str(repo), "--format", "json", "--output", str(work / "d.json")], work
    )
    if diff.exit_code != 2:
        raise SystemExit(f"diff after the churn exited {diff.exit_code}, not 2:\n{diff.stderr[-4000:]}")
    reported = len(json.loads((work / "d.json").read_text())["changes"])
    daily = run_command(tenant, snapshot, work)
    daily_report = snapshot_report(daily)
    os.sync()
    check = run_command(tenant, [*snapshot, "--full"], work)
    check_report = snapshot_report(check)
    typed = (sample_count, sample_seconds, sample_seconds * ours_count / max(sample_count, 1), ours_count, ours_seconds)
    return first, first_report, typed, baseline_git, changed, diff, reported, daily, daily_report, check, check_report


def report(
    args: argparse.Namespace,
    first: Run,
    first_report: dict[str, Any],
    typed: tuple[int, float, float, int, float],
    baseline_git: float,
    changed: int,
    diff: Run,
    reported: int,
    daily: Run,
    daily_report: dict[str, Any],
    check: Run,
    check_report: dict[str, Any],
) -> None:
    phases = first_report["statistics"]["phases"]
    files = sum(c["added"] + c["modified"] for c in first_report["changes"].values())
    floor = read_floor(first, args.users)
    print("\n`entra-gitops snapshot`, the first: the whole tenant read and committed")
    row("objects written (files)", f"{files:,}")
    served_row("whole command, end to end", first)
    row("its phases", "", ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()))
    row(
        "read floor under Graph's limits",
        f"{floor:.1f} s",
        f"{first.served.resource_units:,} RU at {resource_units_per_window(args.users):,} per {WINDOW_SECONDS:.0f} s, "
        f"{first.served.paced} Conditional Access requests at 1/s; read {phases['read'] / max(floor, 1e-9):.1f}x it",
    )
    sample_count, sample_seconds, typed_seconds, ours_count, ours_seconds = typed
    print("\nBaseline: users through the SDK's typed models and PageIterator")
    row(
        f"typed: {sample_count:,} users parsed",
        f"{sample_seconds:.1f} s",
        f"scaled to {ours_count:,}: {typed_seconds:.0f} s",
    )
    row(f"ours: {ours_count:,} users as raw JSON pages", f"{ours_seconds:.1f} s")
    row("ratio (typed / ours), target >= 20x", f"{typed_seconds / ours_seconds:.0f}x")
    print("\nBaseline: the same files written, then git add -A && git commit")
    # The blobs go into git during the read, as each object is rendered: what is left after it is the objects
    # that waited for their links, the trees, the refs and the work tree.
    ours = phases["normalize"] + phases["write"]
    row("write files, git add -A && git commit", f"{baseline_git:.1f} s")
    row("ours after the read (its blobs went in during it)", f"{ours:.1f} s")
    row("ratio (ours / git add), target <= 1.5x", f"{ours / baseline_git:.2f}x")
    by_delta = sorted(n for n, how in daily_report["readBy"].items() if how == "delta")
    print(f"\nThe day after: {changed:,} objects changed (1%)")
    served_row("`diff` against live, end to end", diff)
    row("objects in its report", f"{reported:,}")
    side_by_side("`diff` seconds", diff.seconds, check.seconds, "s", 0.15)
    print(f"\nThe daily `snapshot`, by delta ({', '.join(by_delta)}), against `snapshot --full` of the same tenant")
    served_row("daily snapshot, end to end", daily)
    served_row("snapshot --full, end to end", check)
    daily_files = sum(c["added"] + c["modified"] for c in daily_report["changes"].values())
    row("files written", f"{daily_files:,}")
    row("its phases", "", ", ".join(f"{k} {v:.1f} s" for k, v in daily_report["statistics"]["phases"].items()))
    side_by_side("requests", daily.served.requests, check.served.requests, "")
    side_by_side("bytes read", daily.served.bytes_sent / 2**20, check.served.bytes_sent / 2**20, "MiB", 0.05)
    side_by_side("seconds", daily.seconds, check.seconds, "s", 0.15)
    row("the full read commits nothing", "yes" if not check_report["createdCommit"] else "NO: trees differ")
    runs = ((first, first_report), (daily, daily_report), (check, check_report))
    row(
        "RU the tool counted / the server charged",
        " / ".join(f"{r['statistics']['resourceUnits']:,}" for _, r in runs),
        " / ".join(f"{run.served.resource_units:,}" for run, _ in runs) + " (first, daily, full)",
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
