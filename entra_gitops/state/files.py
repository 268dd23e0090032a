"""Files written whole or not at all: a crash, a full disk or Ctrl+C never leaves half a file behind."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from entra_gitops.model.errors import OutputError


def write_atomically(path: Path, content: bytes) -> None:
    """Replace `path` with `content` through a scratch file beside it and one rename, keeping its permissions."""
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    failure = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch.write_bytes(content)
        if path.is_file():
            shutil.copymode(path, scratch)
        os.replace(scratch, path)
    except OSError as err:
        failure = OutputError.of(path, err)  # the file asked for, not the scratch file the OS refused
    finally:
        scratch.unlink(missing_ok=True)
    if failure is not None:
        raise failure
