"""A read straight to its canonical files, with no TenantState between, page by page: the snapshot's path."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from entra_gitops.model import canonical
from entra_gitops.model.progress import Advance
from entra_gitops.model.reads import TenantRead
from entra_gitops.model.registry import Registry, ResourceType
from entra_gitops.model.tenant import Lifecycle
from entra_gitops.state.gitstore import blob_id
from entra_gitops.state.layout import active_twin, object_path
from entra_gitops.state.normalize import Redaction, normalize_row, normalized_objects


class Rendered(NamedTuple):
    """A read's files: path -> blob id of every one, path -> canonical bytes of those not yet in git's object store
    (all of them unless the renderer wrote them there); its live and soft-deleted objects per type; its
    redactions."""

    blobs: dict[str, str]
    files: dict[str, bytes]
    counts: Mapping[str, int]
    deleted: Mapping[str, int]
    redactions: tuple[Redaction, ...]


class Renderer:
    """Files gathered object by object, per listing (a type's live or deleted list), in whatever order they come.

    With `write` (a BlobWriter), each file's bytes go to git's object store at once and only its blob id stays.
    """

    def __init__(self, write: Callable[[bytes], str] | None = None) -> None:
        self._write = write
        self._listings: dict[tuple[str, Lifecycle], dict[str, Any]] = {}  # path -> bytes, or blob id once written
        self._redactions: dict[tuple[str, Lifecycle], list[Redaction]] = {}

    def add(
        self, rtype: ResourceType, lifecycle: Lifecycle, data: Mapping[str, Any], found: tuple[Redaction, ...] = ()
    ) -> None:
        """One normalized object; a second one at the same path replaces the first, as in a TenantState."""
        path = object_path(rtype, str(data.get("id", "")), lifecycle)
        content = canonical.dump(data)
        self._listings.setdefault((rtype.name, lifecycle), {})[path] = (
            content if self._write is None else self._write(content)
        )
        self.add_redactions(rtype, lifecycle, found)

    def add_redactions(self, rtype: ResourceType, lifecycle: Lifecycle, found: tuple[Redaction, ...]) -> None:
        """Redactions made in an object of that listing (one rendered later from its kept row, say)."""
        if found:
            self._redactions.setdefault((rtype.name, lifecycle), []).extend(found)

    def holds(self, rtype: ResourceType, lifecycle: Lifecycle, object_id: str) -> bool:
        """Whether the object's file is rendered already."""
        return object_path(rtype, object_id, lifecycle) in self._listings.get((rtype.name, lifecycle), {})

    def forget(self, rtype: ResourceType, lifecycle: Lifecycle) -> None:
        """A listing starts over (its page token expired): what it gave so far is dropped, as the read drops it."""
        self._listings.pop((rtype.name, lifecycle), None)
        self._redactions.pop((rtype.name, lifecycle), None)

    def rendered(self, types: Iterable[str]) -> Rendered:
        """The files of `types`, one per object: an object deleted while the read ran was listed live and then
        deleted, and only its deleted file is kept (a TenantState keeps the deleted one: it is read last).

        Once only: the renderer hands its tables over (and empties them) so that no object is held twice.
        """
        wanted = set(types)
        for (name, lifecycle), deleted in self._listings.items():
            live = self._listings.get((name, Lifecycle.ACTIVE))
            if lifecycle is Lifecycle.SOFT_DELETED and live:
                for path in deleted:
                    live.pop(active_twin(path), None)
        kept: dict[str, Any] = {}
        counts = {name: 0 for name in sorted(wanted)}
        deleted_counts: dict[str, int] = {}
        for (name, lifecycle), listing in sorted(self._listings.items(), key=lambda item: item[0][1].value):
            if name not in wanted:
                continue  # a parent type, read only for its children's sake
            (counts if lifecycle is Lifecycle.ACTIVE else deleted_counts)[name] = len(listing)
            kept.update(listing)
            listing.clear()  # what it held now lives in `kept` alone, and the listing's table is freed at once
        redactions = tuple(sorted(r for (name, _), found in self._redactions.items() if name in wanted for r in found))
        if self._write is None:
            files: dict[str, bytes] = kept
            blobs = {path: blob_id(content) for path, content in files.items()}
        else:
            files, blobs = {}, kept
        return Rendered(
            blobs,
            files,
            MappingProxyType(counts),
            MappingProxyType(dict(sorted((n, c) for n, c in deleted_counts.items() if c))),
            redactions,
        )


class PageRenderer:
    """A read's row keeper that normalizes each object as its page comes and renders at once every object nothing
    later in the read can need (no link of it is read, no child type hangs off its type): those pages are never
    held, only their files (or, with `write`, their blob ids). What it keeps, render_read finishes with its
    links."""

    def __init__(self, registry: Registry, write: Callable[[bytes], str] | None = None) -> None:
        self.renderer = Renderer(write)
        self._parents = frozenset(t.parent.type_name for t in registry if t.parent is not None)

    def __call__(self, rtype: ResourceType, lifecycle: Lifecycle, raw: dict[str, Any]) -> dict[str, Any] | None:
        data, found = normalize_row(rtype, raw, lifecycle)
        if lifecycle is Lifecycle.ACTIVE and (rtype.name in self._parents or rtype.reads_links_of(data)):
            self.renderer.add_redactions(rtype, lifecycle, found)
            return data
        self.renderer.add(rtype, lifecycle, data, found)
        return None

    def forget(self, rtype: ResourceType, lifecycle: Lifecycle) -> None:
        self.renderer.forget(rtype, lifecycle)

    def taken(self, rtype: ResourceType, object_id: str) -> bool:
        return self.renderer.holds(rtype, Lifecycle.ACTIVE, object_id)


def render_read(
    registry: Registry, read: TenantRead, advance: Advance | None = None, pages: PageRenderer | None = None
) -> Rendered:
    """Every object of `read` as the file a snapshot commits: the same bytes `render_files` gives for its state.

    `pages` is the keeper the read was taken with (what it rendered already joins what the read kept). Nothing
    is frozen or kept but the bytes: at a million objects the states would cost more than the files.
    """
    renderer = pages.renderer if pages is not None else Renderer()
    for rtype, lifecycle, data, found in normalized_objects(registry, read, advance):
        renderer.add(rtype, lifecycle, data, found)
    return renderer.rendered(read.objects)
