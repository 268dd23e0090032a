"""The show command: a saved plan file, checked as apply checks it first, printed as `plan` printed it."""

from __future__ import annotations

from pathlib import Path

import click

from entra_gitops.cli.options import format_option
from entra_gitops.recovery.planfile import read_plan_file
from entra_gitops.recovery.render import PLAN_FORMATS, render_plan
from entra_gitops.recovery.safety import recorded_assessment


@click.command("show")
@click.argument("plan_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@format_option(
    *PLAN_FORMATS,
    help="text for a terminal, markdown for a pull request or job summary, json: the plan document itself.",
)
def show_command(plan_file: Path, output_format: str) -> None:
    """Show a saved plan file exactly as `entra-gitops plan` printed it, after checking it.

    The file is checked as apply checks it before anything else: well-formed (the plan schema),
    this version's plan format, complete, and unchanged since it was made (its checksum). A file
    that fails is refused with the reason, exit 1. show reads no Graph and takes no lock, so the
    warnings and refusals it shows are the guards' findings when the plan was made, as the file
    records them; apply checks the tenant and every step and runs every guard again.

    --format json prints the plan document (schemas/plan/plan.schema.json), as `plan --format json`
    does: what a pipeline reads with jq.

    \b
    Examples:
      entra-gitops show plan.json
      entra-gitops show plan.json --format markdown >> "$GITHUB_STEP_SUMMARY"
      entra-gitops show plan.json --format json | jq -r .checksum
    Exit 0 shown, 1 not a plan file, changed since it was made, or not this version's format.
    """
    plan = read_plan_file(plan_file)
    click.echo(render_plan(plan, recorded_assessment(plan), output_format), nl=False)
