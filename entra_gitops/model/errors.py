"""Errors a user can cause or meet, each with the exit code the CLI maps it to."""

from __future__ import annotations

import enum
import errno
from collections.abc import Sequence


class ExitCode(enum.IntEnum):
    """Exit codes shared by every command (DESIGN: exit codes)."""

    OK = 0
    ERROR = 1
    CHANGES = 2
    UNSAFE = 3
    STALE = 4


class EntraGitopsError(Exception):
    """A failure the user can act on: the message says what, where, and what to do."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} ({self.hint})" if self.hint else text


class SchemaError(EntraGitopsError):
    """A resource-type schema in schemas/ is malformed."""


class UnknownTypeError(EntraGitopsError):
    """A type name that the registry does not know."""


class SeedError(EntraGitopsError):
    """An emulator seed file or synthetic spec that cannot be loaded."""


class ConfigError(EntraGitopsError):
    """A bad option value, URL or configuration file."""


class AuthError(EntraGitopsError):
    """Credentials are missing, refused or cannot be obtained."""


class GraphError(EntraGitopsError):
    """Microsoft Graph answered with an error after all retries, or could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code
        self.request_id = request_id


class StateFileError(EntraGitopsError):
    """A state file that cannot be read: bad YAML, a refused construct, or a value outside the model."""

    def __init__(self, path: str, line: int, column: int, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"{path}:{line}:{column}: {message}", hint=hint)
        self.path = path
        self.line = line
        self.column = column
        self.message = message


class OutputError(EntraGitopsError):
    """A file the command was asked to write cannot be written."""

    @classmethod
    def of(cls, path: object, err: OSError) -> OutputError:
        """The error for writing `path` (the file asked for, not a scratch file beside it)."""
        return cls(f"cannot write {path}: {err.strerror or err}")


# Errors that only writing causes; any other OSError is said as "cannot access", which is true of every operation.
_WRITE_ERRNOS = frozenset({errno.EROFS, errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)})


def describe_os_error(err: OSError) -> str:
    """One line for an OSError: the path (or paths) and the OS's reason, never a traceback."""
    reason = err.strerror or str(err) or type(err).__name__
    paths = [str(p) for p in (err.filename, err.filename2) if p is not None]
    if not paths:
        return reason
    verb = "write" if err.errno in _WRITE_ERRNOS else "access"
    return f"cannot {verb} {' or '.join(paths)}: {reason}"


def describe_git_error(command: Sequence[object] | str, status: object, stderr: str | None) -> str:
    """One line for a failed git command (GitPython's GitCommandError): the git command and git's own message."""
    words = command.split() if isinstance(command, str) else [str(w) for w in command]
    # The subcommand, past `git` and its global options (`-c name=value`, `-C dir`).
    name, skip = "", False
    for word in words[1:]:
        if skip:
            skip = False
        elif word in ("-c", "-C"):
            skip = True
        elif not word.startswith("-"):
            name = word
            break
    text = (stderr or "").strip().removeprefix("stderr:").strip().strip("'\"").strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # git puts hints before its verdict; the verdict is what the user needs.
    detail = next((line for line in lines if line.startswith(("fatal:", "error:"))), lines[0] if lines else "")
    detail = detail or f"exit status {status}"
    return f"{f'git {name}' if name else 'git'} failed: {detail}"
