"""Finding the state repository from a folder inside it, as git does: the work tree root that holds `.git`."""

from __future__ import annotations

import subprocess
from pathlib import Path


def work_tree_root(start: Path) -> Path | None:
    """The root of the git work tree holding `start`, or None when `start` is in none.

    git itself answers (`git rev-parse --show-toplevel`), so what it honours holds here too: a `.git` file of a
    linked worktree or submodule, GIT_DIR, GIT_CEILING_DIRECTORIES, safe.directory. Inside a `.git` folder there
    is no work tree, so that is None as well.
    """
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=start, capture_output=True, text=True, check=False
        )
    except (FileNotFoundError, NotADirectoryError):
        return None
    root = found.stdout.strip()
    return Path(root) if found.returncode == 0 and root else None
