"""The state repository: tenant-state/ trees committed through git fast-import, backup tags, retention."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import git
from gitdb import IStream

from entra_gitops.model import canonical
from entra_gitops.model.errors import EntraGitopsError, StateFileError
from entra_gitops.model.progress import Advance, counted
from entra_gitops.state.layout import STATE_DIR
from entra_gitops.state.trees import Entry, build_trees, parse_listing

BACKUP_PREFIX = "backup/"
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git's id of the tree with nothing in it
SIGNING_FORMATS = {"ssh": "ssh", "gpg": "openpgp"}  # entra-gitops.yaml's `signing` -> git's gpg.format
TIME_FORMAT = "%Y%m%dT%H%M%SZ"
FALLBACK_IDENTITY = ("entra-gitops", "entra-gitops@localhost")


class RepositoryError(EntraGitopsError):
    """The state repository is missing, dirty, or git refused an operation."""


def blob_id(content: bytes) -> str:
    """The object id git gives `content` as a blob, computed without running git."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class TreeChange(NamedTuple):
    """What writing a tree changed, by path under tenant-state/."""

    added: tuple[str, ...]
    modified: tuple[str, ...]
    removed: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not (self.added or self.modified or self.removed)


@dataclass(frozen=True)
class Backup:
    """One backup tag: its name, when, which commit, and what its message recorded."""

    name: str
    time: dt.datetime
    commit: str
    tenant: str | None
    tool: str | None
    complete: bool
    counts: Mapping[str, int]
    deleted: Mapping[str, int]
    delta: Mapping[str, DeltaLink] = field(default_factory=lambda: MappingProxyType({}))  # where each type continues
    read_by: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # type -> "delta" or "full"
    manifest: Manifest | None = None  # what the record says the tag names: checked by `verify`
    signed: bool = False  # the tag object carries a signature (whether it verifies is `verify`'s to say)
    tag: str | None = None  # the tag object's id

    @property
    def id(self) -> str:
        return self.name[len(BACKUP_PREFIX) :]


class Manifest(NamedTuple):
    """What a backup's record says its tag names: the commit and that commit's tenant-state/ tree."""

    commit: str
    tree: str


def _manifest(raw: Any) -> Manifest | None:
    """The record's manifest; anything not shaped as one is none (and `verify` says so)."""
    if isinstance(raw, Mapping) and isinstance(raw.get("commit"), str) and isinstance(raw.get("tree"), str):
        return Manifest(raw["commit"], raw["tree"])
    return None


class DeltaLink(NamedTuple):
    """A type's delta link as a backup recorded it, with the basis (schema and tool) its files were made by."""

    link: str
    basis: str


def _delta_links(raw: Any) -> Mapping[str, DeltaLink]:
    """The record's delta links; anything not shaped as one is dropped, so that type is read in full."""
    if not isinstance(raw, Mapping):
        return MappingProxyType({})
    found = {
        str(name): DeltaLink(entry["link"], entry["basis"])
        for name, entry in raw.items()
        if isinstance(entry, Mapping) and isinstance(entry.get("link"), str) and isinstance(entry.get("basis"), str)
    }
    return MappingProxyType(found)


def backup_name(moment: dt.datetime) -> str:
    return BACKUP_PREFIX + moment.astimezone(dt.UTC).strftime(TIME_FORMAT)


def backup_message(name: str, record: Mapping[str, Any]) -> str:
    """The annotated tag's message: a title line, then the record as canonical YAML."""
    return f"entra-gitops {name}\n\n" + canonical.dump(dict(record)).decode()


def parse_backup(name: str, commit: str, message: str, *, signed: bool = False, tag: str | None = None) -> Backup:
    """A Backup from its tag (its message without the signature); a message that is not ours still lists, as
    incomplete."""
    _, _, body = message.partition("\n\n")
    try:
        record = canonical.load(body.strip() + "\n", f"tag {name}") if body.strip() else {}
    except StateFileError:
        record = {}
    moment = dt.datetime.strptime(name[len(BACKUP_PREFIX) :], TIME_FORMAT).replace(tzinfo=dt.UTC)
    return Backup(
        name=name,
        time=moment,
        commit=commit,
        tenant=record.get("tenant"),
        tool=record.get("tool"),
        complete=record.get("complete") is True,
        counts=dict(record.get("counts") or {}),
        deleted=dict(record.get("deleted") or {}),
        delta=_delta_links(record.get("delta")),
        read_by=MappingProxyType({str(k): str(v) for k, v in (record.get("read") or {}).items()})
        if isinstance(record.get("read"), Mapping)
        else MappingProxyType({}),
        manifest=_manifest(record.get("manifest")),
        signed=signed,
        tag=tag,
    )


class _TagRef(NamedTuple):
    name: str
    sha: str


def _stamp(when: dt.datetime) -> dict[str, str]:
    """Author and committer dates of a commit made at `when`."""
    return {"GIT_COMMITTER_DATE": f"{int(when.timestamp())} +0000", "GIT_AUTHOR_DATE": f"{int(when.timestamp())} +0000"}


def _fast_import_data(content: bytes) -> bytes:
    return b"data %d\n" % len(content) + content + b"\n"


def _fed(process: subprocess.Popen[bytes], chunks: Iterable[bytes]) -> tuple[bytes, bytes]:
    """Write `chunks` to a process's input as it reads them, then its output and errors once it is done."""
    assert process.stdin is not None
    try:
        for chunk in chunks:
            process.stdin.write(chunk)
    except BrokenPipeError:
        pass  # git stopped reading: its exit code and errors say why
    return process.communicate()


class BlobWriter:
    """Blobs into git's object store as a snapshot makes them, through one `git fast-import` stream (one pack),
    so that the run holds each object's blob id rather than its bytes.

    Nothing refers to the blobs until a commit does: a run that fails after writing some leaves at most objects
    no ref reaches, which `git gc` removes, and `abort` removes the temporary pack of a stream cut short.
    """

    def __init__(self, store: StateRepo) -> None:
        self._store = store
        self._process: subprocess.Popen[bytes] | None = None
        self._packs = Path(store.repo.git_dir) / "objects" / "pack"
        self._before: set[str] = set()
        self._known: frozenset[str] = frozenset()
        self.sent = 0  # blobs given to git: what the store did not hold already

    def know(self, blob_ids: Iterable[str]) -> None:
        """Blobs the store holds already (HEAD's): content with one of these ids is not written again."""
        self._known = frozenset(blob_ids)

    def __call__(self, content: bytes) -> str:
        """Write `content` as a blob (once the stream is finished) unless the store has it; return its id."""
        blob = blob_id(content)
        if blob in self._known:
            return blob
        if self._process is None:
            self._before = self._temporary()
            self._process = self._store._git_process("fast-import", "--quiet", "--done")
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(b"blob\n" + _fast_import_data(content))
            self.sent += 1
        except BrokenPipeError:
            self._fail()
        return blob

    def finish(self) -> None:
        """End the stream: every blob written is in the object store when this returns."""
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # git stopped reading: its exit code and errors say why
            process.stdin.write(b"done\n")
        _, err = process.communicate()
        if process.returncode:
            raise RepositoryError(f"git fast-import failed: {err.decode(errors='replace').strip()}")

    def abort(self) -> None:
        """Stop the stream without keeping anything of it (the run failed or was interrupted)."""
        process, self._process = self._process, None
        if process is None:
            return
        process.kill()
        process.communicate()
        self._clean()

    def _temporary(self) -> set[str]:
        return {p.name for p in self._packs.glob("tmp_*")} if self._packs.is_dir() else set()

    def _clean(self) -> None:
        for name in self._temporary() - self._before:
            (self._packs / name).unlink(missing_ok=True)

    def _fail(self) -> None:
        process, self._process = self._process, None
        assert process is not None
        _, err = process.communicate()
        self._clean()
        raise RepositoryError(f"git fast-import failed: {err.decode(errors='replace').strip() or 'it stopped reading'}")


# Above this many written files a work tree follows a commit through read-tree, which is faster in bulk.
FOLLOW_LIMIT = 20_000


class StateRepo:
    """A git repository holding tenant-state/; all git I/O of the tool goes through here."""

    def __init__(self, repo: git.Repo) -> None:
        self.repo = repo
        self.root = Path(repo.working_tree_dir or ".")

    @classmethod
    def open(cls, path: Path, *, create: bool = False, initial_files: Mapping[str, bytes] | None = None) -> StateRepo:
        """Open the repository at `path`; with `create`, initialise a missing one with a first commit."""
        try:
            return cls(git.Repo(path))
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            if not create:
                raise RepositoryError(
                    f"{path} is not a git repository", hint="run entra-gitops snapshot there once to create it"
                ) from None
        path.mkdir(parents=True, exist_ok=True)
        repo = git.Repo.init(path, initial_branch="main")
        store = cls(repo)
        for relative, content in (initial_files or {}).items():
            target = store.root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        if initial_files:
            repo.git.add("--", *initial_files)
        store._git("commit", "--allow-empty", "-q", "-m", "Start the entra-gitops state repository")
        return store

    # -- plumbing -----------------------------------------------------------------------------

    def _identity_env(self) -> dict[str, str]:
        reader = self.repo.config_reader()
        name = reader.get_value("user", "name", FALLBACK_IDENTITY[0])
        email = reader.get_value("user", "email", FALLBACK_IDENTITY[1])
        return {
            "GIT_AUTHOR_NAME": os.environ.get("GIT_AUTHOR_NAME", str(name)),
            "GIT_AUTHOR_EMAIL": os.environ.get("GIT_AUTHOR_EMAIL", str(email)),
            "GIT_COMMITTER_NAME": os.environ.get("GIT_COMMITTER_NAME", str(name)),
            "GIT_COMMITTER_EMAIL": os.environ.get("GIT_COMMITTER_EMAIL", str(email)),
        }

    def _git(
        self, *args: str, stdin: bytes | Iterable[bytes] | None = None, env: Mapping[str, str] | None = None
    ) -> str:
        """Run git; `stdin` is its input, whole or as chunks written while git reads them."""
        environment = {**self._identity_env(), **(env or {})}
        try:
            # git runs in a session of its own: a terminal's Ctrl+C or a CI cancel signals this process's
            # group, and this process decides when git may stop (never halfway through moving the tree).
            if stdin is None:
                return self.repo.git.execute(["git", *args], env=environment, start_new_session=True)
            process = self._git_process(*args, stdout=subprocess.PIPE, env=environment)
            out, err = process.communicate(stdin) if isinstance(stdin, bytes) else _fed(process, stdin)
            if process.returncode:
                raise RepositoryError(f"git {args[0]} failed: {err.decode(errors='replace').strip()}")
            return out.decode()
        except git.GitCommandError as err:
            detail = (err.stderr or "").strip().removeprefix("stderr: ").strip("'\n ")
            raise RepositoryError(f"git {args[0]} failed: {detail or err}") from None

    def _git_process(
        self, *args: str, stdout: int = subprocess.DEVNULL, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """git running with its input a pipe for the caller to write, in a session of its own (see _git)."""
        return subprocess.Popen(
            ["git", *args],
            cwd=self.root,
            env={**os.environ, **(env if env is not None else self._identity_env())},
            stdin=subprocess.PIPE,
            stdout=stdout,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

    @property
    def head(self) -> str | None:
        try:
            return self.repo.head.commit.hexsha
        except ValueError:
            return None

    @property
    def branch_ref(self) -> str:
        return self._git("symbolic-ref", "HEAD").strip()

    def tree_blobs(self, rev: str = "HEAD", prefix: str | tuple[str, ...] = STATE_DIR) -> dict[str, str]:
        """path -> blob id of every file under `prefix` (a folder or file, or several) at `rev`.

        Only HEAD may be missing (a repository without commits). A named commit is listed by plain git, without
        GitPython's long-lived cat-file process, so the listing may run beside other git work (a thread).
        """
        if rev == "HEAD" and self.head is None:
            return {}
        prefixes = (prefix,) if isinstance(prefix, str) else prefix
        listing = self._git("ls-tree", "-r", "-z", "--full-tree", rev, "--", *prefixes)
        blobs = {}
        for entry in filter(None, listing.split("\0")):
            meta, _, path = entry.partition("\t")
            blobs[path] = meta.split()[2]
        return blobs

    def tree_listing(self, rev: str = "HEAD") -> dict[str, Entry]:
        """Every path of `rev`'s tree, folders included, with its mode and object id (empty without commits)."""
        if rev == "HEAD" and self.head is None:
            return {}
        return parse_listing(self._git("ls-tree", "-r", "-t", "-z", "--full-tree", rev))

    def read_files(self, rev: str, prefix: str | tuple[str, ...] = STATE_DIR) -> dict[str, bytes]:
        """Every file under `prefix` (a folder or file, or several) at `rev`, read through one `git cat-file
        --batch` process."""
        blobs = self.tree_blobs(rev, prefix)
        contents = self.read_blobs(blobs.values())
        return {path: contents[blob] for path, blob in blobs.items()}

    def read_blobs(self, blob_ids: Iterable[str]) -> dict[str, bytes]:
        """blob id -> content for `blob_ids`, read through one `git cat-file --batch` process."""
        wanted = list(dict.fromkeys(blob_ids))
        found = self._cat_file(wanted)
        missing = [b for b, (kind, _) in zip(wanted, found, strict=True) if kind != b"blob"]
        if missing:
            raise RepositoryError(f"git has no blob {missing[0]}")
        return {b: content for b, (_, content) in zip(wanted, found, strict=True)}

    def _cat_file(self, objects: list[str]) -> list[tuple[bytes, bytes]]:
        """(type, content) of each object name (blob id, `rev:path`) through one `git cat-file --batch`;
        (b"missing", b"") for a name git does not know."""
        if not objects:
            return []
        process = subprocess.run(
            ["git", "cat-file", "--batch"],
            input="".join(f"{o}\n" for o in objects).encode(),
            cwd=self.root,
            capture_output=True,
            check=False,
            start_new_session=True,
        )
        if process.returncode:
            raise RepositoryError(f"git cat-file failed: {process.stderr.decode(errors='replace').strip()}")
        out = process.stdout
        found: list[tuple[bytes, bytes]] = []
        position = 0
        for _ in objects:
            header_end = out.index(b"\n", position)
            header = out[position:header_end].split()
            position = header_end + 1
            if len(header) != 3:
                found.append((b"missing", b""))
                continue
            size = int(header[2])
            found.append((header[1], out[position : position + size]))
            position += size + 1
        return found

    def files_with_line(self, rev: str, prefix: str, lines: Iterable[str]) -> set[str]:
        """Paths under `prefix` at `rev` holding any of `lines` as a whole line (`git grep`, no parsing)."""
        wanted = list(lines)
        patterns = [arg for line in wanted for arg in ("-e", line)]
        if not patterns:
            return set()
        process = subprocess.run(
            ["git", "grep", "-l", "-z", "-F", *patterns, rev, "--", prefix],
            cwd=self.root,
            capture_output=True,
            check=False,
            start_new_session=True,
        )
        if process.returncode not in (0, 1):  # 1: no file matched
            raise RepositoryError(f"git grep failed: {process.stderr.decode(errors='replace').strip()}")
        candidates = {entry.partition(":")[2] for entry in filter(None, process.stdout.decode().split("\0"))}
        # git grep matches anywhere in a line: keep the files where one is the whole line.
        blobs = {p: b for p, b in self.tree_blobs(rev, prefix).items() if p in candidates}
        contents = self.read_blobs(blobs.values())
        whole = [b"\n" + line.encode() + b"\n" for line in wanted]
        return {p for p, b in blobs.items() if any(w in b"\n" + contents[b] for w in whole)}

    def read_paths(self, rev: str, paths: Iterable[str]) -> dict[str, bytes]:
        """The files among `paths` that exist at `rev` (others are left out), through one `git cat-file --batch`."""
        wanted = sorted({p for p in paths if p and "\n" not in p})
        if not wanted or self.head is None:
            return {}
        files: dict[str, bytes] = {}
        for path, (kind, content) in zip(wanted, self._cat_file([f"{rev}:{p}" for p in wanted]), strict=True):
            if kind == b"missing":
                continue
            if kind != b"blob":
                raise RepositoryError(f"{path} at {rev[:10]} is not a file")
            files[path] = content
        return files

    def resolve(self, rev: str) -> str:
        """The commit a revision (tag, branch, commit id) names; an unknown one is a clear error."""
        try:
            return self._git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
        except RepositoryError:
            raise RepositoryError(
                f"{rev!r} names no commit in {self.root}", hint="use a backup id, a tag, a branch or a commit"
            ) from None

    def dirty_state_files(self) -> list[str]:
        """Paths under tenant-state/ that differ from HEAD (edited, staged, or untracked)."""
        return self.dirty_files(STATE_DIR)

    def dirty_files(self, *paths: str) -> list[str]:
        """Paths under `paths` that differ from HEAD (edited, staged, or untracked)."""
        status = self._git("status", "--porcelain", "-z", "--untracked-files=all", "--", *paths)
        return sorted(entry[3:] for entry in status.split("\0") if len(entry) > 3)

    def types_present(self, rev: str, folders: Mapping[str, str]) -> frozenset[str]:
        """The types (folder -> type name) with live objects at `rev`: a folder, or a singleton's file.

        Soft-deleted files (tenant-state/deleted/) do not count: a desired state that keeps only those
        still says "no live objects of this type", which is what the missing-folder guard asks about.
        """
        listing = self._git("ls-tree", "--name-only", "-z", "--full-tree", rev, "--", f"{STATE_DIR}/")
        present = (
            folders.get(p[len(STATE_DIR) + 1 :].removesuffix(".yaml")) for p in filter(None, listing.split("\0"))
        )
        return frozenset(name for name in present if name is not None)

    # -- writing ------------------------------------------------------------------------------

    def tree_change(self, files: Mapping[str, bytes], prefixes: tuple[str, ...]) -> TreeChange:
        """How HEAD's files under `prefixes` differ from `files` (compared by blob id, no git run per file)."""
        return self.blob_change({path: blob_id(content) for path, content in files.items()}, prefixes)

    def blob_change(
        self, blobs: Mapping[str, str], prefixes: tuple[str, ...], head: Mapping[str, str] | None = None
    ) -> TreeChange:
        """How HEAD's files under `prefixes` differ from the tree `blobs` (path -> blob id) describes; `head` is
        HEAD's listing (tree_blobs) when the caller has it already."""
        listed = self.tree_blobs() if head is None else head
        current = {p: b for p, b in listed.items() if p.startswith(prefixes)}
        return TreeChange(
            added=tuple(sorted(p for p in blobs if p not in current)),
            modified=tuple(sorted(p for p, blob in blobs.items() if p in current and blob != current[p])),
            removed=tuple(sorted(p for p in current if p not in blobs)),
        )

    def write_commit(
        self,
        files: Mapping[str, bytes],
        change: TreeChange,
        message: str,
        when: dt.datetime,
        advance: Advance | None = None,
        stored: Mapping[str, str] | None = None,
        listing: Mapping[str, Entry] | None = None,
    ) -> str:
        """A commit of `change` on top of HEAD, in git's object store only: no ref, index or file moves.

        A written path missing from `files` takes the blob `stored` names, which git holds already (an
        unchanged object of an earlier backup). `listing` is HEAD's tree listing when the caller has it.

        Changed blobs go in through one `git fast-import` stream (`advance`, when given, is told how many more
        files git was given as it reads them); the trees are HEAD's listing patched with the change, and only
        the folders it touches are written (trees.py), then committed with commit-tree. (fast-import could
        commit too, but it inserts tree entries one by one and takes minutes for a folder of 100,000 files.)
        """
        parent = self.head
        written = change.added + change.modified
        new = [path for path in written if path in files]
        blobs = (b"blob\n" + _fast_import_data(files[path]) for path in counted(new, advance, every=500))
        self._git("fast-import", "--quiet", "--done", stdin=itertools.chain(blobs, [b"done\n"]))
        known = stored or {}
        ids = {p: known[p] if p in known else blob_id(files[p]) for p in written}
        built = build_trees(
            (self.tree_listing() if listing is None else listing) if parent else {}, ids, change.removed
        )
        for object_id, content in built.objects:
            written_id = self.repo.odb.store(IStream(b"tree", len(content), io.BytesIO(content))).hexsha.decode()
            if written_id != object_id:
                raise RepositoryError(f"git stored tree {written_id} for what hashes as {object_id}: nothing moved")
        tree = built.root
        parents = ["-p", parent] if parent else []
        return self._git("commit-tree", tree, *parents, "-F", "-", stdin=message.encode(), env=_stamp(when)).strip()

    def tag_object(self, name: str, commit: str, message: str, when: dt.datetime) -> str:
        """An annotated tag object for `commit`, in the object store only (publish makes the ref)."""
        identity = self._identity_env()
        tagger = f"{identity['GIT_COMMITTER_NAME']} <{identity['GIT_COMMITTER_EMAIL']}> {int(when.timestamp())} +0000"
        body = f"object {commit}\ntype commit\ntag {name}\ntagger {tagger}\n\n{message}"
        return self._git("hash-object", "-t", "tag", "-w", "--stdin", stdin=body.encode()).strip()

    def signed_tag_object(self, name: str, commit: str, message: str, when: dt.datetime, signing: str) -> str:
        """An annotated tag object for `commit` signed by git's own signing (`git tag -s`: user.signingkey, the
        signing programs and every other setting of this repository's configuration), in the object store only."""
        scratch = Path(tempfile.mkdtemp(prefix="sign-", dir=self._scratch()))
        try:
            # `git tag -s` makes a ref as it signs. It runs in a scratch repository that writes into this one's
            # object store and includes its configuration, so no tag exists here until publish's transaction.
            subprocess.run(["git", "init", "-q", "--bare", str(scratch)], check=True, capture_output=True)
            config = str(Path(self.repo.git_dir).resolve() / "config")
            subprocess.run(["git", "config", "--file", str(scratch / "config"), "include.path", config], check=True)
            env = {**self._identity_env(), **_stamp(when), "GIT_OBJECT_DIRECTORY": str(self._objects())}
            there = ("--git-dir", str(scratch), "-c", f"gpg.format={SIGNING_FORMATS[signing]}")
            try:
                self._git(*there, "tag", "-s", "-F", "-", name, commit, stdin=message.encode(), env=env)
            except RepositoryError as err:
                detail = str(err).removeprefix("git --git-dir failed: ")
                raise RepositoryError(
                    f"could not sign backup tag {name} with {signing}: {detail}",
                    hint="set git's user.signingkey (a key file, or key::<public key> held by ssh-agent) or remove "
                    "signing from entra-gitops.yaml; nothing was published",
                ) from None
            return self._git("--git-dir", str(scratch), "rev-parse", f"refs/tags/{name}").strip()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def verify_signature(self, tag: str, signing: str, allowed_signers: Path | None) -> tuple[bool, str]:
        """Whether git verifies the signature of tag object `tag`, and git's own line on it (signer or why not)."""
        args = ["-c", f"gpg.format={SIGNING_FORMATS[signing]}"]
        if allowed_signers is not None:
            args += ["-c", f"gpg.ssh.allowedSignersFile={allowed_signers}"]
        result = self._git_status(*args, "verify-tag", tag)
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        good = next((line for line in lines if "Good" in line and "signature" in line), None)
        said = good if result.returncode == 0 and good else (lines[-1] if lines else "no signature")
        return result.returncode == 0, said.removeprefix("gpg: ")

    def is_ancestor(self, commit: str, rev: str | None = None) -> bool:
        """Whether `commit` is on the history of `rev`, or (None) of any local or remote-tracking branch."""
        if rev is not None:
            return self._git_status("merge-base", "--is-ancestor", commit, rev).returncode == 0
        found = self._git_status("for-each-ref", "--count=1", f"--contains={commit}", "refs/heads/", "refs/remotes/")
        return found.returncode == 0 and bool(found.stdout.strip())

    def state_tree(self, commit: str) -> str:
        """The id of `commit`'s tenant-state/ tree (git's empty tree when it has none)."""
        result = self._git_status("rev-parse", "--verify", "-q", f"{commit}^{{commit}}:{STATE_DIR}")
        return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else EMPTY_TREE

    def remote_tags(self, remote: str, prefix: str = BACKUP_PREFIX) -> dict[str, tuple[str, str]]:
        """The remote's tags under `prefix`: name -> (tag object id, the commit it names)."""
        listing = self._git("ls-remote", "--tags", remote, f"refs/tags/{prefix}*")
        direct: dict[str, str] = {}
        peeled: dict[str, str] = {}
        for line in filter(None, listing.splitlines()):
            sha, _, ref = line.partition("\t")
            name = ref.removeprefix("refs/tags/")
            if name.endswith("^{}"):
                peeled[name[:-3]] = sha
            else:
                direct[name] = sha
        return {name: (sha, peeled.get(name, sha)) for name, sha in direct.items()}

    def _git_status(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run git for its exit status: the caller reads the code and the output."""
        return subprocess.run(
            ["git", *args],
            cwd=self.root,
            env={**os.environ, **self._identity_env()},
            capture_output=True,
            text=True,
            start_new_session=True,
        )

    def _objects(self) -> Path:
        return Path(self.repo.git_dir).resolve() / "objects"

    def publish(
        self,
        commit: str | None,
        *,
        tag: tuple[str, str] | None = None,
        delete_tags: tuple[str, ...] = (),
        change: TreeChange | None = None,
        written: Mapping[str, str] | None = None,
    ) -> None:
        """Move the branch to `commit`, create `tag` and delete old tags in one ref transaction, then bring the
        index and work tree along.

        The transaction is all or nothing, so the branch never moves without its backup tag. A marker in
        .git records the move until the work tree has followed: if the process dies in between, the next
        run finishes it (finish_interrupted). `change`, when the caller knows the work tree holds no edits of
        its paths (a snapshot checked), is what `commit` changed, with `written` the blob id of each path it
        adds or modifies: only those files are written and indexed, so the cost is the change's, not the
        tree's (a change of most of the tree goes through read-tree, which is faster at that).
        """
        parent = self.head
        moving = commit is not None and commit != parent
        tags = {t.name: t for t in self._tag_refs(delete_tags)}
        lines = ["start"]
        if moving:
            lines.append(f"update {self.branch_ref} {commit} {parent or '0' * 40}")
        if tag is not None:
            lines.append(f"create refs/tags/{tag[0]} {tag[1]}")
        lines += [f"delete refs/tags/{name} {tags[name].sha}" for name in delete_tags if name in tags]
        lines += ["prepare", "commit"]
        marker = self._marker()
        if moving:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps({"from": parent, "to": commit}), encoding="utf-8")
        self._git("update-ref", "-m", "entra-gitops snapshot", "--stdin", stdin=("\n".join(lines) + "\n").encode())
        if moving:
            assert commit is not None
            if parent and change is not None and written is not None and len(written) <= FOLLOW_LIMIT:
                self._follow(change, written)
            elif parent:
                # Moves index and working tree from the old commit to the new one, touching only what changed.
                self._git("read-tree", "-m", "-u", parent, commit)
            else:
                self._git("read-tree", "-u", "--reset", commit)
            marker.unlink(missing_ok=True)

    def _follow(self, change: TreeChange, blobs: Mapping[str, str]) -> None:
        """Bring the work tree and index along for the paths `change` names: the files written from their blobs
        (`blobs`: path -> blob id), the removed ones deleted (and folders left empty), then those paths indexed."""
        paths = change.added + change.modified
        contents = self.read_blobs(blobs[p] for p in paths)
        written = {p: contents[blobs[p]] for p in paths}
        for path in change.removed:
            target = self.root / path
            target.unlink(missing_ok=True)
            for folder in target.parents:
                if folder == self.root:
                    break
                try:
                    folder.rmdir()  # only an empty one goes; the first that holds anything stops the climb
                except OSError:
                    break
        for path, content in written.items():
            target = self.root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        paths = [*written, *change.removed]
        self._git("update-index", "--add", "--remove", "-z", "--stdin", stdin="".join(f"{p}\0" for p in paths).encode())

    def commit_change(self, files: Mapping[str, bytes], change: TreeChange, message: str, when: dt.datetime) -> str:
        """Commit `change` on the current branch (objects first, then one ref move) and return the new commit."""
        new = self.write_commit(files, change, message, when)
        self.publish(new)
        return new

    def finish_interrupted(self) -> str | None:
        """Finish a work tree update a killed run left half done, and clean its scratch files; says what it did.

        The branch had moved already (or not at all): tenant-state/ and the other paths the commit changed
        are restored from HEAD, so git status is clean again and nothing of a backup is lost.
        """
        shutil.rmtree(self._scratch(create=False), ignore_errors=True)
        marker = self._marker()
        if not marker.exists():
            return None
        try:
            moved = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            moved = {}
        head = self.head
        if moved.get("to") == head and moved.get("from"):
            (Path(self.repo.git_dir) / "index.lock").unlink(missing_ok=True)  # ours: the run holding it is gone
            changed = self._git("diff", "--name-only", "-z", moved["from"], head).split("\0")
            tops = sorted({p.split("/", 1)[0] for p in changed if p})
            if tops:
                self._git("restore", f"--source={head}", "--staged", "--worktree", "--", *tops)
        marker.unlink(missing_ok=True)
        return f"finished the work tree update of an interrupted run (now at {str(head)[:10]})"

    def _marker(self) -> Path:
        return Path(self.repo.git_dir) / "entra-gitops" / "worktree-pending.json"

    def _scratch(self, create: bool = True) -> Path:
        path = Path(self.repo.git_dir) / "entra-gitops" / "tmp"
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return path

    def _tag_refs(self, names: tuple[str, ...]) -> list[Any]:
        if not names:
            return []
        wanted = {f"refs/tags/{n}" for n in names}
        listing = self._git("for-each-ref", "--format=%(refname)%00%(objectname)", "refs/tags/")
        found = []
        for line in filter(None, listing.splitlines()):
            ref, _, sha = line.partition("\0")
            if ref in wanted:
                found.append(_TagRef(ref.removeprefix("refs/tags/"), sha))
        return found

    def commit_files(self, files: Mapping[str, bytes], message: str, when: dt.datetime) -> str:
        """Add or replace a few files (recovery history) in one commit on the current branch."""
        listing = self.tree_listing()
        current = {path: listing[path].object_id for path in files if path in listing}
        change = TreeChange(
            added=tuple(sorted(p for p in files if p not in current)),
            modified=tuple(sorted(p for p in files if p in current and current[p] != blob_id(files[p]))),
            removed=(),
        )
        if change.empty:
            return str(self.head)
        new = self.write_commit(files, change, message, when, listing=listing)
        self.publish(new)
        return new

    def tag(self, name: str, commit: str, message: str) -> None:
        self._git("tag", "-a", name, "-m", message, commit)

    def delete_tags(self, names: list[str]) -> None:
        if names:
            self._git("tag", "-d", *names)

    def diff_text(self, old: str, new: str) -> str:
        """`git diff` between two revisions of tenant-state/, renames detected (soft deletes are moves)."""
        return self._git("diff", "--find-renames", "--stat", "--patch", old, new, "--", STATE_DIR)

    # -- reading backups ----------------------------------------------------------------------

    def backups(self) -> list[Backup]:
        """Every backup tag, newest first."""
        # The message without its signature: a signed tag's record is the body, the signature comes after it.
        # Every field starts with "=", so that no field is empty and two NULs only ever end a record.
        fields = (
            "refname:short",
            "*objectname",
            "objectname",
            "contents:subject",
            "contents:body",
            "contents:signature",
        )
        fmt = "%00".join(f"=%({f})" for f in fields) + "%00%00"
        listing = self._git("for-each-ref", "--sort=-refname", f"--format={fmt}", f"refs/tags/{BACKUP_PREFIX}")
        found = []
        for record in filter(None, (r.strip("\n") for r in listing.split("\0\0"))):
            values = [v[1:] for v in record.split("\0")]
            name, peeled, direct, subject, body, signature = (values + [""] * 5)[:6]
            message = f"{subject}\n\n{body}"
            try:
                found.append(parse_backup(name, peeled or direct, message, signed=bool(signature.strip()), tag=direct))
            except ValueError:
                continue  # a tag under backup/ whose name is not a timestamp is not one of ours
        return found

    def resolve_backup(self, backup_id: str) -> Backup:
        """A backup by id (`20261121T230000Z`), tag name (`backup/…`) or `latest` (the newest complete one)."""
        backups = self.backups()
        if not backups:
            raise RepositoryError(f"{self.root} has no backups yet", hint="run entra-gitops snapshot first")
        if backup_id == "latest":
            # The newest *complete* backup: a --type snapshot would compare only its types, silently.
            complete = next((b for b in backups if b.complete), None)
            if complete is None:
                raise RepositoryError(
                    f"{self.root} has no complete backup: the newest, {backups[0].id}, covers only "
                    f"{', '.join(sorted(backups[0].counts)) or 'no types'}",
                    hint=f"run a snapshot of every type, or name a backup with --backup {backups[0].id}",
                )
            return complete
        wanted = backup_id if backup_id.startswith(BACKUP_PREFIX) else BACKUP_PREFIX + backup_id
        for backup in backups:
            if backup.name == wanted:
                return backup
        known = ", ".join(b.id for b in backups[:5])
        raise RepositoryError(f"no backup {backup_id!r} in {self.root}", hint=f"newest: {known}")
