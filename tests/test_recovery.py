"""Recovery end to end: the real CLI against the emulator over loopback HTTP, plans and applies on real git
repositories.

Every test starts from one backup of the demo tenant (conftest's `repo`: taken once per module, copied per test)
and an emulator of its own, served from a thread of this process; drift arrives through Graph, or through the
emulator's seed when the emulator injects faults on the writes the drift would otherwise use up. The CLI runs
through main() in process (`cli`); as a real process (`script`) where only one shows it: a script's missing
terminal, a terminal's answer, a kill, and everything a whole process prints (the secrets test).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import pty
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ENTRA_GITOPS, PASSWORD_PROFILE, demo_seed, run_main, served
from test_snapshot import KEY_MATERIAL, PASSWORD, SECRET_TEXT, STRAY, secret_seed

from entra_gitops.recovery.journal import Journal, JournalEvent
from entra_gitops.recovery.plan import Request, Step, Write, compute_checksum
from entra_gitops.state.lock import exclusive
from entra_gitops.state.normalize import REDACTED

SEED = demo_seed()
USERS = {u["displayName"]: u for u in SEED["users"]}
GROUPS = {g["displayName"]: g["id"] for g in SEED["groups"]}
KARI = USERS["Kari Nordmann"]["id"]
LARS = USERS["Lars Haugen"]["id"]
PER = USERS["Per Aas"]["id"]  # a member of VPN Users
SOFIA = USERS["Sofia Andersson"]["id"]
HENRIK = USERS["Henrik Strand"]["id"]  # in Engineering, not in SG-Finance
NORA = USERS["Nora Bakken"]["id"]  # in Engineering
BREAK_GLASS = USERS["Break Glass Admin 01"]["id"]
SG_FINANCE, ENGINEERING, VPN_USERS = GROUPS["SG-Finance"], GROUPS["Engineering"], GROUPS["VPN Users"]
RESOURCE = next(sp["id"] for sp in SEED["servicePrincipals"] if sp["displayName"] == "Microsoft Graph")
STRENGTH = next(p["id"] for p in SEED["policies/authenticationStrengthPolicies"] if p["policyType"] == "custom")
CA_POLICY = next(p["id"] for p in SEED["identity/conditionalAccess/policies"] if p["state"] == "enabled")
SMS = "policies/authenticationMethodsPolicy/authenticationMethodConfigurations/Sms"
SMS_TYPE = "#microsoft.graph.smsAuthenticationMethodConfiguration"
PEOPLE = ("--type", "user", "--type", "group")  # plans that read only what the drift touched: faster
RELATIONSHIPS = ("--type", "appRoleAssignment", "--type", "oauth2PermissionGrant")
NOT_RESENDABLE = {"restore", "create", "addLink", "removeLink", "softDelete", "delete"}


# -- helpers -----------------------------------------------------------------------------------


def cli(*args: Any) -> subprocess.CompletedProcess[str]:
    """The real command line through main(), in process."""
    return run_main(*args)


def script(*args: Any, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real command as its own process, as a script runs it: no terminal on any stream."""
    return subprocess.run(
        [*ENTRA_GITOPS, *map(str, args)], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


class Live:
    """Plain HTTP to the emulator: how an administrator (or the test) changes and reads the tenant."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url + "/", timeout=30, headers={"Authorization": "Bearer local"})

    def send(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return self.http.request(method, path, json=body)

    def write(self, method: str, path: str, body: Any = None) -> httpx.Response:
        response = self.send(method, path, body)
        if response.status_code >= 300:
            pytest.fail(f"{method} {path}: {response.status_code} {response.text}")
        return response

    def get(self, path: str) -> dict[str, Any]:
        response = self.send("GET", path)
        if response.status_code != 200:
            pytest.fail(f"GET {path}: {response.status_code} {response.text}")
        return response.json()

    def status(self, path: str) -> int:
        return self.send("GET", path).status_code

    def list(self, path: str) -> list[dict[str, Any]]:
        page = self.get(path)
        items = list(page["value"])
        while "@odata.nextLink" in page:
            page = self.get(page["@odata.nextLink"])
            items.extend(page["value"])
        return items

    def user(self, user_id: str) -> dict[str, Any]:
        return self.get(f"users/{user_id}?$select=id,department,jobTitle,displayName")

    def members(self, group_id: str) -> set[str]:
        return {m["id"] for m in self.list(f"groups/{group_id}/members?$select=id")}

    def add_member(self, group_id: str, member_id: str) -> None:
        reference = {"@odata.id": f"{self.http.base_url}directoryObjects/{member_id}"}
        self.write("POST", f"groups/{group_id}/members/$ref", reference)

    def assignments(self) -> list[dict[str, Any]]:
        return self.list(f"servicePrincipals/{RESOURCE}/appRoleAssignedTo")

    def close(self) -> None:
        self.http.close()


@contextlib.contextmanager
def live(url: str) -> Iterator[Live]:
    graph = Live(url)
    try:
        yield graph
    finally:
        graph.close()


def plan(
    repo: Path, url: str, *extra: str, name: str = "plan.json", code: int = 0, run: Any = cli
) -> tuple[Path, dict[str, Any]]:
    """`entra-gitops plan -o`: the plan file and its JSON (`code` 3 for a plan saved but refused as unsafe)."""
    path = repo.parent / name
    result = run("plan", "--repo", repo, "--graph-url", url, "-o", path, *extra)
    assert result.returncode == code, result.stdout + result.stderr
    return path, json.loads(path.read_text(encoding="utf-8"))


def apply(repo: Path, url: str, plan_file: Path, *extra: str, run: Any = cli) -> subprocess.CompletedProcess[str]:
    return run("apply", plan_file, "--repo", repo, "--graph-url", url, "--auto-approve", *extra)


def journal(repo: Path, *, while_written: bool = False) -> list[dict[str, Any]]:
    """Every journal event of every plan applied in `repo`, in the order written.

    `while_written` tolerates a line still being appended by a running apply.
    """
    events: list[dict[str, Any]] = []
    for path in sorted((repo / ".git" / "entra-gitops" / "journal").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                if not while_written:
                    raise
    return events


def terminal_events(events: list[dict[str, Any]]) -> dict[int, list[str]]:
    """Per write index, its outcomes (done, confirmed, failed) in order."""
    found: dict[int, list[str]] = {}
    for event in events:
        if event["event"] != "sent":
            found.setdefault(event["write"], []).append(event["event"])
    return found


def history(repo: Path) -> list[dict[str, Any]]:
    result = cli("history", "--repo", repo, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def diff(repo: Path, url: str) -> subprocess.CompletedProcess[str]:
    """`entra-gitops diff` of the latest backup against the live tenant."""
    return cli("diff", "--repo", repo, "--graph-url", url)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


# -- every recovery action ----------------------------------------------------------------------


def test_every_recovery_action_end_to_end(repo: Path, served_emulator: str) -> None:
    url = served_emulator
    with live(url) as graph:
        kari = graph.user(KARI)
        assignment = graph.assignments()[0]
        grant = next(g for g in graph.list("oauth2PermissionGrants") if g["consentType"] == "AllPrincipals")
        combinations = graph.get(f"policies/authenticationStrengthPolicies/{STRENGTH}")["allowedCombinations"]
        sms = graph.get(SMS)["state"]

        graph.write("DELETE", f"users/{PER}")
        graph.write("PATCH", f"users/{KARI}", {"department": "Procurement", "jobTitle": "Buyer"})
        graph.write("PATCH", f"identity/conditionalAccess/policies/{CA_POLICY}", {"state": "disabled"})
        graph.add_member(SG_FINANCE, HENRIK)
        graph.write("DELETE", f"groups/{ENGINEERING}/members/{NORA}/$ref")
        app = graph.write("POST", "applications", {"displayName": "Created After The Backup"}).json()
        graph.write("DELETE", f"servicePrincipals/{RESOURCE}/appRoleAssignedTo/{assignment['id']}")
        graph.write("DELETE", f"oauth2PermissionGrants/{grant['id']}")
        graph.write(
            "POST",
            f"policies/authenticationStrengthPolicies/{STRENGTH}/updateAllowedCombinations",
            {"allowedCombinations": ["fido2"]},
        )
        graph.write("PATCH", SMS, {"@odata.type": SMS_TYPE, "state": "enabled" if sms == "disabled" else "disabled"})

        plan_file, document = plan(repo, url)
        assert document["format"] == "entra-gitops.plan/2" and document["tool"].startswith("entra-gitops ")
        assert document["tenant"] == SEED["organization"][0]["id"]
        assert document["backup"]["tag"].startswith("backup/") and len(document["backup"]["commit"]) == 40
        assert document["scope"] == {"types": [], "ids": []}
        assert document["checksum"] == compute_checksum(document)
        steps = {(w["step"], w["type"], w["id"]) for w in document["writes"]}
        assert {
            ("restore", "user", PER),
            ("update", "user", KARI),
            ("update", "conditionalAccessPolicy", CA_POLICY),
            ("addLink", "group", ENGINEERING),
            ("removeLink", "group", SG_FINANCE),
            ("softDelete", "application", app["id"]),
            ("create", "appRoleAssignment", assignment["id"]),
            ("create", "oauth2PermissionGrant", grant["id"]),
            ("action", "authenticationStrengthPolicy", STRENGTH),
            ("update", "authenticationMethodsPolicy", "authenticationMethodsPolicy"),
        } == steps
        order = [w["step"] for w in document["writes"]]
        assert order.index("restore") < order.index("update") < order.index("addLink") < order.index("softDelete")
        kari_write = next(w for w in document["writes"] if w["id"] == KARI)
        assert {c["name"]: (c["now"], c["after"]) for c in kari_write["changes"]} == {
            "department": ("Procurement", kari["department"]),
            "jobTitle": ("Buyer", kari["jobTitle"]),
        }
        assert all(len(w["fingerprint"]) == 64 for w in document["writes"] if w["step"] != "create")
        assert any(
            s["id"] == VPN_USERS and "restoring it brings this link back" in s["reason"] for s in document["skipped"]
        )

        result = apply(repo, url, plan_file)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Apply succeeded: 10 of 10 write(s) done" in result.stdout

        assert PER in graph.members(VPN_USERS)  # the restore brought the membership back
        assert {k: graph.user(KARI)[k] for k in ("department", "jobTitle")} == {
            "department": kari["department"],
            "jobTitle": kari["jobTitle"],
        }
        assert graph.get(f"identity/conditionalAccess/policies/{CA_POLICY}")["state"] == "enabled"
        assert HENRIK not in graph.members(SG_FINANCE) and NORA in graph.members(ENGINEERING)
        assert graph.status(f"applications/{app['id']}") == 404
        assert graph.status(f"directory/deletedItems/{app['id']}") == 200  # soft-deleted, not gone
        same = [
            a
            for a in graph.assignments()
            if (a["principalId"], a["appRoleId"]) == (assignment["principalId"], assignment["appRoleId"])
        ]
        assert len(same) == 1 and same[0]["id"] != assignment["id"]
        grants = [
            g
            for g in graph.list("oauth2PermissionGrants")
            if (g["clientId"], g["resourceId"], g["consentType"])
            == (grant["clientId"], grant["resourceId"], "AllPrincipals")
        ]
        assert [g["scope"] for g in grants] == [grant["scope"]]
        now = graph.get(f"policies/authenticationStrengthPolicies/{STRENGTH}")["allowedCombinations"]
        assert sorted(now) == sorted(combinations)
        assert graph.get(SMS)["state"] == sms

    outcomes = terminal_events(journal(repo))
    assert outcomes == {i: ["done"] for i in range(10)}
    (record,) = history(repo)
    assert record["status"] == "succeeded" and record["written"] == record["writes"] == 10
    assert record["linksModified"] == 2 and f"user/{PER}" in record["objectsModified"]
    assert record["backup"] == document["backup"]["tag"] and record["planChecksum"] == document["checksum"]
    assert "history/" in git(repo, "show", "--stat", "HEAD")

    clean = diff(repo, url)
    assert clean.returncode == 0, clean.stdout
    assert "No differences" in clean.stdout


def test_re_created_relationships_leave_no_difference(repo: Path, served_emulator: str) -> None:
    url = served_emulator
    with live(url) as graph:
        assignment = graph.assignments()[0]
        grant = next(g for g in graph.list("oauth2PermissionGrants") if g["consentType"] == "AllPrincipals")
        graph.write("DELETE", f"servicePrincipals/{RESOURCE}/appRoleAssignedTo/{assignment['id']}")
        graph.write("DELETE", f"oauth2PermissionGrants/{grant['id']}")
    plan_file = repo.parent / "plan.json"
    for step in (
        cli("plan", "--repo", repo, "--graph-url", url, "-o", plan_file, *RELATIONSHIPS),
        apply(repo, url, plan_file),
    ):
        if step.returncode != 0:
            pytest.fail(step.stdout + step.stderr)
    assert diff(repo, url).returncode == 0
    assert cli("plan", "--repo", repo, "--graph-url", url, "--detailed-exitcode", *RELATIONSHIPS).returncode == 0


# -- scope, exit codes, terminal and script --------------------------------------------------------


def test_single_object_recovery_and_detailed_exit_codes(repo: Path, served_emulator: str) -> None:
    url = served_emulator
    nothing = cli("plan", "--repo", repo, "--graph-url", url, "--detailed-exitcode")
    assert nothing.returncode == 0, nothing.stderr
    assert "No changes" in nothing.stdout
    with live(url) as graph:
        kari = graph.user(KARI)
        graph.write("PATCH", f"users/{KARI}", {"department": "Procurement"})
        graph.write("PATCH", f"users/{SOFIA}", {"department": "Procurement"})
        graph.write("DELETE", f"users/{PER}")
        graph.write("DELETE", f"users/{LARS}")
        graph.write("DELETE", f"directory/deletedItems/{LARS}")  # permanently: no restore can bring him back

        everything = cli("plan", "--repo", repo, "--graph-url", url, "--detailed-exitcode", "--format", "json", *PEOPLE)
        assert everything.returncode == 2, everything.stderr
        skipped = {s["id"]: s["reason"] for s in json.loads(everything.stdout)["skipped"]}
        assert "permanently deleted" in skipped[LARS]
        assert cli("plan", "--repo", repo, "--graph-url", url, *PEOPLE).returncode == 0  # without the flag: 0

        plan_file, document = plan(repo, url, "--id", KARI)
        assert document["scope"]["ids"] == [KARI]
        assert [(w["step"], w["id"]) for w in document["writes"]] == [("update", KARI)]
        result = apply(repo, url, plan_file)
        assert result.returncode == 0, result.stdout + result.stderr

        assert graph.user(KARI)["department"] == kari["department"]
        assert graph.user(SOFIA)["department"] == "Procurement"  # outside the plan: untouched
        assert graph.status(f"users/{PER}") == 404
    only_kari = cli("plan", "--repo", repo, "--graph-url", url, "--id", KARI, "--type", "user", "--detailed-exitcode")
    assert only_kari.returncode == 0, only_kari.stdout + only_kari.stderr
    assert cli("plan", "--repo", repo, "--graph-url", url, "--detailed-exitcode", *PEOPLE).returncode == 2


@pytest.mark.slow
def test_apply_asks_first_and_refuses_without_anyone_to_answer(repo: Path, served_emulator: str) -> None:
    url = served_emulator
    with live(url) as graph:
        kari = graph.user(KARI)
        graph.write("PATCH", f"users/{KARI}", {"department": "Procurement"})
        plan_file, _ = plan(repo, url, *PEOPLE)

        scripted = script("apply", plan_file, "--repo", repo, "--graph-url", url)
        assert scripted.returncode == 1
        assert "pass --auto-approve" in scripted.stderr
        assert "Recovery plan to backup/" in scripted.stdout  # the plan is shown either way
        assert graph.user(KARI)["department"] == "Procurement"
        assert journal(repo) == [] and history(repo) == []

        def at_a_terminal(answer: str) -> subprocess.CompletedProcess[str]:
            controller, terminal = pty.openpty()
            try:
                process = subprocess.Popen(
                    [*ENTRA_GITOPS, "apply", str(plan_file), "--repo", str(repo), "--graph-url", url],
                    stdin=terminal,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                os.write(controller, answer.encode())
                out, err = process.communicate(timeout=120)
            finally:
                os.close(terminal)
                os.close(controller)
            return subprocess.CompletedProcess(process.args, process.returncode, out, err)

        declined = at_a_terminal("no\n")
        assert declined.returncode == 1, declined.stderr  # as Terraform: anything but 'yes' is no success
        assert "Only 'yes' is accepted" in declined.stdout and "nothing was written" in declined.stdout
        assert graph.user(KARI)["department"] == "Procurement"

        accepted = at_a_terminal("yes\n")
        assert accepted.returncode == 0, accepted.stdout + accepted.stderr
        assert "Apply succeeded" in accepted.stdout
        assert graph.user(KARI)["department"] == kari["department"]


# -- refusals: stale, tampered, locked, unsafe ----------------------------------------------------


def test_a_stale_plan_writes_nothing_and_skip_stale_applies_the_rest(repo: Path, served_emulator: str) -> None:
    url = served_emulator
    with live(url) as graph:
        lars = graph.user(LARS)
        graph.write("PATCH", f"users/{KARI}", {"department": "Procurement"})
        graph.write("PATCH", f"users/{LARS}", {"department": "Procurement"})
        graph.add_member(SG_FINANCE, HENRIK)
        plan_file, _ = plan(repo, url, *PEOPLE)
        graph.write("PATCH", f"users/{KARI}", {"jobTitle": "Head of Buying"})  # newer than the plan

        refused = apply(repo, url, plan_file)
        assert refused.returncode == 4, refused.stdout + refused.stderr
        assert "1 object(s) changed since the plan was made, so nothing was written" in refused.stderr
        assert f"user {KARI}" in refused.stderr and "--skip-stale" in refused.stderr
        assert graph.user(LARS)["department"] == "Procurement"
        assert HENRIK in graph.members(SG_FINANCE)
        assert {k: graph.user(KARI)[k] for k in ("department", "jobTitle")} == {
            "department": "Procurement",
            "jobTitle": "Head of Buying",
        }
        assert journal(repo) == [] and history(repo) == []

        rest = apply(repo, url, plan_file, "--skip-stale")
        assert rest.returncode == 0, rest.stdout + rest.stderr
        assert "1 stale object(s) skipped" in rest.stdout
        assert graph.user(LARS)["department"] == lars["department"]
        assert HENRIK not in graph.members(SG_FINANCE)
        assert {k: graph.user(KARI)[k] for k in ("department", "jobTitle")} == {
            "department": "Procurement",
            "jobTitle": "Head of Buying",
        }
    (record,) = history(repo)
    assert record["status"] == "succeededWithWarnings"
    assert record["skippedStale"] == [f"user/{KARI}"] and record["written"] == 2


def test_tampered_foreign_and_other_tenant_plans_are_refused(repo: Path, served_emulator: str) -> None:
    url = served_emulator
    with live(url) as graph:
        kari = graph.user(KARI)
        graph.write("PATCH", f"users/{KARI}", {"department": "Procurement"})
        plan_file, document = plan(repo, url, *PEOPLE)

        tampered = json.loads(json.dumps(document))
        tampered["writes"][0]["body"]["department"] = "Chosen by someone else"
        (repo.parent / "tampered.json").write_text(json.dumps(tampered), encoding="utf-8")
        result = apply(repo, url, repo.parent / "tampered.json")
        assert result.returncode == 1
        assert "the plan was changed after it was made (its checksum does not match)" in result.stderr

        foreign = {**document, "format": "entra-gitops.plan/99"}
        foreign["checksum"] = compute_checksum(foreign)
        (repo.parent / "foreign.json").write_text(json.dumps(foreign), encoding="utf-8")
        result = apply(repo, url, repo.parent / "foreign.json")
        assert result.returncode == 1
        assert "plan format 'entra-gitops.plan/99' is not 'entra-gitops.plan/2'" in result.stderr

        elsewhere = {**document, "tenant": "00000000-0000-0000-0000-00000000beef"}
        elsewhere["checksum"] = compute_checksum(elsewhere)
        (repo.parent / "elsewhere.json").write_text(json.dumps(elsewhere), encoding="utf-8")
        result = apply(repo, url, repo.parent / "elsewhere.json")
        assert result.returncode == 1
        assert "the plan is for tenant 00000000-0000-0000-0000-00000000beef" in result.stderr

        assert graph.user(KARI)["department"] == "Procurement"
        assert journal(repo) == [] and history(repo) == []
        assert apply(repo, url, plan_file).returncode == 0  # the reviewed plan itself is fine
        assert graph.user(KARI)["department"] == kari["department"]


def test_a_second_apply_is_refused_by_the_lock_and_unlock_clears_it(repo: Path, served_emulator: str) -> None:
    url = served_emulator
    git_dir = repo / ".git"
    with live(url) as graph:
        graph.write("PATCH", f"users/{KARI}", {"department": "Procurement"})
        plan_file, _ = plan(repo, url, *PEOPLE)
        assert cli("unlock", "--repo", repo).stdout.strip() == "There was no lock."

        with exclusive(git_dir, "snapshot"):
            since = json.loads((git_dir / "entra-gitops.lock").read_text())["since"]
            refused = apply(repo, url, plan_file)
            assert refused.returncode == 1
            holder = f"snapshot by {getpass.getuser()} on {socket.gethostname()} (pid {os.getpid()}) since {since}"
            assert f"another entra-gitops run holds this repository: {holder}" in refused.stderr
            assert "that run is gone" not in refused.stderr  # it is alive
            assert graph.user(KARI)["department"] == "Procurement"
            assert journal(repo) == []

            lock_id = json.loads((git_dir / "entra-gitops.lock").read_text())["id"]
            alive = cli("unlock", "--repo", repo)
            assert alive.returncode == 1 and "the lock's holder is still running" in alive.stderr
            assert f"unlock --force {lock_id}" in alive.stderr
            assert cli("unlock", "--repo", repo, "--force", "not-the-id").returncode == 1
            cleared = cli("unlock", "--repo", repo, "--force", lock_id)
            assert cleared.returncode == 0
            assert f"Cleared the lock held by {holder}, lock id {lock_id}." in cleared.stdout

            result = apply(repo, url, plan_file)
            assert result.returncode == 0, result.stdout + result.stderr
        assert graph.user(KARI)["department"] == USERS["Kari Nordmann"]["department"]


def test_thresholds_and_protected_objects_are_refused_unless_forced(repo: Path, served_emulator: str) -> None:
    url = served_emulator
    movers = [
        u["id"]
        for u in SEED["users"]
        if u.get("department") and not u.get("onPremisesSyncEnabled") and u["id"] != BREAK_GLASS
    ][:12]
    assert len(movers) == 12
    with live(url) as graph:
        for user_id in movers:
            graph.write("PATCH", f"users/{user_id}", {"department": "Reorganised"})
        graph.write("PATCH", f"users/{BREAK_GLASS}", {"jobTitle": "Someone's account now"})
        config = repo / "entra-gitops.yaml"
        config.write_text(config.read_text() + f"protected:\n  - type: user\n    id: {BREAK_GLASS}\n", encoding="utf-8")
        git(repo, "commit", "-q", "-am", "Protect the break-glass account")

        plan_file, _ = plan(repo, url, *PEOPLE, code=3)
        shown = cli("plan", "--repo", repo, "--graph-url", url, *PEOPLE)
        assert (
            shown.returncode == 3 and "Unsafe (refused, exit 3; the flag in brackets takes it anyway)" in shown.stdout
        )
        one_file, one = plan(repo, url, "--id", BREAK_GLASS, "--type", "user", name="one.json", code=3)
        assert [w["id"] for w in one["writes"]] == [BREAK_GLASS]

        refused = apply(repo, url, plan_file)
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert "the plan changes or removes 13 of the 32 user objects live (41%), more than the 30%" in refused.stderr
        protected = apply(repo, url, one_file)
        assert protected.returncode == 3, protected.stdout + protected.stderr
        assert (
            f"user 'Break Glass Admin 01' ({BREAK_GLASS}) is protected: listed under protected in entra-gitops.yaml"
            in protected.stderr
        )
        assert all(graph.user(u)["department"] == "Reorganised" for u in movers)
        assert graph.user(BREAK_GLASS)["jobTitle"] == "Someone's account now"
        assert journal(repo) == [] and history(repo) == []

        forced = apply(repo, url, plan_file, "--force")
        assert forced.returncode == 0, forced.stdout + forced.stderr
        assert [graph.user(u)["department"] for u in movers] == [
            next(s for s in SEED["users"] if s["id"] == u)["department"] for u in movers
        ]
        assert graph.user(BREAK_GLASS)["jobTitle"] == USERS["Break Glass Admin 01"].get("jobTitle")
    assert [r["status"] for r in history(repo)] == ["succeeded"]


# -- failures, crashes, throttling and timeouts ------------------------------------------------------


def test_a_graph_error_midway_is_partially_applied_journalled_and_resumable(repo: Path, served_emulator: str) -> None:
    url = served_emulator
    with live(url) as graph:
        sofia = graph.get(f"users/{SOFIA}?$select=userPrincipalName")["userPrincipalName"]
        graph.write("DELETE", f"users/{PER}")
        graph.write("DELETE", f"users/{SOFIA}")
        graph.write("PATCH", f"users/{KARI}", {"department": "Procurement"})
        plan_file, document = plan(repo, url, *PEOPLE)
        assert [(w["step"], w["id"]) for w in document["writes"]] == [
            ("restore", PER),
            ("restore", SOFIA),
            ("update", KARI),
        ]
        # Meanwhile someone takes Sofia's sign-in name: Graph refuses her restore with a 400.
        newcomer = graph.write(
            "POST",
            "users",
            {"displayName": "Sofia A.", "userPrincipalName": sofia, "accountEnabled": True, "mailNickname": "sofia.a"}
            | PASSWORD_PROFILE,
        ).json()

        result = apply(repo, url, plan_file)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Apply partiallyApplied: 2 of 3 write(s) done, 1 failed" in result.stdout
        assert f"failed: POST directory/deletedItems/{SOFIA}/restore" in result.stderr
        assert "Request_MultipleObjectsWithSameKeyValue" in result.stderr

        events = journal(repo)
        # The two restores go out in one $batch call: both intents are journalled before it is sent,
        # both results before the next write.
        assert [(e["write"], e["event"]) for e in events] == [
            (0, "sent"),
            (1, "sent"),
            (0, "done"),
            (1, "failed"),
            (2, "sent"),
            (2, "done"),
        ]
        assert events[3]["status"] == 400 and events[3]["code"] == "Request_MultipleObjectsWithSameKeyValue"
        (first,) = history(repo)
        assert first["status"] == "partiallyApplied" and first["written"] == 2
        (failure,) = first["failures"]
        assert (failure["status"], failure["code"], failure["id"]) == (
            400,
            "Request_MultipleObjectsWithSameKeyValue",
            SOFIA,
        )
        assert "already exists" in failure["message"]
        assert graph.status(f"users/{PER}") == 200 and graph.status(f"users/{SOFIA}") == 404

        graph.write("DELETE", f"users/{newcomer['id']}")
        again = apply(repo, url, plan_file)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "Continuing an earlier apply of this plan: 2 written, 0 in doubt" in again.stdout
        assert "Apply succeeded: 3 of 3 write(s) done" in again.stdout
        assert graph.status(f"users/{SOFIA}") == 200
        assert [(e["write"], e["event"]) for e in journal(repo)[6:]] == [(1, "sent"), (1, "done")]

    newest, oldest = history(repo)
    assert (newest["status"], oldest["status"]) == ("succeeded", "partiallyApplied")
    assert newest["started"] > oldest["started"]
    lines = cli("history", "--repo", repo).stdout.splitlines()
    assert len(lines) == 2 and "succeeded" in lines[0] and "partiallyApplied" in lines[1]
    assert newest["id"] in lines[0] and "1 failed" in lines[1]


def test_a_killed_apply_resumes_and_writes_each_change_exactly_once(repo: Path, served_emulator: str) -> None:
    url = served_emulator
    with live(url) as graph:
        before = {g: graph.members(g) for g in (VPN_USERS, SG_FINANCE, ENGINEERING)}
        graph.write("DELETE", f"users/{PER}")
        graph.write("PATCH", f"users/{KARI}", {"department": "Procurement"})
        graph.add_member(SG_FINANCE, HENRIK)
        graph.write("DELETE", f"groups/{ENGINEERING}/members/{NORA}/$ref")
        app = graph.write("POST", "applications", {"displayName": "Created After The Backup"}).json()
        plan_file, document = plan(repo, url, *PEOPLE, "--type", "application")
        writes = len(document["writes"])
        assert writes == 5

        command = [*ENTRA_GITOPS, "apply", str(plan_file), "--repo", str(repo), "--graph-url", url]
        process = subprocess.Popen(
            [*command, "--auto-approve", "--write-rate", "2"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not any(e["event"] == "done" for e in journal(repo, while_written=True)):
            assert process.poll() is None and time.monotonic() < deadline, "the apply ended before it was killed"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait()
        done = {e["write"] for e in journal(repo) if e["event"] == "done"}
        assert 1 <= len(done) < writes, "the kill came too late to interrupt the apply"

        # The killed run's lock is recognised as dead (its pid is gone on this host) and taken over, said aloud.
        resumed = apply(repo, url, plan_file)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert "took over the lock of a run that is gone" in resumed.stderr and f"(pid {process.pid})" in resumed.stderr
        assert "Continuing an earlier apply of this plan" in resumed.stdout
        assert f"Apply succeeded: {writes} of {writes} write(s) done" in resumed.stdout

        events = journal(repo)
        outcomes = terminal_events(events)
        assert sorted(outcomes) == list(range(writes))
        assert all(len(o) == 1 and o[0] in ("done", "confirmed") for o in outcomes.values()), outcomes
        # Repeating a restore, a $ref write or a soft delete that took effect fails (404, 400). A write sent
        # again after the kill must therefore have ended in a plain success: its first attempt never landed.
        for index, write in enumerate(document["writes"]):
            sent = [e for e in events if e["write"] == index and e["event"] == "sent"]
            if write["step"] in NOT_RESENDABLE and len(sent) > 1:
                assert len(sent) == 2 and outcomes[index] == ["done"], (index, events)
        assert not [e for e in events if e.get("status") in (400, 404)]

        assert {g: graph.members(g) for g in before} == before
        assert graph.status(f"directory/deletedItems/{app['id']}") == 200
    (record,) = history(repo)
    assert record["status"] == "succeeded" and record["written"] == writes
    final = diff(repo, url)
    assert final.returncode == 0, final.stdout


@pytest.mark.slow
def test_throttled_and_timed_out_writes_apply_once(repo: Path) -> None:
    # The drift that needs PATCHes back is in the seed, so the test's own writes use none of the faults.
    seed = demo_seed()
    kari = next(u for u in seed["users"] if u["id"] == KARI)
    kari["department"] = "Procurement"
    methods = seed["policies/authenticationMethodsPolicy"]["authenticationMethodConfigurations"]
    sms = next(m for m in methods if m["id"] == "Sms")
    sms["state"] = "enabled" if sms["state"] == "disabled" else "disabled"
    faults = ";".join(
        [
            "429,first=2,method=PATCH,path=users/*",
            "429,first=2,retry-after=none,method=PATCH,path=policies/*",
            "504,first=1,method=POST,after-commit,path=directory/deletedItems/*",
            "504,first=1,method=POST,after-commit,path=servicePrincipals/*/appRoleAssignedTo",
        ]
    )
    with served(seed, faults=faults) as (url, _), live(url) as graph:
        assignment = graph.assignments()[0]
        graph.write("DELETE", f"users/{PER}")
        graph.write("DELETE", f"servicePrincipals/{RESOURCE}/appRoleAssignedTo/{assignment['id']}")
        plan_file, document = plan(
            repo, url, "--type", "user", "--type", "appRoleAssignment", "--type", "authenticationMethodsPolicy"
        )
        steps = [(w["step"], w["type"]) for w in document["writes"]]
        assert steps == [
            ("restore", "user"),
            ("create", "appRoleAssignment"),
            ("update", "authenticationMethodsPolicy"),
            ("update", "user"),
        ]

        result = apply(repo, url, plan_file)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Apply succeeded: 4 of 4 write(s) done" in result.stdout

        events = journal(repo)
        assert [(e["write"], e["event"], e.get("status")) for e in events] == [
            (0, "sent", None),
            (0, "confirmed", 504),  # the restore took effect although Graph answered 504: not resent
            (1, "sent", None),
            (1, "confirmed", 504),
            # The two updates go out in one $batch call; their 429s are retried inside it.
            (2, "sent", None),
            (3, "sent", None),
            (2, "done", 204),
            (3, "done", 204),
        ]
        same = [
            a
            for a in graph.assignments()
            if (a["principalId"], a["appRoleId"]) == (assignment["principalId"], assignment["appRoleId"])
        ]
        assert len(same) == 1
        assert graph.status(f"users/{PER}") == 200 and PER in graph.members(VPN_USERS)
        assert graph.user(KARI)["department"] == USERS["Kari Nordmann"]["department"]
        # The apply used up every injected 429: the next PATCHes go through.
        assert graph.send("PATCH", f"users/{KARI}", {}).status_code == 204
        assert graph.send("PATCH", SMS, {}).status_code == 204
        clean = diff(repo, url)
        assert clean.returncode == 0, clean.stdout
    assert [r["status"] for r in history(repo)] == ["succeeded"]


# -- secrets ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_no_secret_reaches_the_plan_journal_or_history(tmp_path: Path) -> None:
    seed = secret_seed()
    app_id = seed["applications"][0]["id"]
    user_id = seed["users"][0]["id"]  # the one with a passwordProfile
    repo = tmp_path / "state"
    with served(seed) as (url, _), live(url) as graph:
        outputs = [script("snapshot", "--repo", repo, "--graph-url", url)]
        assert outputs[0].returncode == 0, outputs[0].stderr
        graph.write("PATCH", f"applications/{app_id}", {"displayName": "Renamed", "notes": "moved to the vault"})
        graph.write("PATCH", f"users/{user_id}", {"department": "Procurement"})

        plan_file, document = plan(repo, url, "--type", "application", "--type", "user", run=script)
        outputs.append(
            script("plan", "--repo", repo, "--graph-url", url, "--format", "markdown", "--type", "application")
        )
        outputs.append(apply(repo, url, plan_file, run=script))
        assert outputs[-1].returncode == 0, outputs[-1].stdout + outputs[-1].stderr
        outputs.append(script("history", "--repo", repo, "--format", "json"))
        assert [r["status"] for r in json.loads(outputs[-1].stdout)] == ["succeeded"]
        assert graph.get(f"applications/{app_id}")["displayName"] == seed["applications"][0]["displayName"]
        # The backup holds a redaction marker, not the notes: it is never written back over the live value.
        assert graph.get(f"applications/{app_id}")["notes"] == "moved to the vault"

    bodies = json.dumps([w["body"] for w in document["writes"]])
    assert REDACTED not in bodies
    assert any(s["id"] == app_id and "redacted" in s["reason"] for s in document["skipped"])
    journal_text = "".join(p.read_text() for p in (repo / ".git" / "entra-gitops" / "journal").glob("*.jsonl"))
    history_text = "".join(p.read_text() for p in (repo / "history").glob("*.yaml"))
    assert journal_text and history_text
    objects = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch"], cwd=repo, capture_output=True, check=True
    ).stdout
    for secret in (SECRET_TEXT, KEY_MATERIAL, PASSWORD, STRAY):
        assert secret not in plan_file.read_text()
        assert secret not in journal_text
        assert secret not in history_text
        assert secret.encode() not in objects
        for output in outputs:
            assert secret not in output.stdout + output.stderr


def test_a_journal_line_cut_by_a_crash_does_not_swallow_the_next_entry(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    write = Write(
        Step.UPDATE, "user", KARI, "Kari Nordmann", Request("PATCH", f"users/{KARI}", {"department": "Finance"})
    )
    first = Journal(path)
    first.record(0, JournalEvent.SENT, write)
    first.close()
    with path.open("a", encoding="utf-8") as crashed:
        crashed.write('{"write": 0, "event": "do')  # the process died inside this line
    second = Journal(path)
    assert second.last_events() == {0: JournalEvent.SENT}  # the cut result stays in doubt
    second.record(0, JournalEvent.CONFIRMED, write)
    second.close()
    assert Journal(path).last_events() == {0: JournalEvent.CONFIRMED}


def test_an_apply_that_died_before_its_history_record_gets_one_on_rerun(repo: Path, served_emulator: str) -> None:
    url = served_emulator
    with live(url) as graph:
        graph.write("PATCH", f"users/{KARI}", {"department": "Procurement"})
    plan_file, _ = plan(repo, url, *PEOPLE)
    assert apply(repo, url, plan_file).returncode == 0
    # As if the process died after its last write and before the history commit.
    git(repo, "rm", "-q", "-r", "history")
    git(repo, "commit", "-q", "-m", "lose the history record")
    assert history(repo) == []
    again = apply(repo, url, plan_file)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "This plan's writes were all done already; recorded in history/" in again.stdout
    (record,) = history(repo)
    assert record["status"] == "succeeded" and record["written"] == record["writes"]
    third = apply(repo, url, plan_file)
    assert "applied completely already" in third.stdout
