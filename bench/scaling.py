"""How entra-gitops scales with the tenant: the first snapshot, `diff` after a day's 1 % churn, and the daily
snapshot, each timed whole as a user runs it, at several sizes.

Each size is a synthetic tenant (N users, N/5 groups, N/100 apps) served by the emulator with Graph's throttle,
in a process of its own so that its memory is not counted. Per command the table gives wall seconds, the
requests and resource units the emulator served (its own count, as Graph's), 429s, and the command's own peak
resident memory. The targets of the scale work: peak memory <= 1.5 GB at 300k users and <= 2 GB at 1M.

    python bench/scaling.py                       # 10k, 100k, 300k, 1M (about 25 minutes)
    python bench/scaling.py --sizes 10000,100000  # a quicker look
    python bench/scaling.py --sizes 1000000 --first-only
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from emulated import Run, emulated, run_command  # noqa: E402

MEMORY_TARGETS_MB = {300_000: 1_500, 1_000_000: 2_000}


def measure(users: int, first_only: bool) -> list[tuple[str, Run]]:
    """The three commands of a day at `users` (or the first snapshot alone), against a fresh tenant of that size;
    each row is printed as its command ends."""
    spec = f"synthetic:users={users},groups={users // 5},apps={max(users // 100, 1)}"
    work = Path(tempfile.mkdtemp(prefix="entra-gitops-scaling-"))
    repo = work / "state"
    started = time.perf_counter()
    try:
        with emulated(spec) as tenant:
            print(f"  {spec}: emulator seeded in {time.perf_counter() - started:.0f} s", flush=True)
            snapshot = ["snapshot", "--repo", str(repo), "--format", "json"]
            runs = [("first snapshot", run_command(tenant, snapshot, work))]
            print_row(users, *runs[-1])
            if not first_only:
                tenant.churn()
                os.sync()
                diff = ["diff", "--repo", str(repo), "--format", "json", "--output", str(work / "d.json")]
                runs.append(("diff after 1% churn", run_command(tenant, diff, work)))
                print_row(users, *runs[-1])
                runs.append(("daily snapshot", run_command(tenant, snapshot, work)))
                print_row(users, *runs[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for label, run in runs:
        wanted = 2 if label.startswith("diff") else 0
        if run.exit_code != wanted:
            raise SystemExit(f"{label} at {users:,} users exited {run.exit_code}:\n{run.stderr[-4000:]}")
    return runs


def print_row(users: int, label: str, run: Run) -> None:
    served = run.served
    phases = ""
    if "snapshot" in label and run.exit_code == 0:
        timed = json.loads(run.stdout)["statistics"]["phases"]
        phases = "  (" + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timed.items()) + ")"
    print(
        f"  | {users:,} | {label} | {run.seconds:,.1f} | {served.requests:,} | {served.resource_units:,} "
        f"| {served.throttled} | {run.peak_mb:,.0f} MB |{phases}",
        flush=True,
    )


def table(results: dict[int, list[tuple[str, Run]]]) -> None:
    print()
    print("| users | command | seconds | requests | RU | 429 | peak RSS |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for users, runs in results.items():
        for label, run in runs:
            served = run.served
            print(
                f"| {users:,} | {label} | {run.seconds:,.1f} | {served.requests:,} | {served.resource_units:,} "
                f"| {served.throttled} | {run.peak_mb:,.0f} MB |"
            )
    print()
    for users, target in MEMORY_TARGETS_MB.items():
        if users in results:
            peak = max(run.peak_mb for _, run in results[users])
            verdict = "met" if peak <= target else "NOT met"
            print(f"peak memory at {users:,} users: {peak:,.0f} MB, target <= {target:,} MB: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,300000,1000000", help="user counts, comma-separated")
    parser.add_argument("--first-only", action="store_true", help="time only the first snapshot at each size")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(f"entra-gitops scaling benchmark: {', '.join(f'{s:,}' for s in sizes)} users, emulator --throttle")
    results = {users: measure(users, args.first_only) for users in sizes}
    table(results)


if __name__ == "__main__":
    main()
