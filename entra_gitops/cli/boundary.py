"""The one error boundary: every user-facing error becomes one line and an exit code, and Ctrl+C is not a failure."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import git
from azure.core.exceptions import AzureError

from entra_gitops.graph.auth import sign_in_failure
from entra_gitops.model.errors import EntraGitopsError, ExitCode, describe_git_error, describe_os_error
from entra_gitops.model.textsafe import printable
from entra_gitops.state import signals
from entra_gitops.workflow.github import error_annotation, running_in_actions

# Libraries that log each failure they raise (azure-identity at WARNING, with tracebacks at DEBUG): the boundary
# says it once instead, unless --debug.
QUIET_LOGGERS = ("azure", "msal")
INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl+C
INTERRUPT_NOTE = "entra_gitops.interrupt_note"  # ctx.meta: what an interrupt means for the command that ran
STOPPED = (
    "the repository is as before the run or holds the new backup; an apply continues where it stopped when run again."
)


@contextmanager
def quiet_libraries(debug: bool) -> Iterator[None]:
    """Hold the libraries' loggers at ERROR for the duration (not under --debug), then restore them."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    if not debug:
        for logger in loggers:
            logger.setLevel(max(logger.level, logging.ERROR))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextmanager
def on_interrupt(note: Callable[[], str]) -> Iterator[None]:
    """Say `note()` instead of the general line when Ctrl+C or SIGTERM stops the block (Ctrl+C at a prompt too)."""
    try:
        yield
    except (KeyboardInterrupt, click.exceptions.Abort) as stop:
        click.get_current_context().meta[INTERRUPT_NOTE] = note()
        if isinstance(stop, click.exceptions.Abort):
            click.echo(err=True)  # the prompt's line ends here
            raise KeyboardInterrupt from None  # click's prompt turns Ctrl+C into Abort: it is an interrupt still
        raise


class Commands(click.Group):
    """The command group and the one error boundary: a user-facing error is one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        # Parsed before the group's callback runs, so the loggers are quiet for every command.
        debug = bool(ctx.params.get("debug"))
        with quiet_libraries(debug):
            try:
                return super().invoke(ctx)
            except KeyboardInterrupt as stop:
                # click would make this Abort (exit 1, "Aborted!"): an interrupted run is not a failed one.
                terminated = signals.terminated(stop)
                note = ctx.meta.get(INTERRUPT_NOTE, STOPPED)
                click.echo(f"{'Terminated' if terminated else 'Interrupted'}: {note}", err=True)
                ctx.exit(signals.EXIT_TERMINATED if terminated else INTERRUPTED)
            except EntraGitopsError as err:
                if debug:
                    raise
                self.fail(ctx, str(err), err.exit_code)
            except git.GitCommandError as err:
                if debug:
                    raise
                self.fail(ctx, describe_git_error(err.command, err.status, err.stderr))
            except (git.InvalidGitRepositoryError, git.NoSuchPathError) as err:
                if debug:
                    raise
                missing = isinstance(err, git.NoSuchPathError)
                self.fail(ctx, f"{err} {'does not exist' if missing else 'is not a git repository'}")
            except OSError as err:
                # A closed pipe (`| head`) is click's to handle quietly.
                if debug or err.errno == errno.EPIPE:
                    raise
                self.fail(ctx, describe_os_error(err))
            except AzureError as err:
                # Only reached by a credential used outside SignIn; its message still never carries the secret.
                if debug:
                    raise
                self.fail(ctx, str(sign_in_failure(None, type(err).__name__, err)))

    @staticmethod
    def fail(ctx: click.Context, message: str, code: int = ExitCode.ERROR) -> None:
        """Say one error line (and its Actions annotation), and exit with `code`."""
        # Messages name objects, and names come from the tenant: nothing in them may act on a terminal.
        click.echo(f"error: {printable(message)}", err=True)
        if running_in_actions():
            click.echo(error_annotation(printable(message)))
        ctx.exit(code)
