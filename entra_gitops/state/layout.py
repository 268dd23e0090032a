"""Where each object lives under tenant-state/, and TenantState to files and back (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NamedTuple

from entra_gitops.model import canonical
from entra_gitops.model.errors import StateFileError
from entra_gitops.model.frozen import freeze
from entra_gitops.model.progress import Advance, counted
from entra_gitops.model.registry import Registry, ResourceType
from entra_gitops.model.tenant import Lifecycle, ObjectState, TenantState
from entra_gitops.state.paths import object_file_name, object_id_from_file_name

STATE_DIR = "tenant-state"
DELETED_DIR = "deleted"
SUFFIX = ".yaml"


class Location(NamedTuple):
    """What a path under tenant-state/ holds."""

    rtype: ResourceType
    object_id: str | None
    lifecycle: Lifecycle


def object_path(rtype: ResourceType, object_id: str, lifecycle: Lifecycle = Lifecycle.ACTIVE) -> str:
    """The repository path of one object's file."""
    if rtype.singleton:
        return f"{STATE_DIR}/{rtype.folder}{SUFFIX}"
    name = object_file_name(object_id) + SUFFIX
    if lifecycle is Lifecycle.SOFT_DELETED:
        return f"{STATE_DIR}/{DELETED_DIR}/{rtype.folder}/{name}"
    return f"{STATE_DIR}/{rtype.folder}/{name}"


def active_twin(path: str) -> str:
    """The path a soft-deleted object's file has while the object is live (a live path is its own twin)."""
    deleted = f"{STATE_DIR}/{DELETED_DIR}/"
    return f"{STATE_DIR}/{path[len(deleted) :]}" if path.startswith(deleted) else path


def type_prefixes(rtypes: Iterable[ResourceType]) -> tuple[str, ...]:
    """The path prefixes that belong to `rtypes` (a singleton's file, or its folders)."""
    prefixes: list[str] = []
    for rtype in rtypes:
        if rtype.singleton:
            prefixes.append(f"{STATE_DIR}/{rtype.folder}{SUFFIX}")
        else:
            prefixes.append(f"{STATE_DIR}/{rtype.folder}/")
            prefixes.append(f"{STATE_DIR}/{DELETED_DIR}/{rtype.folder}/")
    return tuple(prefixes)


def render_files(registry: Registry, state: TenantState, advance: Advance | None = None) -> dict[str, bytes]:
    """Every object of `state` as its canonical file; `advance`, when given, is told how many more are done."""
    files: dict[str, bytes] = {}
    for obj in counted(state, advance):
        rtype = registry.get(obj.type_name)
        files[object_path(rtype, obj.id, obj.lifecycle)] = canonical.dump(obj.data)
    return files


def locate(registry: Registry, path: str) -> Location | None:
    """The type, id and lifecycle a path stands for; None for paths that are not state files."""
    if not path.startswith(f"{STATE_DIR}/") or not path.endswith(SUFFIX):
        return None
    parts = path[len(STATE_DIR) + 1 : -len(SUFFIX)].split("/")
    lifecycle = Lifecycle.ACTIVE
    if parts[0] == DELETED_DIR and len(parts) == 3:
        lifecycle, parts = Lifecycle.SOFT_DELETED, parts[1:]
    if len(parts) == 1:
        rtype = registry.by_folder(parts[0])
        return Location(rtype, None, lifecycle) if rtype is not None and rtype.singleton else None
    if len(parts) == 2:
        rtype = registry.by_folder(parts[0])
        if rtype is not None and not rtype.singleton:
            return Location(rtype, object_id_from_file_name(parts[1]), lifecycle)
    return None


class FileData(Mapping[str, Any]):
    """An object's data as its file holds it, parsed and checked the first time any of it is asked for.

    Within `parsed_once`, one FileData stands for one file content in every state that holds it, so two states
    built on the same blob compare equal by identity, and their objects are never parsed for that.
    """

    __slots__ = ("_content", "_path", "_object_id", "_data")

    def __init__(self, content: bytes, path: str, object_id: str) -> None:
        self._content: bytes | None = content
        self._path = path
        self._object_id = object_id
        self._data: Mapping[str, Any] | None = None

    @property
    def parsed(self) -> bool:
        """Whether the file was parsed: something asked for its data."""
        return self._data is not None

    def _value(self) -> Mapping[str, Any]:
        if self._data is None:
            assert self._content is not None
            data = _parsed_file(self._content, self._path, self._object_id)
            self._data, self._content = data, None
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._value()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._value())

    def __len__(self) -> int:
        return len(self._value())

    def __eq__(self, other: object) -> bool:
        if other is self:
            return True
        if isinstance(other, FileData):
            other = other._value()
        return self._value() == other if isinstance(other, Mapping) else NotImplemented

    __hash__ = None  # type: ignore[assignment]  # a mapping: equal by value, so not hashable

    def __repr__(self) -> str:
        return f"FileData({self._path!r})"


def _parsed_file(content: bytes, path: str, object_id: str | None) -> Mapping[str, Any]:
    """A state file's data, refused when it has no string id or one other than its file name says."""
    data = freeze(canonical.load(content, path))
    found = data.get("id")
    if not isinstance(found, str):
        raise StateFileError(path, 1, 1, "the object has no string 'id'")
    if object_id is not None and object_id != found:
        raise StateFileError(path, 1, 1, f"the file name says id {object_id!r} but the object's id is {found!r}")
    return data


# Within `parsed_once`, a file's content is parsed at most once however many states hold it, and only when its
# data is asked for: a plan loads a backup and the live tenant built on that same backup, whose unchanged
# objects are the very same files and need no parsing to be found equal.
_PARSED: ContextVar[dict[bytes, FileData] | None] = ContextVar("parsed", default=None)


@contextmanager
def parsed_once() -> Iterator[None]:
    """Share file contents between the load_state calls of the block, each parsed when first read."""
    token = _PARSED.set({})
    try:
        yield
    finally:
        _PARSED.reset(token)


def load_state(registry: Registry, files: Mapping[str, bytes], types: frozenset[str] | None = None) -> TenantState:
    """Files of a tenant-state/ tree back into a TenantState; a file in the wrong place is an error.

    Within `parsed_once`, an object's file is parsed when its data is first read (see FileData); outside it,
    every file is parsed and checked here.
    """
    objects: list[ObjectState] = []
    shared = _PARSED.get()
    for path, content in files.items():
        where = locate(registry, path)
        if where is None:
            continue
        if shared is not None and where.object_id is not None:
            data: Mapping[str, Any] | None = shared.get(content)
            if data is None:
                data = shared[content] = FileData(content, path, where.object_id)
            objects.append(ObjectState(where.rtype.name, where.object_id, where.lifecycle, data))
            continue
        data = _parsed_file(content, path, where.object_id)
        objects.append(ObjectState(where.rtype.name, data["id"], where.lifecycle, data))
    read_types = types if types is not None else frozenset(t.name for t in registry)
    return TenantState.of(objects, read_types)
