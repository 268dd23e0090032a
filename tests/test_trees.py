"""Trees built in process for a change are the trees git itself builds for the same files."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

from entra_gitops.state.gitstore import StateRepo, TreeChange
from entra_gitops.state.trees import Entry, build_trees, parse_listing

WHEN = dt.datetime(2026, 11, 21, 23, 0, tzinfo=dt.UTC)

# Names whose order in a tree is git's own: "a.yaml" and "a-b" before the folder "a", which sorts as "a/".
FIRST = {
    "entra-gitops.yaml": b"tenantId: null\n",
    "tenant-state/users/a.yaml": b"id: a\n",
    "tenant-state/users/a-b.yaml": b"id: a-b\n",
    "tenant-state/users/a/nested.yaml": b"nested\n",
    "tenant-state/users/b.yaml": b"id: b\n",
    "tenant-state/groups/g.yaml": b"id: g\n",
    "tenant-state/deleted/users/d.yaml": b"id: d\n",
    "README.md": b"# state\n",
}


def git(cwd: Path, *args: str, data: bytes | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, input=data, capture_output=True, check=True).stdout.decode()


def git_tree_of(files: dict[str, bytes], where: Path) -> str:
    """The tree git builds for `files`: written to a work tree, `git add -A`, `git write-tree`."""
    git(where.parent, "init", "-q", where.name)
    for path, content in files.items():
        (where / path).parent.mkdir(parents=True, exist_ok=True)
        (where / path).write_bytes(content)
    git(where, "add", "-A")
    return git(where, "write-tree").strip()


def ours(store: StateRepo, files: dict[str, bytes], change: TreeChange) -> str:
    commit = store.write_commit(files, change, "change\n", WHEN)
    store.publish(commit)
    return git(store.root, "rev-parse", f"{commit}^{{tree}}").strip()


def test_a_first_commit_and_a_change_give_gits_own_trees(tmp_path: Path) -> None:
    store = StateRepo.open(tmp_path / "ours", create=True)
    first = ours(store, FIRST, TreeChange(added=tuple(FIRST), modified=(), removed=()))
    assert first == git_tree_of(FIRST, tmp_path / "git1")

    # Modified, added in a new folder, removed, and a folder (deleted/users) emptied so it goes too.
    second = {k: v for k, v in FIRST.items() if k != "tenant-state/deleted/users/d.yaml"}
    second["tenant-state/users/b.yaml"] = b"id: b\nchanged: true\n"
    second["tenant-state/namedLocations/n.yaml"] = b"id: n\n"
    change = TreeChange(
        added=("tenant-state/namedLocations/n.yaml",),
        modified=("tenant-state/users/b.yaml",),
        removed=("tenant-state/deleted/users/d.yaml",),
    )
    tree = ours(store, second, change)
    assert tree == git_tree_of(second, tmp_path / "git2")
    assert "tenant-state/deleted" not in parse_listing(git(store.root, "ls-tree", "-r", "-t", "-z", "HEAD"))
    git(store.root, "fsck", "--strict", "--no-dangling")


def test_untouched_folders_keep_their_tree_and_modes(tmp_path: Path) -> None:
    listing = {
        "bin": Entry("040000", "1" * 40),
        "bin/run": Entry("100755", "2" * 40),
        "link": Entry("120000", "3" * 40),
        "tenant-state": Entry("040000", "4" * 40),
        "tenant-state/users": Entry("040000", "5" * 40),
        "tenant-state/users/a.yaml": Entry("100644", "6" * 40),
    }
    built = build_trees(listing, {"tenant-state/users/b.yaml": "7" * 40}, ())
    # users/, tenant-state/ and the root are new; bin/ is not written again.
    assert len(built.objects) == 3
    root = dict(built.objects)[built.root]
    assert b"40000 bin\0" + bytes.fromhex("1" * 40) in root
    assert b"120000 link\0" + bytes.fromhex("3" * 40) in root
