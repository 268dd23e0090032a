"""Git tree objects for a commit that changes a listing, built in process: only folders the change touches (pure).

A folder of 300,000 state files is one tree object. Building it through an index (read-tree of the whole
commit, update-index, write-tree) costs in proportion to every file of the repository; here the parent's
listing (from `git ls-tree -r -t`) is patched, and only the touched folders and their ancestors are hashed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from entra_gitops.state.layout import STATE_DIR

TREE_MODE = "040000"
FILE_MODE = "100644"
FILE_MODE_RAW = FILE_MODE.encode()


class Entry(NamedTuple):
    """One entry of a tree listing: git's mode (as ls-tree prints it) and object id."""

    mode: str
    object_id: str


class BuiltTrees(NamedTuple):
    """The new root tree's id, and every tree object to store (id, raw content), children before parents."""

    root: str
    objects: tuple[tuple[str, bytes], ...]


def parse_listing(text: str) -> dict[str, Entry]:
    """`git ls-tree -r -t -z --full-tree` output as path -> Entry (trees and files alike)."""
    found: dict[str, Entry] = {}
    for record in filter(None, text.split("\0")):
        meta, _, path = record.partition("\t")
        mode, _, rest = meta.partition(" ")
        found[path] = Entry(mode, rest.rpartition(" ")[2])
    return found


def state_blobs(listing: Mapping[str, Entry]) -> dict[str, str]:
    """path -> blob id of the files under tenant-state/ in a listing: what `StateRepo.tree_blobs` gives."""
    prefix = f"{STATE_DIR}/"
    return {
        path: entry.object_id for path, entry in listing.items() if path.startswith(prefix) and entry.mode != TREE_MODE
    }


def tree_object_id(content: bytes) -> str:
    """The id git gives a tree object with this content."""
    return hashlib.sha1(b"tree %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


def _order(item: tuple[str, Entry]) -> bytes:
    # Git orders a tree's entries by name bytes, a folder's name as if it ended in "/".
    name, entry = item
    return name.encode() + (b"/" if entry.mode == TREE_MODE else b"")


def _content(entries: Mapping[str, Entry]) -> bytes:
    # Without folders among them, names sort as text: code point order is UTF-8's byte order.
    folders = any(entry.mode == TREE_MODE for entry in entries.values())
    ordered = sorted(entries.items(), key=_order) if folders else sorted(entries.items())
    return b"".join(
        [b"%s %s\0%s" % (_raw_mode(e.mode), name.encode(), bytes.fromhex(e.object_id)) for name, e in ordered]
    )


def _raw_mode(mode: str) -> bytes:
    # A tree object writes a folder's mode as 40000: ls-tree's 040000 without its leading zero.
    return FILE_MODE_RAW if mode == FILE_MODE else mode.lstrip("0").encode()


def build_trees(listing: Mapping[str, Entry], written: Mapping[str, str], removed: Iterable[str]) -> BuiltTrees:
    """The trees of `listing` (the parent commit's, trees included; empty for a first commit) with `written`
    files (path -> blob id, as regular files) added or replaced and `removed` files gone; a folder left empty
    goes too, as git has no empty trees."""
    gone = tuple(removed)
    touched = {""}
    for path in (*written, *gone):
        folder = _parent(path)
        while folder not in touched:
            touched.add(folder)
            folder = _parent(folder)
    children: dict[str, dict[str, Entry]] = {folder: {} for folder in touched}
    for path, entry in listing.items():
        folder, _, name = path.rpartition("/")
        if folder in children:
            children[folder][name] = entry
    for path in gone:
        folder, _, name = path.rpartition("/")
        children[folder].pop(name, None)
    for path, blob in written.items():
        folder, _, name = path.rpartition("/")
        children[folder][name] = Entry(FILE_MODE, blob)
    objects: list[tuple[str, bytes]] = []
    root = ""
    for folder in sorted(touched, key=lambda f: f.count("/") + bool(f), reverse=True):
        parent, _, name = folder.rpartition("/")
        if folder and not children[folder]:
            children[parent].pop(name, None)
            continue
        content = _content(children[folder])
        object_id = tree_object_id(content)
        objects.append((object_id, content))
        if folder:
            children[parent][name] = Entry(TREE_MODE, object_id)
        else:
            root = object_id
    return BuiltTrees(root, tuple(objects))
