"""The plan file: written whole or not at all, and read back only when it is ours, well-formed and unchanged."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jsonschema

from entra_gitops.model.registry import schemas_dir
from entra_gitops.recovery.errors import PlanFileError
from entra_gitops.recovery.plan import PLAN_FORMAT, Plan, compute_checksum, plan_from_document, plan_json
from entra_gitops.state.files import write_atomically


def write_plan_file(path: Path, plan: Plan) -> None:
    """Save `plan` to `path` atomically: a crash never leaves half a plan behind."""
    write_atomically(path, plan_json(plan).encode())


@cache
def _plan_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((schemas_dir() / "plan" / "plan.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def read_plan_file(path: Path) -> Plan:
    """The plan in `path`, refused unless it is ours, well-formed, and unchanged since it was made."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise PlanFileError(f"{path}: cannot read the plan file: {err.strerror}") from None
    except ValueError as err:
        line, column = getattr(err, "lineno", 1), getattr(err, "colno", 1)
        raise PlanFileError(f"{path}:{line}:{column}: not a plan file: {err}") from None
    if not isinstance(document, dict) or document.get("format") != PLAN_FORMAT:
        found = document.get("format") if isinstance(document, dict) else None
        raise PlanFileError(
            f"{path}: plan format {found!r} is not {PLAN_FORMAT!r}", hint="make a new plan with this version"
        )
    error = jsonschema.exceptions.best_match(_plan_validator().iter_errors(document))
    if error is not None:
        where = "/".join(map(str, error.absolute_path)) or "(the document)"
        raise PlanFileError(f"{path}: not a well-formed plan at {where}: {error.message}")
    if document.get("checksum") != compute_checksum(document):
        raise PlanFileError(
            f"{path}: the plan was changed after it was made (its checksum does not match)",
            hint="a plan is applied exactly as reviewed: make and review a new plan",
        )
    try:
        return plan_from_document(document)
    except (KeyError, TypeError, ValueError) as err:
        raise PlanFileError(f"{path}: the plan file is incomplete ({err})") from None
