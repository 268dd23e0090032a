"""Canonical I/O benchmark: `entra-gitops validate` and loading a backup, against PyYAML's C loader on the same files.

Run from a checkout with the package installed:  python bench/validate.py  (about two minutes)
Smaller for a quick look:                        python bench/validate.py --users 10000 --groups 2000

A snapshot of a synthetic tenant (the emulator in a process of its own, bench/emulated.py) gives a state
repository of real files. Then, each in a process of its own and timed whole with its peak memory:
`entra-gitops validate` over tenant-state/ against reading the same files and loading each with PyYAML's
CSafeLoader (no checks at all: the floor of any YAML reader), and `entra-gitops backups`-style loading of the
backup commit (every blob parsed into a tenant state) against CSafeLoader over the same blobs.
It prints times and ratios; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from emulated import Timed, emulated, run_command, timed  # noqa: E402

# Each baseline and measurement runs as its own interpreter: `{repo}` is the state repository.
PYYAML_FILES = """
import os, sys, yaml
count = 0
for folder, _, names in os.walk(sys.argv[1] + "/tenant-state"):
    for name in names:
        if name.endswith(".yaml"):
            with open(os.path.join(folder, name), "rb") as handle:
                yaml.load(handle.read(), Loader=yaml.CSafeLoader)
            count += 1
print(count)
"""
PYYAML_BLOBS = """
import sys, yaml
from entra_gitops.state.gitstore import StateRepo
store = StateRepo.open(sys.argv[1])
files = store.read_files(store.resolve_backup("latest").commit)
for content in files.values():
    yaml.load(content, Loader=yaml.CSafeLoader)
print(len(files))
"""
OUR_LOAD = """
import sys
from entra_gitops.model.registry import default_registry
from entra_gitops.state.gitstore import StateRepo
from entra_gitops.state.sources import backup_source, load_source
store = StateRepo.open(sys.argv[1])
state = load_source(store, default_registry(), backup_source(store.resolve_backup("latest")))
print(len(state))
"""


def measured(argv: list[str], cwd: Path) -> Timed:
    run = timed(argv, cwd)
    if run.exit_code not in (0, 1):
        raise SystemExit(f"{' '.join(argv[:4])} failed ({run.exit_code}):\n{run.stderr[-3000:]}")
    return run


def python(script: str, repo: Path) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(script), str(repo)]


def row(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<52} {value:>10}  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=20_000)
    parser.add_argument("--apps", type=int, default=1_000)
    args = parser.parse_args()
    spec = f"synthetic:users={args.users},groups={args.groups},apps={args.apps}"
    print(f"entra-gitops canonical I/O benchmark: a snapshot of {spec}")
    work = Path(tempfile.mkdtemp(prefix="entra-gitops-bench-"))
    repo = work / "state"
    try:
        with emulated(spec) as tenant:
            first = run_command(tenant, ["snapshot", "--repo", str(repo)], work)
            if first.exit_code != 0:
                raise SystemExit(f"snapshot failed:\n{first.stderr[-3000:]}")
        os.sync()
        # Both read the files once before timing, so neither pays for the page cache the other filled.
        measured(python(PYYAML_FILES, repo), work)
        validate = measured([sys.executable, "-m", "entra_gitops", "validate", "--format", "json"], repo)
        baseline = measured(python(PYYAML_FILES, repo), work)
        load = measured(python(OUR_LOAD, repo), work)
        blobs = measured(python(PYYAML_BLOBS, repo), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    files = int(baseline.stdout.strip())
    print(f"\n{files:,} files under tenant-state/")
    row("entra-gitops validate, end to end", f"{validate.seconds:.1f} s", f"peak {validate.peak_mb:,.0f} MB")
    row("baseline: read each file, yaml.load(CSafeLoader)", f"{baseline.seconds:.1f} s")
    row("ratio, target <= 1.5x", f"{validate.seconds / baseline.seconds:.2f}x")
    print("\nThe backup commit loaded into a tenant state (what diff, plan and apply start from)")
    row(f"load_source: {int(load.stdout.strip()):,} objects", f"{load.seconds:.1f} s", f"peak {load.peak_mb:,.0f} MB")
    row("baseline: the same blobs, yaml.load(CSafeLoader)", f"{blobs.seconds:.1f} s")
    row("ratio, target <= 1.5x", f"{load.seconds / blobs.seconds:.2f}x")


if __name__ == "__main__":
    main()
