"""The project's own tenant-state/ is the demo tenant's snapshot, byte for byte (a determinism check)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

from conftest import take_snapshot_of

from entra_gitops.emulator import create_emulator
from entra_gitops.state.gitstore import StateRepo

EXAMPLE = Path(__file__).resolve().parents[1] / "tenant-state"
UPDATE = "ENTRA_GITOPS_UPDATE_EXAMPLE"


def yaml_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.yaml"))}


def test_the_example_is_what_a_snapshot_of_the_demo_writes(tmp_path: Path) -> None:
    store = StateRepo.open(tmp_path / "state", create=True)
    take_snapshot_of(create_emulator("demo"), store, dt.datetime(2026, 11, 21, tzinfo=dt.UTC))
    fresh = yaml_files(store.root / "tenant-state")
    if os.environ.get(UPDATE):
        for old in EXAMPLE.iterdir():
            if old.is_dir():
                shutil.rmtree(old)
            elif old.suffix == ".yaml":
                old.unlink()
        for path, content in fresh.items():
            (EXAMPLE / path).parent.mkdir(parents=True, exist_ok=True)
            (EXAMPLE / path).write_bytes(content)
    example = yaml_files(EXAMPLE)
    assert sorted(example) == sorted(fresh), f"tenant-state/ is out of date: rerun this test with {UPDATE}=1"
    changed = [p for p in fresh if example[p] != fresh[p]]
    assert not changed, f"{len(changed)} file(s) differ, first {changed[0]}: rerun this test with {UPDATE}=1"
