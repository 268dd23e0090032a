"""The package layout is the data flow: no module imports from a stage after its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "entra_gitops"
# DESIGN's diagram read top-down: Graph -> normalize/state -> store/diff -> plan -> apply, then the edges that run it.
STAGES = ("model", "graph", "state", "report", "recovery", "workflow", "cli")
# The emulator is a Graph of its own: it shares only the model with the product.
EMULATOR_MAY_IMPORT = {"model", "emulator"}


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "entra_gitops" else None


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "entra_gitops":
                found += [(node.lineno, f"entra_gitops.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return [(line, name) for line, name in found if name.startswith("entra_gitops.")]


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_imports_only_from_its_own_stage_or_earlier(path: Path) -> None:
    own = path.relative_to(PACKAGE).parts[0]
    for line, name in _imports(path):
        target = _stage(name)
        if target in (None, "__version__"):
            continue
        where = f"{path.relative_to(PACKAGE)}:{line} imports {name}"
        if own == "emulator":
            assert target in EMULATOR_MAY_IMPORT, where
        else:
            assert target != "emulator" or own == "cli", where
            assert target == "emulator" or STAGES.index(target) <= STAGES.index(own), where


def test_every_package_says_what_it_may_import() -> None:
    for folder in [PACKAGE / stage for stage in STAGES] + [PACKAGE / "emulator"]:
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text(encoding="utf-8")))
        assert doc and "import" in doc, f"{folder.name}/__init__.py needs a docstring saying what it may import"


def test_every_module_has_a_docstring() -> None:
    for path in PACKAGE.rglob("*.py"):
        assert ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))), f"{path} has no docstring"


def test_ci_runs_the_readmes_test_command_where_no_check_may_skip() -> None:
    root = PACKAGE.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    test_command = readme.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()[1]
    assert test_command == "pip install '.[test]' && pytest"
    script = [line for line in (root / ".ci" / "run").read_text(encoding="utf-8").splitlines() if line.strip()]
    assert script[-1] == test_command  # exactly the README's command, and the last thing CI does
    assert "export CI=1" in script  # skip_or_fail (conftest) fails instead of skipping
    metadata = 'ENTRA_GITOPS_GRAPH_METADATA="$(pwd)/../shared/graph/graph-v1.0-metadata.xml"'
    assert metadata in script and "export ENTRA_GITOPS_GRAPH_METADATA" in script
