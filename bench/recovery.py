"""A small recovery at two sizes, as a user runs it: `plan --type user`, then `apply --auto-approve`, each a
command in a process of its own against the throttled emulator in another.

    python bench/recovery.py                       # 10 writes at 2,000 and 100,000 users (about 3 minutes)
    python bench/recovery.py --writes 50 --sizes 2000,300000

At each size a synthetic tenant (N users, N/5 groups) is snapshotted, `--writes` cloud users' job titles
drift, and the plan that puts them back is made and applied. Per command the table gives wall seconds, the
requests and resource units the emulator served, 429s and the command's own peak memory. What a small
recovery costs should not grow with the tenant: the target is an apply at the largest size within 2x of the
same apply at the smallest.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from emulated import Run, emulated, run_command  # noqa: E402

APPLY_TARGET = 2.0


def measure(users: int, writes: int, seed: int) -> tuple[Run, Run, int]:
    """The plan and the apply of `writes` user repairs at `users`, and how many writes the plan holds."""
    work = Path(tempfile.mkdtemp(prefix="entra-gitops-recovery-"))
    repo, plan_file = work / "state", work / "plan.json"
    try:
        with emulated(f"synthetic:users={users},groups={max(users // 5, 10)}") as tenant:
            first = run_command(tenant, ["snapshot", "--repo", str(repo)], work)
            if first.exit_code != 0:
                raise SystemExit(f"the snapshot at {users:,} users exited {first.exit_code}:\n{first.stderr[-4000:]}")
            tenant.drift(writes, seed)
            plan = run_command(tenant, ["plan", "--repo", str(repo), "--type", "user", "-o", str(plan_file)], work)
            if plan.exit_code != 0:
                raise SystemExit(f"plan at {users:,} users exited {plan.exit_code}:\n{plan.stderr[-4000:]}")
            planned = len(json.loads(plan_file.read_text())["writes"])
            apply = run_command(tenant, ["apply", str(plan_file), "--repo", str(repo), "--auto-approve"], work)
            if apply.exit_code != 0:
                raise SystemExit(f"apply at {users:,} users exited {apply.exit_code}:\n{apply.stderr[-4000:]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return plan, apply, planned


def line(users: int, label: str, run: Run) -> str:
    served = run.served
    return (
        f"| {users:,} | {label} | {run.seconds:,.1f} | {served.requests:,} | {served.resource_units:,} "
        f"| {served.throttled} | {run.peak_mb:,.0f} MB |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=10, help="users that drift, and so writes planned")
    parser.add_argument("--sizes", default="2000,100000", help="user counts, smallest first")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",") if n]
    print(f"entra-gitops recovery benchmark: {args.writes} user writes at {', '.join(f'{n:,}' for n in sizes)} users")
    results = {}
    for users in sizes:
        results[users] = measure(users, args.writes, args.seed)
        plan, apply, planned = results[users]
        print(f"  {line(users, f'plan ({planned} writes)', plan)}\n  {line(users, 'apply', apply)}", flush=True)
    print("\n| users | command | seconds | requests | RU | 429 | peak RSS |\n|---:|---|---:|---:|---:|---:|---:|")
    for users, (plan, apply, planned) in results.items():
        print(line(users, f"plan ({planned} writes)", plan))
        print(line(users, "apply", apply))
    small, large = results[sizes[0]], results[sizes[-1]]
    for label, index, target in (("plan", 0, None), ("apply", 1, APPLY_TARGET)):
        ratio = large[index].seconds / max(small[index].seconds, 1e-9)
        goal = f" (target <= {target:g}x: {'met' if ratio <= target else 'NOT met'})" if target else ""
        print(f"\n{label} at {sizes[-1]:,} users / at {sizes[0]:,}: {ratio:.2f}x the time{goal}", end="")
    print()


if __name__ == "__main__":
    main()
