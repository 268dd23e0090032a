"""The fleet workflow's first job: `entra-gitops fleet-matrix TENANTS.yaml`, the checked tenants as a matrix."""

from __future__ import annotations

import os
from pathlib import Path

import click

from entra_gitops.model.errors import ExitCode
from entra_gitops.model.settings import ConfigFileError
from entra_gitops.workflow.fleet import load_tenants, matrix_outputs
from entra_gitops.workflow.github import error_annotation


@click.command("fleet-matrix")
@click.argument("tenants_file", metavar="TENANTS.yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--default-branch", default="main", show_default=True, help="The tenants' repositories' branch.")
def fleet_matrix_command(tenants_file: Path, default_branch: str) -> None:
    """Check a fleet's tenants.yaml and print its GitHub Actions matrix as step outputs.

    The outputs (`tenants`, one line of JSON, and `max-parallel`) are appended to $GITHUB_OUTPUT when the
    step has one, else printed. Each mistake in the file is an `error:` line with file:line:column and a
    GitHub error annotation on that line.

    \b
    Examples:
      entra-gitops fleet-matrix tenants.yaml
      entra-gitops fleet-matrix tenants.yaml --default-branch trunk
    Exit 0 the matrix was written, 1 the file has mistakes.
    """
    try:
        fleet = load_tenants(tenants_file, default_branch)
    except ConfigFileError as error:
        for problem in error.problems:
            click.echo(f"error: {problem}", err=True)
            click.echo(error_annotation(str(problem), file=problem.path, line=problem.line, column=problem.column))
        raise click.exceptions.Exit(ExitCode.ERROR) from None
    outputs = os.environ.get("GITHUB_OUTPUT")  # a step's outputs file; stdout stays the log (and its annotations)
    if outputs:
        with open(outputs, "a", encoding="utf-8") as file:
            file.write(matrix_outputs(fleet))
    else:
        click.echo(matrix_outputs(fleet), nl=False)
    names = ", ".join(t.name for t in fleet.tenants)
    click.echo(f"{len(fleet.tenants)} tenant(s), at most {fleet.max_parallel} at once: {names}")
