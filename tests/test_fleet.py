"""`entra-gitops init --tenants tenants.yaml`: a fleet repository whose matrix workflow snapshots many tenants,
each into a state repository of its own, and gathers their drift into one summary. tenants.yaml is checked as
strictly as entra-gitops.yaml; the matrix workflow is linted (test_init.py) and its shell steps run for real
against two emulated tenants, each job in its own tenant's repository."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import git
import pytest
import yaml
from conftest import demo_seed, run_main, served
from test_init import (
    FLEET_TENANTS,
    OTHER_TENANT,
    SNAPSHOT_STEPS,
    TENANT,
    Runner,
    fleet,
    git_in,
    init,
    no_package_index,  # noqa: F401 (autouse here too: init asks no real index)
)

from entra_gitops.model.settings import ConfigFileError
from entra_gitops.workflow.fleet import (
    FLEET_TOKEN_SECRET,
    FLEET_WORKFLOW,
    TENANTS_FILE,
    parse_tenants,
)
from entra_gitops.workflow.scaffold import SNAPSHOT_WORKFLOW, TEMPLATES

NAMES = ("contoso", "fabrikam")


# -- tenants.yaml -------------------------------------------------------------------------------


def test_a_fleet_reads_as_its_tenants() -> None:
    fleet_of = parse_tenants(FLEET_TENANTS.encode(), TENANTS_FILE, default_branch="trunk")
    assert fleet_of.max_parallel == 4
    assert [t.name for t in fleet_of.tenants] == list(NAMES)
    contoso, fabrikam = fleet_of.tenants
    assert (contoso.tenant_id, contoso.repository, contoso.directory) == (
        TENANT,
        "owner/contoso-state",
        "tenants/contoso",
    )
    assert contoso.apply_client_id and fabrikam.apply_client_id is None
    assert fabrikam.default_branch == "trunk"  # init's --default-branch unless the tenant says otherwise


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (("maxParallel: 4", "maxParallel: 0"), "tenants.yaml:2:14: maxParallel", "from 1 to 256, not 0"),
        (("name: fabrikam", "name: Fabrikam"), "tenants.yaml:9:11: tenants[1].name", "lower-case letters"),
        (("  - name: fabrikam", "  - name: contoso"), "tenants.yaml:9:11: tenants[1].name", "already tenants[0]'s"),
        (
            (f"tenantId: {OTHER_TENANT}", f"tenantId: {TENANT.upper()}"),
            "tenants.yaml:10:15: tenants[1].tenantId",
            "already",
        ),
        (("repository: owner/fabrikam-state", "repository: owner/contoso-state"), "tenants[1].repository", "already"),
        (
            ("    applyClientId:", "    colour: blue\n    applyClientId:"),
            "tenants.yaml:7:5: tenants[0].colour",
            "unknown",
        ),
        (
            ("tenantId: " + TENANT, "tenantId: contoso.onmicrosoft.com"),
            "tenants.yaml:5:15: tenants[0].tenantId",
            "GUID",
        ),
        (("    clientId: 2", "    clientid: 2"), "tenants[1].clientid", "did you mean 'clientId'?"),
        (("repository: owner/fabrikam-state", "repository: fabrikam"), "tenants[1].repository", "OWNER/REPO"),
        (("tenants:", "tenant:"), "tenants.yaml:3:1: tenant", "unknown setting"),
    ],
)
def test_tenants_yaml_is_checked_strictly(tmp_path: Path, change: tuple[str, str], where: str, message: str) -> None:
    text = FLEET_TENANTS.replace(*change)
    assert text != FLEET_TENANTS
    with pytest.raises(ConfigFileError) as raised:
        parse_tenants(text.encode(), TENANTS_FILE)
    shown = "\n".join(str(p) for p in raised.value.problems)
    assert where in shown and message in shown, shown

    # The same through init: nothing is written; the first mistake names its file and line, then how many more.
    (tmp_path / "tenants.yaml").write_text(text)
    result = init(str(tmp_path / "fleet"), "--tenants", str(tmp_path / "tenants.yaml"))
    assert result.exit_code == 1, result.output
    first = raised.value.problems[0]
    assert f"error: {tmp_path / 'tenants.yaml'}:{first.line}:{first.column}: {first.setting}" in result.output
    assert not (tmp_path / "fleet").exists()


def test_a_tenants_yaml_that_is_no_mapping_or_has_duplicate_keys_is_refused(tmp_path: Path) -> None:
    for text, message in (("- a\n", "must be"), ("tenants: []\ntenants: []\n", "duplicate")):
        (tmp_path / "tenants.yaml").write_text(text)
        result = init(str(tmp_path / "fleet"), "--tenants", str(tmp_path / "tenants.yaml"))
        assert result.exit_code == 1 and "tenants.yaml:" in result.output and message in result.output, result.output


def test_the_matrix_job_checks_the_file_and_prints_the_matrix(tmp_path: Path) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text(FLEET_TENANTS)
    outputs = tmp_path / "output"
    outputs.write_text("")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GITHUB_OUTPUT", str(outputs))
        made = run_main("fleet-matrix", path, "--default-branch", "main")
    assert made.returncode == 0
    lines = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert lines["max-parallel"] == "2"  # maxParallel 4, but only two tenants
    matrix = json.loads(lines["tenants"])
    assert [m["name"] for m in matrix] == list(NAMES)
    assert set(matrix[0]) == {"name", "tenantId", "clientId", "repository", "defaultBranch", "directory"}
    assert "2 tenant(s)" in made.stdout

    path.write_text(FLEET_TENANTS.replace("maxParallel: 4", "maxParallel: many"))
    refused = run_main("fleet-matrix", path)
    assert refused.returncode == 1
    out, err = refused.stdout, refused.stderr
    assert f"::error title=entra-gitops,file={path},line=2,col=14::" in out  # an annotation on the line
    assert "maxParallel: must be a whole number" in err


# -- init --tenants -----------------------------------------------------------------------------


def test_init_scaffolds_a_fleet_and_a_repository_per_tenant(tmp_path: Path) -> None:
    source = tmp_path / "elsewhere.yaml"
    source.write_text(FLEET_TENANTS)
    result = init(str(tmp_path / "fleet"), "--tenants", str(source), "--install", "entra-gitops==9.9.9")
    assert result.exit_code == 0, result.output
    root = tmp_path / "fleet"
    assert (root / TENANTS_FILE).read_text() == FLEET_TENANTS  # copied byte for byte
    assert git.Repo(root).active_branch.name == "main"
    assert "/tenants/" in (root / ".gitignore").read_text()
    assert "entra-gitops==9.9.9" in (root / ".github/entra-gitops-requirements.txt").read_text()
    assert FLEET_TOKEN_SECRET in (root / "README.md").read_text()
    for name, tenant in zip(NAMES, (TENANT, OTHER_TENANT), strict=True):
        state = root / "tenants" / name
        assert git.Repo(state).working_tree_dir == str(state)  # a repository of its own
        assert (state / "entra-gitops.yaml").read_text().count(tenant) == 1
        assert not (state / SNAPSHOT_WORKFLOW).exists()  # the fleet takes its snapshots
        assert all((state / p).is_file() for p in TEMPLATES if p != SNAPSHOT_WORKFLOW)
        assert "entra-gitops==9.9.9" in (state / ".github/entra-gitops-requirements.txt").read_text()
        assert "This tenant is one of a fleet" in (state / "README.md").read_text()
        assert f"wrote tenants/{name}/entra-gitops.yaml" in result.output
    assert "gh secret set ENTRA_GITOPS_FLEET_TOKEN" in result.output

    again = init(str(root), "--tenants", str(root / TENANTS_FILE))  # its own tenants.yaml: not copied over itself
    assert again.exit_code == 1 and "--force" in again.output
    forced = init(str(root), "--tenants", str(root / TENANTS_FILE), "--force")
    assert forced.exit_code == 0, forced.output
    assert "wrote tenants.yaml" not in forced.output and "overwrote tenants/fabrikam/README.md" in forced.output


def test_init_refuses_a_tenant_id_beside_tenants_and_needs_one_of_them(tmp_path: Path) -> None:
    (tmp_path / "tenants.yaml").write_text(FLEET_TENANTS)
    both = init(str(tmp_path / "f"), "--tenants", str(tmp_path / "tenants.yaml"), "--tenant-id", TENANT)
    assert both.exit_code == 1 and "--tenants takes every id from the file" in both.output
    neither = init(str(tmp_path / "f"))
    assert neither.exit_code == 2 and "--tenant-id" in neither.output and "--tenants" in neither.output
    assert not (tmp_path / "f").exists()


def test_a_conflict_in_any_tenant_folder_writes_nothing_anywhere(tmp_path: Path) -> None:
    (tmp_path / "tenants.yaml").write_text(FLEET_TENANTS)
    (tmp_path / "fleet" / "tenants" / "fabrikam").mkdir(parents=True)
    (tmp_path / "fleet" / "tenants" / "fabrikam" / "README.md").write_text("mine\n")
    result = init(str(tmp_path / "fleet"), "--tenants", str(tmp_path / "tenants.yaml"))
    assert result.exit_code == 1 and "README.md" in result.output
    assert sorted(p.name for p in (tmp_path / "fleet").rglob("*")) == ["README.md", "fabrikam", "tenants"]


def test_the_matrix_gives_each_tenant_its_own_job(tmp_path: Path) -> None:
    root = fleet(tmp_path / "fleet")
    jobs = yaml.safe_load((root / FLEET_WORKFLOW).read_text())["jobs"]
    assert list(jobs) == ["tenants", "snapshot", "summary"]
    snapshot = jobs["snapshot"]
    assert snapshot["strategy"] == {
        "fail-fast": False,
        "max-parallel": "${{ fromJSON(needs.tenants.outputs.max-parallel) }}",
        "matrix": {"tenant": "${{ fromJSON(needs.tenants.outputs.tenants) }}"},
    }
    assert snapshot["concurrency"]["group"] == "entra-gitops-fleet-${{ matrix.tenant.name }}"
    assert snapshot["defaults"]["run"]["working-directory"] == "${{ matrix.tenant.directory }}"
    assert snapshot["env"]["AZURE_TENANT_ID"] == "${{ matrix.tenant.tenantId }}"
    assert snapshot["env"]["AZURE_CLIENT_ID"] == "${{ matrix.tenant.clientId }}"
    checkout = next(s for s in snapshot["steps"] if s.get("with", {}).get("repository"))
    assert checkout["with"]["path"] == "${{ matrix.tenant.directory }}"
    assert checkout["with"]["token"] == f"${{{{ secrets.{FLEET_TOKEN_SECRET} }}}}"
    assert jobs["summary"]["needs"] == ["tenants", "snapshot"] and "!cancelled()" in jobs["summary"]["if"]
    download = jobs["summary"]["steps"][0]["with"]
    assert download == {"pattern": "entra-gitops-fleet-*", "merge-multiple": True, "path": "${{ runner.temp }}/fleet"}


# -- the matrix workflow's shell steps, per tenant, against two emulated tenants ----------------


class Fleet:
    """A fleet made by init: the fleet repository and each tenant's, pushed to bare origins, and a runner."""

    def __init__(self, tmp_path: Path, graph_urls: dict[str, str]) -> None:
        root = fleet(tmp_path / "seed")
        self.origins: dict[str, Path] = {}
        for name in NAMES:
            self.origins[name] = self.push(root / "tenants" / name, tmp_path / "github" / f"{name}.git")
        self.origin = self.push(root, tmp_path / "github" / "fleet.git")
        self.workflow = yaml.safe_load((root / FLEET_WORKFLOW).read_text())
        self.runner = Runner(tmp_path / "runner", self.origin, graph_urls[NAMES[0]])
        self.graph_urls = graph_urls
        self.matrix: list[dict[str, str]] = []

    @staticmethod
    def push(work: Path, origin: Path) -> Path:
        git.Repo.init(origin, bare=True, initial_branch="main")
        git_in(work, "add", "-A")
        git_in(work, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "start")
        git_in(work, "push", "-q", str(origin), "main")
        return origin

    def tenants_job(self) -> list[dict[str, str]]:
        _, out = self.runner.run(self.workflow, "tenants")
        self.matrix = json.loads(out["matrix"]["tenants"])
        assert out["matrix"]["max-parallel"] == "2"
        return self.matrix

    def tenant_job(self, entry: dict[str, str], *, graph: str | None = None, steps: Any = None) -> Path:
        """The snapshot job of one matrix entry; the tenant's repository checked out into its directory as the
        job's second checkout does. Returns the runner's temp folder (the summary it uploads is in fleet/)."""

        def checkout(work: Path, _temp: Path) -> None:
            subprocess.run(
                ["git", "clone", "-q", str(self.origins[entry["name"]]), str(work / entry["directory"])], check=True
            )

        values = {f"matrix.tenant.{key}": value for key, value in entry.items()}
        env = {"ENTRA_GITOPS_GRAPH_URL": graph or self.graph_urls[entry["name"]]}
        self.runner.run(self.workflow, "snapshot", values=values, prepare=checkout, env=env, steps=steps)
        return self.runner.root / f"temp{self.runner.runs}"

    def summary_job(self, uploads: list[Path]) -> str:
        def download(_work: Path, temp: Path) -> None:  # merge-multiple: every tenant's files in one folder
            (temp / "fleet").mkdir()
            for upload in uploads:
                for file in (upload / "fleet").iterdir():
                    shutil.copy(file, temp / "fleet" / file.name)

        values = {"needs.tenants.outputs.tenants": json.dumps(self.matrix)}
        self.runner.run(self.workflow, "summary", values=values, prepare=download)
        return (self.runner.root / f"temp{self.runner.runs}" / "summary.md").read_text()

    def branches(self, name: str) -> list[str]:
        return git_in(self.origins[name], "for-each-ref", "--format=%(refname:short)", "refs/heads/").splitlines()

    def tags(self, name: str) -> list[str]:
        return git_in(self.origins[name], "for-each-ref", "--format=%(refname:short)", "refs/tags/").splitlines()


def rows(summary: str) -> dict[str, list[str]]:
    """The fleet summary's table, by tenant name: its cells."""
    found = {}
    for line in summary.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        for name in NAMES:
            if cells[0] == name or cells[0].startswith(f"[{name}]"):
                found[name] = cells[1:]
    return found


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("jq") is None, reason="the workflows use jq, which GitHub's runners have")
def test_the_fleet_snapshots_each_tenant_into_its_own_repository_and_sums_up(tmp_path: Path) -> None:
    """Two emulated tenants (two emulators, two tenant ids): each matrix job signs in to its own tenant, pushes
    the backup and the drift branch to its own repository and writes its row; the summary job gathers them, and a
    job run against the wrong tenant fails alone, shown as failed."""
    other = demo_seed()
    other["organization"][0].update(id=OTHER_TENANT, displayName="Fabrikam")
    with served() as (contoso_url, _), served(other) as (fabrikam_url, _):
        graph = dict(zip(NAMES, (contoso_url, fabrikam_url), strict=True))
        fleet_repo = Fleet(tmp_path, graph)
        matrix = fleet_repo.tenants_job()
        assert [(m["name"], m["tenantId"], m["directory"]) for m in matrix] == [
            ("contoso", TENANT, "tenants/contoso"),
            ("fabrikam", OTHER_TENANT, "tenants/fabrikam"),
        ]

        # Day 1: every tenant is new against its empty baseline: drift in both, each in its own repository.
        uploads = [fleet_repo.tenant_job(entry) for entry in matrix]
        for name in NAMES:
            assert "entra-gitops/drift" in fleet_repo.branches(name)
            assert len([t for t in fleet_repo.tags(name) if t.startswith("backup/")]) == 1
        created = [
            c for c in fleet_repo.runner.gh_calls() if c.startswith("pr create --base main --head entra-gitops/drift")
        ]
        assert len(created) == 2
        fabrikam_files = git_in(
            fleet_repo.origins["fabrikam"], "show", "entra-gitops/drift:tenant-state/organization.yaml"
        )
        assert "Fabrikam" in fabrikam_files and OTHER_TENANT in fabrikam_files
        summary = fleet_repo.summary_job(uploads)
        assert "2 tenant(s): 2 with drift, 0 failed, 0 unchanged." in summary
        table = rows(summary)
        assert set(table) == set(NAMES)
        for name in NAMES:
            assert table[name][0].startswith("[drift](") and int(table[name][1]) > 0  # created: everything
            assert table[name][-1].startswith("`backup/")

        # Day 2: contoso's drift was merged (no drift left); fabrikam's job runs against the wrong tenant and
        # fails alone, its summary saying so; a tenant whose job wrote nothing is failed too.
        git_in(fleet_repo.origins["contoso"], "update-ref", "refs/heads/main", "refs/heads/entra-gitops/drift")
        contoso = fleet_repo.tenant_job(matrix[0])
        with pytest.raises(AssertionError, match="Take the snapshot") as refused:
            fleet_repo.tenant_job(matrix[1], graph=contoso_url, steps=SNAPSHOT_STEPS[:2])
        assert OTHER_TENANT in str(refused.value) and TENANT in str(refused.value)  # the tenant guard, naming both
        values = {f"matrix.tenant.{k}": v for k, v in matrix[1].items()} | {"job.status": "failure"}
        fleet_repo.runner.run(
            fleet_repo.workflow,
            "snapshot",
            values=values,
            steps=("Summarise the tenant for the fleet",),
            prepare=lambda work, _t: subprocess.run(
                ["git", "clone", "-q", str(fleet_repo.origins["fabrikam"]), str(work / "tenants/fabrikam")], check=True
            ),
        )
        failed = fleet_repo.runner.root / f"temp{fleet_repo.runner.runs}"
        summary = fleet_repo.summary_job([contoso, failed])
        assert "2 tenant(s): 0 with drift, 1 failed, 1 unchanged." in summary
        table = rows(summary)
        assert table["contoso"][:7] == ["none", "0", "0", "0", "0", "0", "0"]
        assert table["fabrikam"][0].startswith("**failed**")
        assert len([t for t in fleet_repo.tags("fabrikam") if t.startswith("backup/")]) == 1  # nothing pushed

        nothing = fleet_repo.summary_job([contoso])
        assert rows(nothing)["fabrikam"][0].startswith("**failed**: its job wrote no summary")
