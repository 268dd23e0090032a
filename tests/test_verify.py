"""Tamper-evident backups: signed backup tags, `verify` (signature, manifest, history, remote), and the refusal of
diff, plan and apply from a backup that fails it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SyncGraph, git, run_main, served

from entra_gitops.model.settings import CONFIG_FILE, DEFAULT_CONFIG_TEXT
from entra_gitops.state.gitstore import StateRepo
from entra_gitops.state.verify import ALLOWED_SIGNERS

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen signs and checks the tags")

BREAK_GLASS = "breakglass01@contoso.onmicrosoft.com"


def ssh_key(where: Path, name: str) -> Path:
    """A fresh ed25519 key pair without a passphrase: the private key's path (the public one beside it)."""
    key = where / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key


def allow(repo: Path, *keys: Path) -> None:
    """List `keys` as allowed to sign backups, as an administrator commits them."""
    lines = [f'{k.name} namespaces="git" {k.with_suffix(".pub").read_text().strip()}' for k in keys]
    path = repo / ALLOWED_SIGNERS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    git(repo, "add", str(ALLOWED_SIGNERS))
    git(repo, "commit", "-q", "-m", "Allow the backup signing key")


def signing_repo(tmp_path: Path, key: Path | None, signing: str = "ssh") -> Path:
    """A state repository whose settings sign every backup, with git's user.signingkey set to `key`."""
    repo = tmp_path / "state"
    text = DEFAULT_CONFIG_TEXT + f"\nsigning: {signing}\n"
    StateRepo.open(repo, create=True, initial_files={CONFIG_FILE: text.encode()})
    if key is not None:
        git(repo, "config", "user.signingkey", str(key))
    return repo


def snapshot(repo: Path, url: str) -> subprocess.CompletedProcess[str]:
    return run_main("snapshot", "--repo", repo, "--graph-url", url)


@pytest.fixture
def tenant() -> Iterator[tuple[str, SyncGraph]]:
    with served() as (url, app):
        yield url, SyncGraph(app)


def verify(repo: Path, *args: str) -> tuple[int, str, dict[str, object]]:
    text = run_main("verify", "--repo", repo, *args)
    found = run_main("verify", "--repo", repo, "--format", "json", *args)
    assert found.returncode == text.returncode, found.stderr
    return text.returncode, text.stdout + text.stderr, json.loads(found.stdout)


def tag_message(repo: Path, name: str) -> str:
    return git(repo, "for-each-ref", "--format=%(contents:subject)%0a%0a%(contents:body)", f"refs/tags/{name}")


def forge(repo: Path, backup: str, base: str, key: Path | None) -> str:
    """What an attacker with push rights does: a commit on `base` in which the break-glass account is disabled,
    and the backup's tag moved onto it with the same message (signed by `key`, or unsigned)."""
    user = next(p for p in (repo / "tenant-state" / "users").iterdir() if BREAK_GLASS in p.read_text())
    message = tag_message(repo, backup)
    git(repo, "checkout", "-q", "--detach", base)
    user.write_text(user.read_text().replace("accountEnabled: true", "accountEnabled: false"))
    git(repo, "commit", "-q", "-am", "Snapshot: 1 object file changed")
    forged = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "main")
    signed = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "tag", "-s"] if key else ["tag", "-a"]
    subprocess.run(
        [
            "git",
            "-c",
            "user.name=Admin",
            "-c",
            "user.email=admin@example.com",
            *signed,
            "-f",
            "-F",
            "-",
            backup,
            forged,
        ],
        cwd=repo,
        input=message,
        text=True,
        check=True,
        capture_output=True,
    )
    return forged


def signed_backups(tmp_path: Path, tenant: tuple[str, SyncGraph], count: int) -> Path:
    """A repository whose settings sign backups, with the key listed as allowed and `count` backups, a user's
    job title changed live between them."""
    url, api = tenant
    key = ssh_key(tmp_path, "backups")
    repo = signing_repo(tmp_path, key)
    allow(repo, key)
    users = api.get("users", params={"$top": count}).json()["value"]
    for n in range(count):
        if n:
            api.patch(f"users/{users[n]['id']}", {"jobTitle": f"Changed {n}"})
        assert snapshot(repo, url).returncode == 0
    return repo


def test_signed_backups_verify_and_list_as_signed(tmp_path: Path, tenant: tuple[str, SyncGraph]) -> None:
    url, _ = tenant
    repo = signed_backups(tmp_path, tenant, 2)
    code, out, document = verify(repo)
    assert code == 0, out
    assert out.count("good  backup/") == 2 and "All 2 backup(s) verified." in out
    assert 'Good "git" signature for backups' in out
    assert document["verified"] is True
    listing = json.loads(run_main("backups", "--repo", repo, "--format", "json").stdout)
    assert [b["signed"] for b in listing] == [True, True]
    assert "-----BEGIN SSH SIGNATURE-----" in git(repo, "cat-file", "-p", listing[0]["tag"])
    # A backup that is good lets diff compare as before.
    assert run_main("diff", "--repo", repo, "--graph-url", url).returncode == 0


def test_an_unsigned_backup_fails_verification_and_plan_refuses_it(
    tmp_path: Path, tenant: tuple[str, SyncGraph]
) -> None:
    url, api = tenant
    key = ssh_key(tmp_path, "backups")
    repo = tmp_path / "state"
    assert snapshot(repo, url).returncode == 0  # made before signing was set up
    config = repo / CONFIG_FILE
    config.write_text(config.read_text() + "\nsigning: ssh\n")
    git(repo, "commit", "-q", "-am", "Sign the backups")
    git(repo, "config", "user.signingkey", str(key))
    allow(repo, key)
    code, out, document = verify(repo)
    assert code == 1 and "FAIL  backup/" in out and "unsigned" in out
    assert document["verified"] is False
    refused = run_main("plan", "--repo", repo, "--graph-url", url, "-o", tmp_path / "plan.json")
    assert refused.returncode == 1
    assert "fails verification: unsigned" in refused.stderr and "--no-verify" in refused.stderr
    assert not (tmp_path / "plan.json").exists()
    for command in (("diff",), ("diff", "--against", "HEAD")):
        assert run_main(*command, "--repo", repo, "--graph-url", url).returncode == 1

    user = api.get("users", params={"$filter": f"userPrincipalName eq '{BREAK_GLASS}'"}).json()["value"][0]
    other = next(u for u in api.get("users").json()["value"] if u["id"] != user["id"] and "@" in u["userPrincipalName"])
    api.patch(f"users/{other['id']}", {"jobTitle": "Changed live"})
    planned = run_main("plan", "--repo", repo, "--graph-url", url, "-o", tmp_path / "plan.json", "--no-verify")
    assert planned.returncode == 0, planned.stderr
    assert "used anyway because of --no-verify" in planned.stderr
    refused = run_main("apply", tmp_path / "plan.json", "--repo", repo, "--graph-url", url, "--auto-approve")
    assert refused.returncode == 1 and "fails verification" in refused.stderr
    assert api.get(f"users/{other['id']}").json()["jobTitle"] == "Changed live"  # nothing was written
    applied = run_main(
        "apply", tmp_path / "plan.json", "--repo", repo, "--graph-url", url, "--auto-approve", "--no-verify",
        "--format", "json",
    )  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    assert "--no-verify" in json.loads(applied.stdout)["overrides"]
    record = next((repo / "history").glob("*.yaml"))
    assert "overrides:\n  - '--no-verify'\n" in record.read_text()


def test_a_tag_moved_to_a_forged_commit_fails_every_check_and_no_plan_is_made_from_it(
    tmp_path: Path, tenant: tuple[str, SyncGraph]
) -> None:
    url, _ = tenant
    repo, attacker = signed_backups(tmp_path, tenant, 1), ssh_key(tmp_path, "attacker")
    backup = StateRepo.open(repo).backups()[0]
    forged = forge(repo, backup.name, backup.commit, attacker)
    code, out, _ = verify(repo)
    assert code == 1, out
    assert "its signature does not verify" in out
    assert f"the tag names commit {forged[:12]}, its manifest {backup.commit[:12]}" in out
    assert "tenant-state/ tree is" in out
    assert f"commit {forged[:12]} is not on the history of any branch" in out
    refused = run_main("plan", "--repo", repo, "--graph-url", url, "--backup", backup.id, "-o", tmp_path / "p.json")
    assert refused.returncode == 1 and f"{backup.name} fails verification" in refused.stderr
    assert not (tmp_path / "p.json").exists()
    # Unsigned, the same forgery says so first.
    forge(repo, backup.name, backup.commit, None)
    code, out, _ = verify(repo, "--backup", backup.id)
    assert code == 1 and "unsigned" in out


def test_a_rewritten_history_leaves_the_backup_off_the_branch(tmp_path: Path, tenant: tuple[str, SyncGraph]) -> None:
    repo = signed_backups(tmp_path, tenant, 1)
    backup = StateRepo.open(repo).backups()[0]
    # The branch is rewritten (the snapshot commit replaced by an edited one); the tag still names the old commit.
    git(repo, "reset", "-q", "--hard", f"{backup.commit}~1")
    git(repo, "checkout", "-q", backup.commit, "--", "tenant-state")
    git(repo, "commit", "-q", "-m", "Snapshot (rewritten)")
    code, out, document = verify(repo)
    assert code == 1
    assert (
        document["backups"][0]["problems"]
        == [  # type: ignore[index]
            f"commit {backup.commit[:12]} is not on the history of any branch: the history was rewritten, or the tag "
            "was moved to a commit of its own"
        ]
    )  # the signature, manifest and counts are still good: only the history says so
    # A branch that still holds the commit (a drift branch, say) keeps it verifiable, unless --branch names another.
    git(repo, "branch", "kept", backup.commit)
    assert verify(repo)[0] == 0
    code, out, _ = verify(repo, "--branch", "main")
    assert code == 1 and f"commit {backup.commit[:12]} is not on the history of main" in out
    assert run_main("verify", "--repo", repo, "--branch", "no-such-branch").returncode == 1


def test_tags_deleted_or_re_pointed_on_the_remote_are_named(tmp_path: Path, tenant: tuple[str, SyncGraph]) -> None:
    repo = signed_backups(tmp_path, tenant, 2)
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(remote)], check=True)
    git(repo, "remote", "add", "origin", str(remote))
    newer, older = StateRepo.open(repo).backups()
    code, out, _ = verify(repo, "--remote", "origin")
    assert code == 0, out
    assert "compared with origin" in out
    git(remote, "tag", "-d", older.name)
    git(remote, "tag", "-f", "-a", "-m", "moved", newer.name, older.commit)
    code, out, document = verify(repo, "--remote", "origin")
    assert code == 1
    assert "not on origin: deleted there, or never pushed" in out
    assert f"re-pointed on origin: there it names commit {older.commit[:12]}, here {newer.commit[:12]}" in out
    assert [b["good"] for b in document["backups"]] == [False, False]  # type: ignore[index]


def test_signing_without_a_key_fails_the_snapshot_and_publishes_nothing(
    tmp_path: Path, tenant: tuple[str, SyncGraph]
) -> None:
    url, _ = tenant
    repo = signing_repo(tmp_path, None)
    before = git(repo, "rev-parse", "HEAD")
    env = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}  # no signing key from the machine
    failed = run_main("snapshot", "--repo", repo, "--graph-url", url, env=env)
    assert failed.returncode == 1
    assert "could not sign backup tag backup/" in failed.stderr and "user.signingkey" in failed.stderr
    assert git(repo, "tag") == "" and git(repo, "rev-parse", "HEAD") == before
    assert git(repo, "status", "--porcelain") == ""


@pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg signs these tags")
def test_gpg_signed_backups_verify_against_the_keyring(
    tmp_path: Path, tenant: tuple[str, SyncGraph], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = tenant
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(home))
    subprocess.run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "Backups <backups@example.com>", "ed25519", "sign"],
        check=True,
        capture_output=True,
    )
    listing = subprocess.run(["gpg", "--with-colons", "--list-keys"], check=True, capture_output=True, text=True)
    fingerprint = next(line.split(":")[9] for line in listing.stdout.splitlines() if line.startswith("fpr:"))
    repo = signing_repo(tmp_path, None, signing="gpg")
    git(repo, "config", "user.signingkey", fingerprint)
    assert snapshot(repo, url).returncode == 0
    code, out, _ = verify(repo)
    assert code == 0, out
    assert "Good signature from" in out
