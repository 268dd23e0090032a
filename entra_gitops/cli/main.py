"""The command line's entry point: the `cli` group, each command group's module registered on it, and `main`."""

from __future__ import annotations

import importlib
import sys

import click

from entra_gitops import __version__
from entra_gitops.cli.boundary import INTERRUPTED, Commands
from entra_gitops.cli.output import colour_refused
from entra_gitops.model.errors import ExitCode
from entra_gitops.state import signals

# Each command's module, imported only when that command runs or a help page lists it: a command starts
# without importing every other command's dependencies.
COMMANDS = {
    "snapshot": "entra_gitops.cli.snapshot:snapshot_command",
    "backups": "entra_gitops.cli.snapshot:backups_command",
    "unlock": "entra_gitops.cli.snapshot:unlock_command",
    "verify": "entra_gitops.cli.verify:verify_command",
    "diff": "entra_gitops.cli.report:diff_command",
    "validate": "entra_gitops.cli.validate:validate_command",
    "fmt": "entra_gitops.cli.fmt:fmt_command",
    "plan": "entra_gitops.cli.recovery:plan_command",
    "show": "entra_gitops.cli.show:show_command",
    "apply": "entra_gitops.cli.recovery:apply_command",
    "history": "entra_gitops.cli.history:history_command",
    "demo": "entra_gitops.cli.demo:demo_command",
    "emulator": "entra_gitops.cli.emulator:emulator_command",
    "init": "entra_gitops.cli.workflow:init_command",
    "drift": "entra_gitops.cli.workflow:drift_command",
    "permissions": "entra_gitops.cli.workflow:permissions_command",
    "fleet-matrix": "entra_gitops.cli.fleet:fleet_matrix_command",
}


class LazyCommands(Commands):
    """The command group, loading a command's module the first time it is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, _, attribute = COMMANDS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            assert command.name == cmd_name, f"{COMMANDS[cmd_name]} is named {command.name}"
            self.add_command(command)
        return self.commands.get(cmd_name)


@click.group(cls=LazyCommands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
