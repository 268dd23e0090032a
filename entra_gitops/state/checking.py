"""State files on disk checked as `validate` checks them, spread over the machine's cores when there are many."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from entra_gitops.model.registry import default_registry
from entra_gitops.state.validate import Problem, check_file

# Below this many files one process is quicker than starting others; above, each worker takes a few chunks.
PARALLEL_FROM = 2_000
CHUNKS_PER_WORKER = 4


def _check(named: Sequence[tuple[str, str]]) -> list[Problem]:
    """Every problem of each (state path, file on disk), in order; the registry is the built-in one."""
    registry = default_registry()
    return [problem for path, file in named for problem in check_file(registry, path, Path(file).read_bytes())]


def check_on_disk(named: Sequence[tuple[str, str]], workers: int | None = None) -> list[Problem]:
    """What `validate` reports for (state path, file on disk) pairs, in their order.

    The checks are CPU-bound and independent per file: many files are split into chunks checked by worker
    processes, one a core (`workers` to say otherwise), forked where the platform forks safely.
    """
    count = min(workers or os.cpu_count() or 1, max(1, len(named) // (PARALLEL_FROM // 2)))
    if count <= 1 or len(named) < PARALLEL_FROM:
        return _check(named)
    size = -(-len(named) // (count * CHUNKS_PER_WORKER))
    chunks = [named[start : start + size] for start in range(0, len(named), size)]
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
        return [problem for found in pool.map(_check, chunks) for problem in found]
