"""The command line's entry point: the `cli` group, each command group's module registered on it, and `main`."""

from __future__ import annotations

import sys

import click

from entra_gitops import __version__
from entra_gitops.cli.boundary import INTERRUPTED, Commands
from entra_gitops.cli.demo import demo_command
from entra_gitops.cli.emulator import emulator_command
from entra_gitops.cli.fleet import fleet_matrix_command
from entra_gitops.cli.fmt import fmt_command
from entra_gitops.cli.history import history_command
from entra_gitops.cli.output import colour_refused
from entra_gitops.cli.recovery import apply_command, plan_command
from entra_gitops.cli.report import diff_command, validate_command
from entra_gitops.cli.show import show_command
from entra_gitops.cli.snapshot import backups_command, snapshot_command, unlock_command
from entra_gitops.cli.workflow import drift_command, init_command, permissions_command
from entra_gitops.model.errors import ExitCode
from entra_gitops.state import signals


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="entra-gitops")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option(
    "--no-color", "--no-colour", "no_color", is_flag=True, help="No colour anywhere (so does NO_COLOR set non-empty)."
)
@click.pass_context
def cli(ctx: click.Context, debug: bool, no_color: bool) -> None:
    """Keep a Microsoft Entra tenant's configuration as reviewed, versioned files.

    \b
    Start here:
      entra-gitops demo                      everything, against a built-in Graph emulator
      entra-gitops snapshot --repo DIR       back up a tenant into a git repository
      entra-gitops diff --repo DIR           what changed since the latest backup
      entra-gitops emulator --seed demo      a local Graph to point any client at
    """
    ctx.obj = {"debug": debug}
    if colour_refused(no_color):
        ctx.color = False  # every command's context inherits it: click.echo then strips all styles


for command in (
    snapshot_command,
    backups_command,
    unlock_command,
    diff_command,
    validate_command,
    fmt_command,
    plan_command,
    show_command,
    apply_command,
    history_command,
    demo_command,
    emulator_command,
    init_command,
    drift_command,
    permissions_command,
    fleet_matrix_command,
):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. Usage errors exit 1, because 2 means "differences present" for every command."""
    signals.install()
    try:
        code = cli.main(args=argv, prog_name="entra-gitops", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        code = ExitCode.ERROR
    except click.ClickException as err:
        err.show()
        code = ExitCode.ERROR
    except click.exceptions.Exit as done:
        code = done.exit_code
    except KeyboardInterrupt as stop:
        click.echo("Interrupted.", err=True)
        code = signals.EXIT_TERMINATED if signals.terminated(stop) else INTERRUPTED
    sys.exit(code or ExitCode.OK)
