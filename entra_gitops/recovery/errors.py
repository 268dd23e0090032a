"""The errors recovery raises: a plan file that cannot be trusted, a stale plan, a plan refused as unsafe."""

from __future__ import annotations

from entra_gitops.model.errors import EntraGitopsError, ExitCode
from entra_gitops.recovery.plan import Refusal


class PlanFileError(EntraGitopsError):
    """A plan file that cannot be trusted: unreadable, another format, changed, or holding steps no recovery makes."""


class StalePlanError(EntraGitopsError):
    """Objects moved since the plan was made; applying would overwrite newer changes."""

    exit_code = ExitCode.STALE


class UnsafePlanError(EntraGitopsError):
    """A plan that a safety guard refuses: a threshold, a protected object, a missing type, a lockout."""

    exit_code = ExitCode.UNSAFE


def unsafe(refusals: tuple[Refusal, ...]) -> UnsafePlanError:
    """The one error every guard's refusal becomes: exit 3, the first reason, and the flags that override."""
    flags = sorted({r.override for r in refusals})
    first = refusals[0]
    more = f" (and {len(refusals) - 1} more, listed above)" if len(refusals) > 1 else ""
    return UnsafePlanError(
        f"refused as unsafe: {first.message}{more}", hint=f"review the plan; to take it anyway: {', '.join(flags)}"
    )
