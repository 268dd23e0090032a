"""Many state files checked across processes report exactly what one process reports, in the same order."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from entra_gitops.model import canonical
from entra_gitops.model.registry import default_registry
from entra_gitops.state.checking import PARALLEL_FROM, check_on_disk
from entra_gitops.state.layout import render_files

REGISTRY = default_registry()


def many_users(demo: Any, root: Path, count: int) -> list[tuple[str, str]]:
    """`count` valid user files made from one demo user, each under its own id, and three broken ones."""
    files = render_files(REGISTRY, demo)
    path, content = next((p, c) for p, c in files.items() if p.startswith("tenant-state/users/"))
    original = path.rsplit("/", 1)[1].removesuffix(".yaml")
    named = []
    for n in range(count):
        new = str(uuid.UUID(int=n + 1))
        text = content.decode().replace(original, new)
        if n == 7:
            text = text.replace("accountEnabled: true", "accountEnabled: maybe")
        if n == count // 2:
            text = text.replace(f"id: {new}\n", "") + f"id: {new}\n"  # the id last: not canonical
        if n == count - 3:
            text = text.replace(f"id: {new}", f"id: {uuid.UUID(int=10**9)}")  # another object's id
        relative = f"tenant-state/users/{new}.yaml"
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
        named.append((relative, str(root / relative)))
    return named


def test_files_checked_in_parallel_report_what_one_process_reports(demo: Any, tmp_path: Path) -> None:
    named = many_users(demo, tmp_path, PARALLEL_FROM + 500)
    alone = check_on_disk(named, workers=1)
    assert check_on_disk(named, workers=2) == alone
    broken = sorted({p.path for p in alone})
    assert len(broken) == 3, alone
    assert any("accountEnabled" in p.message for p in alone)
    assert any("not in canonical form" in p.message for p in alone)
    assert any("does not match the file name" in p.message for p in alone)


def test_same_form_tells_apart_what_dump_writes_differently() -> None:
    assert canonical.same_form({"a": [1, {"b": True}]}, {"a": ({"b": True},)[:0] + (1, {"b": True})})
    assert not canonical.same_form({"a": True}, {"a": 1})  # equal in Python, written as true and 1
    assert not canonical.same_form({"a": 1}, {"a": 1.0})
    assert not canonical.same_form({"a": 1, "b": 2}, {"b": 2, "a": 1})  # key order is written
    assert not canonical.same_form({"a": []}, {"a": {}})
