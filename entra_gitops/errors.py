"""Errors a user can cause or meet, each with the exit code the CLI maps it to."""

from __future__ import annotations

import enum


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
