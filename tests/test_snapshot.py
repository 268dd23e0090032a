"""Snapshots into real git repositories: atomic, canonical and quiet, secret-free, retained, listed."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import git
import pytest
import yaml
from click.testing import CliRunner
from conftest import ENTRA_GITOPS, run_main, served, take_snapshot_of

from entra_gitops.cli.main import cli
from entra_gitops.emulator import Emulator, create_emulator
from entra_gitops.emulator.limits import Faults, parse_faults
from entra_gitops.emulator.seed import SeedLoader, read_seed
from entra_gitops.model import canonical
from entra_gitops.model.errors import GraphError
from entra_gitops.model.registry import default_registry
from entra_gitops.model.settings import CONFIG_FILE, DEFAULT_CONFIG_TEXT, Config
from entra_gitops.state.gitstore import BlobWriter, RepositoryError, StateRepo
from entra_gitops.state.paths import object_file_name
from entra_gitops.state.snapshot import IncompleteReadError, SnapshotOutcome

REGISTRY = default_registry()
T0 = dt.datetime(2026, 11, 21, 23, 0, tzinfo=dt.UTC)


def new_repo(path: Path) -> StateRepo:
    return StateRepo.open(path, create=True, initial_files={CONFIG_FILE: DEFAULT_CONFIG_TEXT.encode()})


def snap(
    app: Emulator, store: StateRepo, when: dt.datetime = T0, config: Config | None = None, types: tuple[str, ...] = ()
) -> SnapshotOutcome:
    return take_snapshot_of(app, store, when, config, types)


def state_files(store: StateRepo) -> dict[str, bytes]:
    return {
        p.relative_to(store.root).as_posix(): p.read_bytes()
        for p in sorted((store.root / "tenant-state").rglob("*.yaml"))
    }


def refs(store: StateRepo) -> tuple[str | None, list[str]]:
    return store.head, sorted(t.name for t in store.repo.tags)


def stored_objects(store: StateRepo) -> tuple[set[str], set[str]]:
    """Every object in the repository's store, and the files of its pack folder."""
    listed = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch-check=%(objectname)"],
        cwd=store.root, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return set(listed.split()), {p.name for p in (store.root / ".git/objects/pack").iterdir()}


# -- the happy path ---------------------------------------------------------------------------


def test_a_snapshot_commits_one_file_per_object_and_tags_it(tmp_path: Path) -> None:
    app = create_emulator("demo")
    store = new_repo(tmp_path / "state")
    outcome = snap(app, store)

    files = state_files(store)
    tenant = app.tenant
    user_ids = set(tenant.objects(REGISTRY.get("user")))
    assert {p for p in files if p.startswith("tenant-state/users/")} == {
        f"tenant-state/users/{i}.yaml" for i in user_ids
    }
    deleted_user = next(iter(tenant.deleted["user"]))
    assert f"tenant-state/deleted/users/{deleted_user}.yaml" in files
    assert "tenant-state/authorizationPolicy.yaml" in files
    assert "tenant-state/organization.yaml" in files
    assert outcome.created_commit
    assert outcome.backup.name == "backup/20261121T230000Z"
    assert outcome.backup.complete
    assert outcome.backup.tenant == tenant.tenant_id
    assert outcome.backup.counts["user"] == len(user_ids)
    assert store.dirty_state_files() == []
    tag = store.repo.tags["backup/20261121T230000Z"]
    assert tag.tag is not None and "complete: true" in tag.tag.message
    assert tag.commit.hexsha == store.head


def test_group_members_are_sorted_id_lists_inside_the_group(tmp_path: Path) -> None:
    app = create_emulator("demo")
    store = new_repo(tmp_path / "state")
    snap(app, store)
    key = ("group", "members")
    group_id, members = next((g, m) for g, m in app.tenant.links[key].items() if len(m) > 2)
    data = canonical.load((store.root / f"tenant-state/groups/{group_id}.yaml").read_bytes(), "group")
    assert data["members"] == sorted(members)


def test_an_unchanged_tenant_gets_a_new_tag_on_the_same_commit(tmp_path: Path) -> None:
    app = create_emulator("demo")
    store = new_repo(tmp_path / "state")
    first = snap(app, store)
    second = snap(app, store, T0 + dt.timedelta(days=1))
    assert not second.created_commit
    assert second.change.empty
    assert second.backup.commit == first.backup.commit
    assert len(list(store.repo.iter_commits())) == 2  # the repository's first commit and the snapshot
    assert [b.id for b in store.backups()] == ["20261122T230000Z", "20261121T230000Z"]


def test_only_changed_objects_are_written(tmp_path: Path) -> None:
    app = create_emulator("demo")
    store = new_repo(tmp_path / "state")
    snap(app, store)
    user = next(iter(app.tenant.objects(REGISTRY.get("user")).values()))
    app.tenant.update(REGISTRY.get("user"), user, {"jobTitle": "Chief Drift Officer"})  # as Graph records a PATCH
    outcome = snap(app, store, T0 + dt.timedelta(hours=1))
    assert outcome.change.modified == (f"tenant-state/users/{user['id']}.yaml",)
    assert outcome.change.added == outcome.change.removed == ()
    commit = store.repo.head.commit
    assert list(commit.stats.files) == [f"tenant-state/users/{user['id']}.yaml"]
    assert "user: +0 ~1 -0" in commit.message


def test_same_tenant_gives_byte_identical_files(tmp_path: Path) -> None:
    first, second = new_repo(tmp_path / "a"), new_repo(tmp_path / "b")
    snap(create_emulator("demo"), first)
    snap(create_emulator("demo"), second, T0 + dt.timedelta(days=3))
    assert state_files(first) == state_files(second)


def test_volatile_noise_is_not_exported(tmp_path: Path) -> None:
    app = create_emulator("demo")
    store = new_repo(tmp_path / "state")
    snap(app, store)
    for user in app.tenant.objects(REGISTRY.get("user")).values():
        user["signInActivity"] = {"lastSignInDateTime": "2026-11-22T08:00:00Z"}
        user["lastPasswordChangeDateTime"] = "2026-11-22T08:00:00Z"
        user["onPremisesLastSyncDateTime"] = "2026-11-22T08:00:00Z"
    text = b"".join(state_files(store).values())
    assert b"signInActivity" not in text and b"lastPasswordChangeDateTime" not in text
    assert snap(app, store, T0 + dt.timedelta(hours=1)).change.empty


def test_yaml_1_1_readers_read_every_value_back(tmp_path: Path) -> None:
    app = create_emulator("demo")
    store = new_repo(tmp_path / "state")
    snap(app, store)
    files = state_files(store)
    for path, content in files.items():
        assert yaml.safe_load(content) == canonical.load(content, path), path
    norway = [canonical.load(c, p) for p, c in files.items() if b"usageLocation: 'NO'" in c]
    assert norway and all(u["usageLocation"] == "NO" for u in norway)


# -- atomicity --------------------------------------------------------------------------------


def test_a_failed_read_makes_no_commit_and_no_tag(tmp_path: Path) -> None:
    app = create_emulator("demo")
    store = new_repo(tmp_path / "state")
    snap(app, store)
    before = refs(store)
    app.faults = Faults(parse_faults("503,path=groups/delta"))
    user = next(iter(app.tenant.objects(REGISTRY.get("user")).values()))
    app.tenant.update(REGISTRY.get("user"), user, {"city": "Bergen"})
    location = next(iter(app.tenant.objects(REGISTRY.get("namedLocation")).values()))
    app.tenant.update(REGISTRY.get("namedLocation"), location, {"displayName": "renamed the same day"})
    objects = stored_objects(store)
    with pytest.raises(GraphError):
        snap(app, store, T0 + dt.timedelta(hours=1))
    assert refs(store) == before
    # The renamed location's file went into the object store as it was rendered, and out again with the failure.
    assert stored_objects(store) == objects
    assert store.dirty_state_files() == []


def test_a_type_that_suddenly_reads_empty_is_a_failed_read(tmp_path: Path) -> None:
    app = create_emulator("demo")
    store = new_repo(tmp_path / "state")
    snap(app, store)
    before = refs(store)
    users = REGISTRY.get("user")
    for user_id in list(app.tenant.objects(users)):
        app.tenant.delete(users, user_id)
        app.tenant.purge(users, user_id)
    # A type read in full (no delta): its changed file goes into the object store as it is rendered.
    location = next(iter(app.tenant.objects(REGISTRY.get("namedLocation")).values()))
    app.tenant.update(REGISTRY.get("namedLocation"), location, {"displayName": "renamed the same day"})
    objects = stored_objects(store)
    with pytest.raises(IncompleteReadError, match="suspect read.*user: 0 read, backup 20261121T230000Z had 32"):
        snap(app, store, T0 + dt.timedelta(hours=1))
    assert refs(store) == before
    assert stored_objects(store) == objects  # the refused read's blobs were never kept


def test_a_dirty_tenant_state_is_refused_with_the_reason(tmp_path: Path) -> None:
    app = create_emulator("demo")
    store = new_repo(tmp_path / "state")
    snap(app, store)
    before = refs(store)
    edited = next((store.root / "tenant-state/users").iterdir())
    edited.write_text(edited.read_text() + "jobTitle: hand-edited\n")
    user = next(iter(app.tenant.objects(REGISTRY.get("user")).values()))
    app.tenant.update(REGISTRY.get("user"), user, {"city": "Bergen"})  # something to commit, were it allowed
    with pytest.raises(RepositoryError, match="uncommitted changes"):
        snap(app, store, T0 + dt.timedelta(hours=1))
    assert refs(store) == before
    assert edited.read_text().endswith("jobTitle: hand-edited\n")  # the edit is still there


def test_blobs_written_as_rendered_are_in_the_store_once_finished_and_gone_when_aborted(tmp_path: Path) -> None:
    store = new_repo(tmp_path / "state")
    objects = stored_objects(store)
    kept = BlobWriter(store)
    ids = [kept(b"kept: %d\n" % n) for n in range(3)]
    kept.finish()
    assert store.read_blobs(ids) == {i: b"kept: %d\n" % n for n, i in enumerate(ids)}
    dropped = BlobWriter(store)
    gone = dropped(b"dropped\n")
    dropped.abort()
    after = stored_objects(store)
    assert after[0] == objects[0] | set(ids) and gone not in after[0]
    assert not any(name.startswith("tmp_") for name in after[1])


def test_blobs_the_store_holds_already_are_not_sent_to_git_again(tmp_path: Path) -> None:
    store = new_repo(tmp_path / "state")
    first = BlobWriter(store)
    held = first(b"held\n")
    first.finish()
    again = BlobWriter(store)
    again.know([held])
    assert again(b"held\n") == held and again(b"new\n") != held
    again.finish()
    assert (first.sent, again.sent) == (1, 1)  # a --full read of an unchanged tenant sends git nothing
    assert store.read_blobs([held]) == {held: b"held\n"}


def test_an_interrupted_snapshot_leaves_earlier_backups_untouched(tmp_path: Path) -> None:
    repo = tmp_path / "state"
    with served(latency_ms=200) as (url, app):  # 200 ms an answer, so the run can be interrupted midway
        first = run_main("snapshot", "--repo", repo, "--graph-url", url, "--type", "organization")
        assert first.returncode == 0, first.stderr
        store = StateRepo.open(repo)
        before = refs(store)
        earlier = app.request_count
        process = subprocess.Popen(
            [*ENTRA_GITOPS, "snapshot", "--repo", str(repo), "--graph-url", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        while app.request_count < earlier + 3:  # its tenant check is done and the reads have begun
            assert process.poll() is None, process.communicate()
            time.sleep(0.01)
        time.sleep(0.1)  # waiting on the slow emulator
        process.send_signal(2)  # SIGINT, as Ctrl+C sends
        process.wait(timeout=30)
    assert process.returncode != 0
    assert refs(StateRepo.open(repo)) == before


# -- secrets and paths ------------------------------------------------------------------------

SECRET_TEXT = "Zx81Q~abcdefghijklmnopqrstuvwxyz0123456"
KEY_MATERIAL = "MIIC9jCCAd6gAwIBAgIQKeyMaterialThatMustNeverBeWritten"
PASSWORD = "CorrectHorseBatteryStaple!42"
STRAY = "Ab34Q~ZYXWVUTSRQPONMLKJIHGFEDCBA9876543"


def secret_seed() -> dict[str, Any]:
    data, _ = read_seed("demo")
    seed = json.loads(json.dumps(data, default=str))
    app = seed["applications"][0]
    app["passwordCredentials"] = [
        {"keyId": "3f1e9b8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "displayName": "ci", "hint": "Zx8", "secretText": SECRET_TEXT}
    ]
    app["keyCredentials"] = [
        {
            "keyId": "4f1e9b8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
            "type": "AsymmetricX509Cert",
            "usage": "Verify",
            "key": KEY_MATERIAL,
        }
    ]
    app["notes"] = f"temporary secret for the pipeline: {STRAY}"
    seed["users"][0]["passwordProfile"] = {"password": PASSWORD, "forceChangePasswordNextSignIn": True}
    return seed


def test_no_secret_reaches_files_history_or_output(tmp_path: Path) -> None:
    app = Emulator(SeedLoader(REGISTRY, secret_seed(), "secret seed").load())
    store = new_repo(tmp_path / "state")
    outcome = snap(app, store)
    assert [r.path for r in outcome.redactions] == ["notes"]
    everything = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch"], cwd=store.root, capture_output=True, check=True
    ).stdout
    working_tree = b"".join(p.read_bytes() for p in store.root.rglob("*") if p.is_file() and ".git" not in p.parts)
    for secret in (SECRET_TEXT, KEY_MATERIAL, PASSWORD, STRAY):
        assert secret.encode() not in everything
        assert secret.encode() not in working_tree
        assert secret not in repr(outcome)
    app_file = canonical.load(
        (
            store.root
            / f"tenant-state/applications/{app.tenant.all_objects(REGISTRY.get('application')).__next__()['id']}.yaml"
        ).read_bytes(),
        "app",
    )
    assert app_file["passwordCredentials"] == [
        {"keyId": "3f1e9b8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "displayName": "ci", "hint": "Zx8"}
    ]


def test_no_secret_reaches_the_commands_output(tmp_path: Path) -> None:
    with served(secret_seed()) as (url, _):
        result = subprocess.run(
            [*ENTRA_GITOPS, "snapshot", "--repo", str(tmp_path / "state"), "--graph-url", url],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stderr
    assert "redacted a value that looked like a client secret: application" in result.stdout
    for secret in (SECRET_TEXT, KEY_MATERIAL, PASSWORD, STRAY):
        assert secret not in result.stdout + result.stderr


def test_ids_that_are_not_safe_file_names_are_encoded_without_collisions(tmp_path: Path) -> None:
    data, _ = read_seed("demo")
    seed = json.loads(json.dumps(data, default=str))
    grant = seed["oauth2PermissionGrants"][0]
    upper, lower = dict(grant, id="AbCdEfGh-Grant_Id"), dict(grant, id="abcdefgh-grant_id")
    hostile = dict(grant, id="../../../etc/passwd")
    seed["oauth2PermissionGrants"] = [upper, lower, hostile]
    store = new_repo(tmp_path / "state")
    snap(Emulator(SeedLoader(REGISTRY, seed, "ids").load()), store)
    names = sorted(p.name for p in (store.root / "tenant-state/oauth2PermissionGrants").iterdir())
    assert len(names) == 3
    assert len({n.lower() for n in names}) == 3
    assert all("/" not in n and not n.startswith(".") for n in names)
    assert {object_file_name(i) + ".yaml" for i in (upper["id"], lower["id"], hostile["id"])} == set(names)
    assert not (tmp_path / "etc").exists()


# -- retention and listing --------------------------------------------------------------------


def test_retention_keeps_the_newest_five_and_history(tmp_path: Path) -> None:
    app = create_emulator("demo")
    store = new_repo(tmp_path / "state")
    users = app.tenant.objects(REGISTRY.get("user"))
    someone = next(iter(users.values()))
    for day in range(7):
        app.tenant.update(REGISTRY.get("user"), someone, {"jobTitle": f"Title {day}"})
        snap(app, store, T0 + dt.timedelta(days=day))
    kept = [b.id for b in store.backups()]
    assert kept == [f"202611{d}T230000Z" for d in (27, 26, 25, 24, 23)]
    assert len(list(store.repo.iter_commits())) == 8  # every snapshot's commit is still there


def test_incomplete_backups_do_not_count_for_retention(tmp_path: Path) -> None:
    app = create_emulator("demo")
    store = new_repo(tmp_path / "state")
    snap(app, store, config=Config(retention=1))
    partial = snap(app, store, T0 + dt.timedelta(hours=1), config=Config(retention=1), types=("user",))
    assert not partial.backup.complete
    assert [b.id for b in store.backups()] == ["20261122T000000Z", "20261121T230000Z"]


def test_backups_lists_newest_first_as_text_and_json(tmp_path: Path) -> None:
    app = create_emulator("demo")
    store = new_repo(tmp_path / "state")
    snap(app, store)
    snap(app, store, T0 + dt.timedelta(days=1))
    runner = CliRunner()
    text = runner.invoke(cli, ["backups", "--repo", str(store.root)])
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[1].split()[:3] == ["20261122T230000Z", "2026-11-22", "23:00:00"]
    assert lines[2].split()[0] == "20261121T230000Z"
    listed = json.loads(runner.invoke(cli, ["backups", "--repo", str(store.root), "--format", "json"]).output)
    assert [b["id"] for b in listed] == ["20261122T230000Z", "20261121T230000Z"]
    assert listed[0]["commit"] == store.head
    assert listed[0]["complete"] is True
    assert listed[0]["counts"]["user"] == app.tenant.count(REGISTRY.get("user"))


def test_backups_in_a_folder_that_is_no_repository_is_one_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["backups", "--repo", str(tmp_path)])
    assert result.exit_code == 1
    assert "is not a git repository" in result.output


def test_the_snapshot_command_against_a_separate_emulator(tmp_path: Path, emulator_process: str) -> None:
    repo = tmp_path / "fresh"
    result = subprocess.run(
        [*ENTRA_GITOPS, "snapshot", "--repo", str(repo), "--graph-url", emulator_process],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Backup backup/" in result.stdout and "on new commit" in result.stdout
    assert "requests" in result.stdout
    listed = subprocess.run([*ENTRA_GITOPS, "backups", "--repo", str(repo)], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0
    assert len(listed.stdout.splitlines()) == 2
    assert git.Repo(repo).head.commit.message.startswith("Snapshot: ")


def test_the_work_tree_follows_a_commit_by_its_change_only(tmp_path: Path) -> None:
    # A snapshot writes and indexes only what changed; git must see the same work tree a checkout gives.
    from entra_gitops.state.gitstore import TreeChange, blob_id

    store = StateRepo.open(tmp_path / "state", create=True)
    when = dt.datetime(2026, 11, 21, 23, 0, tzinfo=dt.UTC)
    first = {
        "tenant-state/users/a.yaml": b"a: 1\n",
        "tenant-state/users/b.yaml": b"b: 1\n",
        "tenant-state/deleted/users/c.yaml": b"c: 1\n",
    }
    store.commit_change(first, TreeChange(tuple(sorted(first)), (), ()), "first", when)
    second = {"tenant-state/users/a.yaml": b"a: 2\n", "tenant-state/groups/g.yaml": b"g: 1\n"}
    change = TreeChange(
        added=("tenant-state/groups/g.yaml",),
        modified=("tenant-state/users/a.yaml",),
        removed=("tenant-state/deleted/users/c.yaml", "tenant-state/users/b.yaml"),
    )
    commit = store.write_commit(second, change, "second", when)
    store.publish(commit, change=change, written={p: blob_id(c) for p, c in second.items()})
    assert store.head == commit
    assert store.dirty_files(".") == []  # index and work tree agree with HEAD, nothing untracked
    assert (store.root / "tenant-state/users/a.yaml").read_bytes() == b"a: 2\n"
    assert (store.root / "tenant-state/groups/g.yaml").read_bytes() == b"g: 1\n"
    assert not (store.root / "tenant-state/users/b.yaml").exists()
    assert not (store.root / "tenant-state/deleted").exists()  # the folders it left empty are gone too
    listed = subprocess.run(["git", "ls-files", "-s"], cwd=store.root, capture_output=True, text=True, check=True)
    assert [line.split("\t")[1] for line in listed.stdout.splitlines()] == [
        "tenant-state/groups/g.yaml",
        "tenant-state/users/a.yaml",
    ]
