"""The guards as a user meets them: the real CLI (click's runner, in process) against an emulator served over
loopback HTTP, on real git repositories. Each test is one way a recovery could become the incident; each asserts
the refusal (exit code, object, flag) and that nothing in the tenant or the repository was lost.
"""

from __future__ import annotations

import contextlib
import copy
import html
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from conftest import PASSWORD_PROFILE, demo_seed, demo_tenant, git

from entra_gitops.cli.main import cli
from entra_gitops.emulator import Emulator
from entra_gitops.emulator.seed import SeedLoader
from entra_gitops.emulator.server import serving
from entra_gitops.model.registry import default_registry
from entra_gitops.recovery.plan import compute_checksum, fingerprint
from entra_gitops.state.sources import live_state

SEED = demo_seed()
TENANT = SEED["organization"][0]["id"]
USERS = {u["displayName"]: u for u in SEED["users"]}
KARI, LARS, SOFIA, PER = (USERS[n]["id"] for n in ("Kari Nordmann", "Lars Haugen", "Sofia Andersson", "Per Aas"))
BG01, BG02 = USERS["Break Glass Admin 01"]["id"], USERS["Break Glass Admin 02"]["id"]
BG01_UPN = USERS["Break Glass Admin 01"]["userPrincipalName"]
POLICIES = {p["displayName"]: p["id"] for p in SEED["identity/conditionalAccess/policies"]}
BLOCK = POLICIES["CA004 - Block access outside allowed countries"]
BLOCK_NAME = "CA004 - Block access outside allowed countries"
GROUPS = {g["displayName"]: g["id"] for g in SEED["groups"]}
EXCLUSIONS = GROUPS["SG-CA-Exclusions-BreakGlass"]
ERIK = next(d["id"] for d in SEED["directory/deletedItems"] if d.get("displayName") == "Erik Larsen")
HR_PORTAL = next(sp["id"] for sp in SEED["servicePrincipals"] if sp["displayName"] == "Contoso HR Portal")


def run(*args: Any) -> Result:
    """The real command line, in process."""
    return CliRunner().invoke(cli, [str(a) for a in args])


class Live:
    """Plain HTTP to the emulator: how an administrator (or an attacker) changes and reads the tenant."""

    def __init__(self, url: str, app: Emulator) -> None:
        self.url = url
        self.app = app
        self.http = httpx.Client(base_url=url + "/", timeout=30, headers={"Authorization": "Bearer local"})

    def write(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = self.http.request(method, path, json=body)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else {}

    def get(self, path: str) -> dict[str, Any]:
        response = self.http.get(path)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    def status(self, path: str) -> int:
        return self.http.get(path).status_code

    def users(self) -> int:
        return len(self.app.tenant.objects(self.app.registry.get("user")))

    def members(self, group_id: str) -> set[str]:
        return {m["id"] for m in self.get(f"groups/{group_id}/members?$select=id")["value"]}


@contextlib.contextmanager
def graph(app: Emulator | None = None) -> Iterator[Live]:
    app = app or Emulator(demo_tenant())
    with serving(app) as url:
        live = Live(url, app)
        try:
            yield live
        finally:
            live.http.close()


@pytest.fixture
def live() -> Iterator[Live]:
    with graph() as served:
        yield served


def settings(repo: Path, text: str) -> None:
    """Append settings to the repository's entra-gitops.yaml and commit them."""
    path = repo / "entra-gitops.yaml"
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")
    git(repo, "commit", "-qam", "settings")


def tags(repo: Path) -> list[str]:
    return git(repo, "tag", "--list", "backup/*").split()


def history(repo: Path) -> list[dict[str, Any]]:
    result = run("history", "--repo", repo, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def journal_entries(repo: Path) -> list[str]:
    folder = repo / ".git" / "entra-gitops" / "journal"
    return (
        [line for path in folder.glob("*.jsonl") for line in path.read_text().splitlines()] if folder.exists() else []
    )


def edit_file(repo: Path, relative: str, old: str, new: str) -> Path:
    path = repo / "tenant-state" / relative
    text = path.read_text(encoding="utf-8")
    assert old in text, text
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


# -- 1. mass deletion -----------------------------------------------------------------------------------


def test_a_desired_state_without_users_deletes_nobody(repo: Path, live: Live, tmp_path: Path) -> None:
    git(repo, "rm", "-qr", "tenant-state/users")
    git(repo, "commit", "-qm", "remove every user")
    plan_file = tmp_path / "p.json"

    refused = run(
        "plan", "--repo", repo, "--graph-url", live.url, "--desired", "HEAD", "--type", "user", "-o", plan_file
    )
    assert refused.exit_code == 3, refused.output
    assert "tenant-state/users/" in refused.output and "--allow-empty user" in refused.output
    assert not plan_file.exists()

    allowed = run(
        "plan", "--repo", repo, "--graph-url", live.url, "--desired", "HEAD", "--type", "user",
        "--allow-empty", "user", "-o", plan_file,
    )  # fmt: skip
    assert allowed.exit_code == 3, allowed.output
    assert "31 of the 32 user objects live (97%), more than the 30% threshold" in allowed.output
    assert "apply refuses it unless --force" in allowed.stderr
    applied = run("apply", plan_file, "--repo", repo, "--graph-url", live.url, "--auto-approve")
    assert applied.exit_code == 3, applied.output
    assert live.users() == 32 and journal_entries(repo) == [] and history(repo) == []


def test_a_commit_without_tenant_state_plans_nothing(repo: Path, live: Live, tmp_path: Path) -> None:
    git(repo, "rm", "-qr", "tenant-state")
    git(repo, "commit", "-qm", "remove everything")
    result = run("plan", "--repo", repo, "--graph-url", live.url, "--desired", "HEAD", "-o", tmp_path / "p.json")
    assert result.exit_code == 3, result.output
    assert "--allow-empty appRoleAssignment" in result.output and "--allow-empty user" in result.output
    assert not (tmp_path / "p.json").exists()


def test_objects_without_soft_delete_go_only_with_allow_delete(repo: Path, live: Live, tmp_path: Path) -> None:
    resource = HR_PORTAL
    role = live.get(f"servicePrincipals/{resource}?$select=appRoles")["appRoles"][0]["id"]
    added = live.write(
        "POST",
        f"servicePrincipals/{resource}/appRoleAssignedTo",
        {"principalId": KARI, "resourceId": resource, "appRoleId": role},
    )
    kept = run("plan", "--repo", repo, "--graph-url", live.url, "--type", "appRoleAssignment", "--format", "json")
    assert kept.exit_code == 0, kept.output
    document = json.loads(kept.stdout)
    assert document["writes"] == []
    assert any(s["id"] == added["id"] and "--allow-delete" in s["reason"] for s in document["skipped"])

    plan_file = tmp_path / "p.json"
    planned = run(
        "plan",
        "--repo",
        repo,
        "--graph-url",
        live.url,
        "--type",
        "appRoleAssignment",
        "--allow-delete",
        "-o",
        plan_file,
    )
    assert planned.exit_code == 0, planned.output
    assert "permanent: cannot be undone" in planned.output
    (write,) = json.loads(plan_file.read_text())["writes"]
    assert write["step"] == "delete" and write["irreversible"] is True
    applied = run("apply", plan_file, "--repo", repo, "--graph-url", live.url, "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert live.status(f"servicePrincipals/{resource}/appRoleAssignedTo/{added['id']}") == 404
    (record,) = history(repo)
    assert record["permanentlyDeleted"] == [f"appRoleAssignment/{added['id']}"]


# -- 2. a truncated read ---------------------------------------------------------------------------------


def test_a_read_that_lost_most_users_is_not_a_backup(repo: Path, live: Live) -> None:
    head, before = git(repo, "rev-parse", "HEAD"), tags(repo)
    for user in SEED["users"]:
        if user["id"] not in (BG01, BG02) and not user.get("onPremisesSyncEnabled"):
            live.write("DELETE", f"users/{user['id']}")
            live.write("DELETE", f"directory/deletedItems/{user['id']}")  # gone from every read: a lost page
    suspect = run("snapshot", "--repo", repo, "--graph-url", live.url, "--type", "user")
    assert suspect.exit_code == 1, suspect.output
    assert "suspect read" in suspect.stderr and "user: 3 read" in suspect.stderr and "had 32" in suspect.stderr
    assert "--accept-shrink user" in suspect.stderr
    assert git(repo, "rev-parse", "HEAD") == head and tags(repo) == before
    accepted = run("snapshot", "--repo", repo, "--graph-url", live.url, "--type", "user", "--accept-shrink", "user")
    assert accepted.exit_code == 0, accepted.output
    assert len(tags(repo)) == len(before) + 1


# -- 3. a forged plan ------------------------------------------------------------------------------------


def _plan_kari(repo: Path, live: Live, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    live.write("PATCH", f"users/{KARI}", {"jobTitle": "Buyer"})
    plan_file = tmp_path / "plan.json"
    result = run("plan", "--repo", repo, "--graph-url", live.url, "--id", KARI, "--type", "user", "-o", plan_file)
    assert result.exit_code == 0, result.output
    return plan_file, json.loads(plan_file.read_text())


def _forge(plan_file: Path, document: dict[str, Any]) -> None:
    document["checksum"] = compute_checksum(document)  # anyone can recompute a plain digest
    plan_file.write_text(json.dumps(document))


def _live_fingerprint(live: Live, object_id: str) -> str:
    import asyncio

    from entra_gitops.graph.client import connect

    async def read() -> str:
        async with connect(live.url) as client:
            state = await live_state(client, default_registry(), (default_registry().get("user"),))
        return fingerprint(state.get("user", object_id))

    return asyncio.run(read())


def test_a_rewritten_request_is_refused_and_nothing_is_written(repo: Path, live: Live, tmp_path: Path) -> None:
    plan_file, document = _plan_kari(repo, live, tmp_path)
    (write,) = document["writes"]
    write["path"], write["body"] = f"users/{LARS}", {"accountEnabled": False}  # the preview still says Kari
    _forge(plan_file, document)
    result = run("apply", plan_file, "--repo", repo, "--graph-url", live.url, "--auto-approve")
    assert result.exit_code == 1, result.output
    assert "step 1 (update user" in result.stderr and "is not what the step makes" in result.stderr
    assert live.get(f"users/{LARS}?$select=accountEnabled")["accountEnabled"] is True
    assert live.get(f"users/{KARI}?$select=jobTitle")["jobTitle"] == "Buyer"
    assert journal_entries(repo) == [] and history(repo) == []


def test_a_consistent_forgery_is_refused_because_the_backup_says_otherwise(
    repo: Path, live: Live, tmp_path: Path
) -> None:
    plan_file, document = _plan_kari(repo, live, tmp_path)
    (write,) = document["writes"]
    write.update(
        id=LARS,
        displayName="Kari Nordmann",
        path=f"users/{LARS}",
        body={"accountEnabled": False},
        changes=[{"name": "accountEnabled", "now": True, "after": False}],
        fingerprint=_live_fingerprint(live, LARS),
    )
    _forge(plan_file, document)
    result = run("apply", plan_file, "--repo", repo, "--graph-url", live.url, "--auto-approve")
    assert result.exit_code == 1, result.output
    assert "accountEnabled: the plan writes False, but the source holds True" in result.stderr
    assert live.get(f"users/{LARS}?$select=accountEnabled")["accountEnabled"] is True


def test_a_purge_of_deleted_items_is_never_sent(repo: Path, live: Live, tmp_path: Path) -> None:
    plan_file, document = _plan_kari(repo, live, tmp_path)
    document["writes"][0].update(
        step="delete", id=ERIK, method="DELETE", path=f"directory/deletedItems/{ERIK}", body=None, changes=[]
    )
    document["options"]["allowDelete"] = True
    _forge(plan_file, document)
    result = run("apply", plan_file, "--repo", repo, "--graph-url", live.url, "--auto-approve")
    assert result.exit_code == 1, result.output
    assert live.status(f"directory/deletedItems/{ERIK}") == 200


def test_a_plan_file_that_is_not_a_plan_is_refused(repo: Path, live: Live, tmp_path: Path) -> None:
    plan_file, document = _plan_kari(repo, live, tmp_path)
    document["writes"][0]["step"] = "purge"
    _forge(plan_file, document)
    result = run("apply", plan_file, "--repo", repo, "--graph-url", live.url, "--auto-approve")
    assert result.exit_code == 1 and "not a well-formed plan at writes/0/step" in result.stderr


def test_the_review_shows_names_from_the_tenant_not_from_the_file(repo: Path, live: Live, tmp_path: Path) -> None:
    plan_file, document = _plan_kari(repo, live, tmp_path)
    document["writes"][0]["displayName"] = "Someone Harmless"
    _forge(plan_file, document)
    result = run("apply", plan_file, "--repo", repo, "--graph-url", live.url, "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "'Kari Nordmann'" in result.stdout and "Someone Harmless" not in result.stdout


# -- 4. hand edits --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "old", "new", "expected"),
    [
        (f"users/{KARI}.yaml", "accountEnabled: true", "accountEnabled: maybe", "'maybe' is not of type 'boolean'"),
        (
            f"conditionalAccessPolicies/{BLOCK}.yaml",
            "\nstate: enabled\n",
            "\nstat: disabled\n",
            "unknown property 'stat' for conditionalAccessPolicy; did you mean 'state'?",
        ),
    ],
)
def test_hand_edits_pass_the_validator_first(
    repo: Path, live: Live, tmp_path: Path, relative: str, old: str, new: str, expected: str
) -> None:
    edit_file(repo, relative, old, new)
    git(repo, "commit", "-qam", "hand edit")
    plan_file = tmp_path / "p.json"
    result = run("plan", "--repo", repo, "--graph-url", live.url, "--desired", "HEAD", "-o", plan_file)
    assert result.exit_code == 1, result.output
    line = next(
        n
        for n, text in enumerate((repo / "tenant-state" / relative).read_text().splitlines(), 1)
        if new.strip() in text
    )
    assert f"tenant-state/{relative}:{line}:" in result.stderr and expected in result.stderr
    assert not plan_file.exists()


# -- 5. the wrong tenant ------------------------------------------------------------------------------


def other_tenant() -> Emulator:
    seed = copy.deepcopy(SEED)
    seed["organization"][0]["id"] = "9a9a9a9a-0000-4000-8000-000000000009"
    return Emulator(SeedLoader(default_registry(), seed, "other tenant").load())


def test_the_wrong_tenant_is_refused_before_anything_is_read_or_written(repo: Path, live: Live, tmp_path: Path) -> None:
    assert f"tenantId: {TENANT}" in (repo / "entra-gitops.yaml").read_text()  # recorded by the first snapshot
    config = repo / "entra-gitops.yaml"
    config.write_text(config.read_text().replace("\nretention: 5\n", "\nretention: 1\n"))
    git(repo, "commit", "-qam", "keep one backup")
    head, before = git(repo, "rev-parse", "HEAD"), tags(repo)
    plan_file, _ = _plan_kari(repo, live, tmp_path)
    with graph(other_tenant()) as other:
        for command in (
            ("snapshot",),
            ("diff",),
            ("plan", "-o", tmp_path / "other.json"),
            ("apply", plan_file, "--auto-approve"),
        ):
            result = run(*command, "--repo", repo, "--graph-url", other.url)
            assert result.exit_code == 1, (command, result.output)
            assert "9a9a9a9a-0000-4000-8000-000000000009" in result.stderr and TENANT in result.stderr, result.stderr
    assert git(repo, "rev-parse", "HEAD") == head and tags(repo) == before
    assert not (tmp_path / "other.json").exists() and journal_entries(repo) == []


# -- 6. protection by id --------------------------------------------------------------------------------


def test_a_protected_policy_renamed_live_stays_protected(repo: Path, live: Live, tmp_path: Path) -> None:
    settings(repo, f"protected:\n  - type: conditionalAccessPolicy\n    displayName: {BLOCK_NAME}\n")
    live.write(
        "PATCH", f"identity/conditionalAccess/policies/{BLOCK}", {"displayName": "Harmless", "state": "disabled"}
    )
    plan_file = tmp_path / "p.json"
    planned = run("plan", "--repo", repo, "--graph-url", live.url, "--type", "conditionalAccessPolicy", "-o", plan_file)
    assert planned.exit_code == 3, planned.output
    assert f"({BLOCK}) is protected" in planned.output
    assert json.loads(plan_file.read_text())["protected"][0]["id"] == BLOCK
    refused = run("apply", plan_file, "--repo", repo, "--graph-url", live.url, "--auto-approve")
    assert refused.exit_code == 3 and "--force" in refused.stderr
    assert live.get(f"identity/conditionalAccess/policies/{BLOCK}")["displayName"] == "Harmless"
    forced = run("apply", plan_file, "--repo", repo, "--graph-url", live.url, "--auto-approve", "--force")
    assert forced.exit_code == 0, forced.output
    assert live.get(f"identity/conditionalAccess/policies/{BLOCK}")["state"] == "enabled"
    assert history(repo)[0]["overrides"] == ["--force"]


def test_a_typo_in_the_protected_settings_is_an_error(repo: Path, live: Live) -> None:
    settings(repo, f"protected:\n  - type: usr\n    id: {BG01}\n")
    result = run("plan", "--repo", repo, "--graph-url", live.url)
    assert result.exit_code == 1, result.output
    assert "entra-gitops.yaml:" in result.stderr and "did you mean 'user'" in result.stderr


# -- 7. backups that cover the scope ---------------------------------------------------------------------


def test_diff_compares_with_the_newest_complete_backup(repo: Path, live: Live) -> None:
    assert run("snapshot", "--repo", repo, "--graph-url", live.url, "--type", "user").exit_code == 0
    incomplete = json.loads(run("backups", "--repo", repo, "--format", "json").stdout)[0]
    assert incomplete["complete"] is False
    live.write("POST", "groups", {"displayName": "Created Later", "mailEnabled": False, "mailNickname": "later",
                                  "securityEnabled": True, "groupTypes": []})  # fmt: skip
    default = run("diff", "--repo", repo, "--graph-url", live.url, "--type", "group")
    assert default.exit_code == 2, default.output
    assert "Created Later" in default.stdout
    chosen = run("diff", "--repo", repo, "--graph-url", live.url, "--backup", incomplete["id"])
    assert chosen.exit_code == 0, chosen.output
    assert chosen.stdout.splitlines()[0] == (
        f"Backup {incomplete['id']} is incomplete: it covers only user, so only that was compared."
    )


# -- 8. restores Graph would refuse, and duplicates --------------------------------------------------------


def test_a_restore_frees_its_user_principal_name_first(repo: Path, live: Live, tmp_path: Path) -> None:
    upn = USERS["Sofia Andersson"]["userPrincipalName"]
    live.write("DELETE", f"users/{SOFIA}")
    newcomer = live.write(
        "POST", "users", {"displayName": "Sofia A.", "userPrincipalName": upn, "accountEnabled": True,
                          "mailNickname": "sofia.a", **PASSWORD_PROFILE},
    )  # fmt: skip
    plan_file = tmp_path / "p.json"
    assert run("plan", "--repo", repo, "--graph-url", live.url, "--type", "user", "-o", plan_file).exit_code == 0
    steps = [(w["step"], w["id"]) for w in json.loads(plan_file.read_text())["writes"]]
    assert steps == [("softDelete", newcomer["id"]), ("restore", SOFIA)]
    result = run("apply", plan_file, "--repo", repo, "--graph-url", live.url, "--auto-approve")
    assert result.exit_code == 0, result.output
    assert live.status(f"users/{SOFIA}") == 200 and live.status(f"directory/deletedItems/{newcomer['id']}") == 200


def test_a_restored_service_principal_gets_its_relationships_back_once(repo: Path, live: Live, tmp_path: Path) -> None:
    assigned = {a["id"] for a in live.get(f"servicePrincipals/{HR_PORTAL}/appRoleAssignedTo")["value"]}
    live.write("DELETE", f"servicePrincipals/{HR_PORTAL}")
    relationships = ("--type", "servicePrincipal", "--type", "appRoleAssignment", "--type", "oauth2PermissionGrant")
    report = run("diff", "--repo", repo, "--graph-url", live.url, "--format", "json", *relationships)
    assert report.exit_code == 2, report.output
    rows = [r for r in json.loads(report.stdout)["changes"] if r["type"] == "appRoleAssignment"]
    assert {r["id"] for r in rows} == assigned and all(r["action"] == "none" for r in rows)
    assert all(r["reason"] == "comesBackWithRestore" for r in rows)
    plan_file = tmp_path / "p.json"
    assert run("plan", "--repo", repo, "--graph-url", live.url, "-o", plan_file, *relationships).exit_code == 0
    assert [(w["step"], w["id"]) for w in json.loads(plan_file.read_text())["writes"]] == [("restore", HR_PORTAL)]
    assert run("apply", plan_file, "--repo", repo, "--graph-url", live.url, "--auto-approve").exit_code == 0
    after = [a["id"] for a in live.get(f"servicePrincipals/{HR_PORTAL}/appRoleAssignedTo")["value"]]
    assert sorted(after) == sorted(assigned)


def test_diff_and_plan_agree_that_a_deleted_admin_grant_is_re_created(repo: Path, live: Live, tmp_path: Path) -> None:
    grant = next(g for g in SEED["oauth2PermissionGrants"] if g["consentType"] == "AllPrincipals")
    live.write("DELETE", f"oauth2PermissionGrants/{grant['id']}")
    report = run("diff", "--repo", repo, "--graph-url", live.url, "--type", "oauth2PermissionGrant")
    assert report.exit_code == 2 and "re-create it" in report.stdout and "not recoverable" not in report.stdout
    planned = run(
        "plan", "--repo", repo, "--graph-url", live.url, "--type", "oauth2PermissionGrant", "--format", "json"
    )
    assert [w["step"] for w in json.loads(planned.stdout)["writes"]] == ["create"]


# -- 9. terminal injection ---------------------------------------------------------------------------------


def test_tenant_data_cannot_drive_the_reviewers_terminal(repo: Path, live: Live) -> None:
    hostile = "Evil\x1b]0;pwned\x07\n+ user 'Fake' (id): created after the backup\x9b2J\u202e"
    live.write("PATCH", f"users/{KARI}", {"displayName": hostile})
    for command in (("diff",), ("diff", "--format", "markdown"), ("plan",), ("plan", "--format", "markdown")):
        result = run(*command, "--repo", repo, "--graph-url", live.url, "--type", "user")
        assert result.exit_code in (0, 2), result.output
        for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert raw not in result.output, (command, raw)
        assert not any(line.startswith("+ user 'Fake'") for line in result.output.splitlines())
        # The escapes stay visible, so a reviewer sees that the name is odd (markdown spells "\\" as an entity).
        assert "\\x1b]0;pwned\\x07" in html.unescape(result.output)


# -- the lockout guard ----------------------------------------------------------------------------------------


def test_a_plan_that_would_lock_out_a_break_glass_account_is_refused(repo: Path, live: Live, tmp_path: Path) -> None:
    settings(repo, f"breakGlass:\n  - {BG01_UPN}\n")
    policy = f"conditionalAccessPolicies/{BLOCK}.yaml"
    edit_file(repo, policy, f"      - {BG01}\n", "")
    edit_file(repo, policy, f"    excludeGroups:\n      - {EXCLUSIONS}\n", "")
    git(repo, "commit", "-qam", "tidy the exclusions")
    plan_file = tmp_path / "p.json"
    policies = ("--type", "conditionalAccessPolicy")
    refused = run("plan", "--repo", repo, "--graph-url", live.url, "--desired", "HEAD", *policies, "-o", plan_file)
    assert refused.exit_code == 3, refused.output
    assert BLOCK_NAME in refused.stderr and BG01_UPN in refused.stderr and "--allow-lockout" in refused.stderr
    assert not plan_file.exists()

    saved = run(
        "plan",
        "--repo",
        repo,
        "--graph-url",
        live.url,
        "--desired",
        "HEAD",
        *policies,
        "--allow-lockout",
        "-o",
        plan_file,
    )
    assert saved.exit_code == 0, saved.output
    forced = run("apply", plan_file, "--repo", repo, "--graph-url", live.url, "--auto-approve", "--force")
    assert forced.exit_code == 3 and "--allow-lockout" in forced.stderr
    assert BG01 in json.dumps(live.get(f"identity/conditionalAccess/policies/{BLOCK}"))  # still excluded
    taken = run("apply", plan_file, "--repo", repo, "--graph-url", live.url, "--auto-approve", "--allow-lockout")
    assert taken.exit_code == 0, taken.output
    assert history(repo)[0]["overrides"] == ["--allow-lockout"]


def test_a_plan_that_disables_a_break_glass_account_is_refused(repo: Path, live: Live) -> None:
    settings(repo, f"breakGlass:\n  - {BG01}\n")
    edit_file(repo, f"users/{BG01}.yaml", "accountEnabled: true", "accountEnabled: false")
    git(repo, "commit", "-qam", "disable")
    result = run("plan", "--repo", repo, "--graph-url", live.url, "--desired", "HEAD", "--type", "user")
    assert result.exit_code == 3, result.output
    assert "account disabled" in result.output


def test_recovering_a_disabled_break_glass_account_is_safe(repo: Path, live: Live, tmp_path: Path) -> None:
    settings(repo, f"breakGlass:\n  - {BG01}\n")
    live.write("PATCH", f"users/{BG01}", {"accountEnabled": False})  # the incident
    plan_file = tmp_path / "p.json"
    planned = run("plan", "--repo", repo, "--graph-url", live.url, "--type", "user", "-o", plan_file)
    assert planned.exit_code == 0, planned.output
    assert run("apply", plan_file, "--repo", repo, "--graph-url", live.url, "--auto-approve").exit_code == 0
    assert live.get(f"users/{BG01}?$select=accountEnabled")["accountEnabled"] is True


# -- what Graph refuses, handled before apply --------------------------------------------------------------


def test_a_soft_deleted_user_is_restored_without_writing_its_name_back(repo: Path, live: Live, tmp_path: Path) -> None:
    live.write("DELETE", f"users/{KARI}")
    assert live.get(f"directory/deletedItems/{KARI}")["userPrincipalName"].startswith(KARI.replace("-", ""))
    report = run("diff", "--repo", repo, "--graph-url", live.url, "--type", "user", "--format", "json")
    (change,) = json.loads(report.stdout)["changes"]
    assert change["kind"] == "softDeleted" and change["properties"] == []
    plan_file = tmp_path / "p.json"
    assert run("plan", "--repo", repo, "--graph-url", live.url, "--type", "user", "-o", plan_file).exit_code == 0
    assert [w["step"] for w in json.loads(plan_file.read_text())["writes"]] == ["restore"]
    assert run("apply", plan_file, "--repo", repo, "--graph-url", live.url, "--auto-approve").exit_code == 0
    assert (
        live.get(f"users/{KARI}?$select=userPrincipalName")["userPrincipalName"]
        == USERS["Kari Nordmann"]["userPrincipalName"]
    )


def test_a_grant_consented_again_meanwhile_is_not_created_twice(repo: Path, live: Live, tmp_path: Path) -> None:
    grant = next(g for g in SEED["oauth2PermissionGrants"] if g["consentType"] == "AllPrincipals")
    live.write("DELETE", f"oauth2PermissionGrants/{grant['id']}")
    plan_file = tmp_path / "p.json"
    grants = ("--type", "oauth2PermissionGrant")
    assert run("plan", "--repo", repo, "--graph-url", live.url, *grants, "-o", plan_file).exit_code == 0
    body = {k: grant[k] for k in ("clientId", "consentType", "resourceId", "scope")}
    live.write("POST", "oauth2PermissionGrants", body)  # an administrator consents again before the apply
    applied = run("apply", plan_file, "--repo", repo, "--graph-url", live.url, "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert "in effect already" in "".join(journal_entries(repo))
    same = [g for g in live.get("oauth2PermissionGrants")["value"] if g["clientId"] == grant["clientId"]]
    assert len([g for g in same if g["consentType"] == "AllPrincipals"]) == 1


def test_a_policy_write_naming_a_group_deleted_since_is_reported_in_the_plan(
    repo: Path, live: Live, tmp_path: Path
) -> None:
    policy = live.get(f"identity/conditionalAccess/policies/{BLOCK}")
    users = policy["conditions"]["users"]
    live.write(
        "PATCH",
        f"identity/conditionalAccess/policies/{BLOCK}",
        {"conditions": {**policy["conditions"], "users": {**users, "excludeGroups": []}}},
    )
    live.write("DELETE", f"groups/{EXCLUSIONS}")
    live.write("DELETE", f"directory/deletedItems/{EXCLUSIONS}")  # gone for good
    plan_file = tmp_path / "p.json"
    planned = run("plan", "--repo", repo, "--graph-url", live.url, "--type", "conditionalAccessPolicy", "-o", plan_file)
    assert planned.exit_code == 0, planned.output
    document = json.loads(plan_file.read_text())
    assert not [w for w in document["writes"] if w["id"] == BLOCK]
    (reason,) = [s["reason"] for s in document["skipped"] if s["id"] == BLOCK]
    assert f"names group {EXCLUSIONS} (conditions.users.excludeGroups), which no longer exists" in reason
