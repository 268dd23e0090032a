"""A read normalized as its pages come and rendered straight to files gives the files of the state it stands for."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest
from conftest import with_graph
from test_snapshot import secret_seed

from entra_gitops.emulator import Emulator, create_emulator
from entra_gitops.emulator.seed import SeedLoader
from entra_gitops.graph.reader import read_tenant
from entra_gitops.model.errors import GraphError
from entra_gitops.model.reads import GraphStats, TenantRead
from entra_gitops.model.registry import default_registry
from entra_gitops.model.tenant import Lifecycle
from entra_gitops.state.layout import render_files
from entra_gitops.state.normalize import REDACTED, normalize_read, normalize_row
from entra_gitops.state.rendering import PageRenderer, render_read

REGISTRY = default_registry()
TYPES = tuple(REGISTRY)
NO_STATS = GraphStats(0, 0, 0, 0, 0)


def both_ways(app: Emulator) -> tuple[TenantRead, TenantRead, PageRenderer]:
    """The tenant read raw, and read with each row normalized (and rendered where it can be) as it came."""
    raw = with_graph(app, lambda c: read_tenant(c, REGISTRY, TYPES))
    pages = PageRenderer(REGISTRY)
    kept = with_graph(app, lambda c: read_tenant(c, REGISTRY, TYPES, keep=pages))
    return raw, kept, pages


@pytest.mark.parametrize(
    "app",
    [
        pytest.param(lambda: Emulator(SeedLoader(REGISTRY, secret_seed(), "secret seed").load()), id="demo+secrets"),
        pytest.param(lambda: create_emulator("synthetic:users=400,groups=80,apps=12,deleted=20"), id="synthetic"),
    ],
)
def test_objects_rendered_as_their_pages_come_give_the_files_of_the_normalized_state(app: Any) -> None:
    raw, kept, pages = both_ways(app())
    assert kept.normalized and not raw.normalized
    normal = normalize_read(REGISTRY, raw)
    rendered = render_read(REGISTRY, kept, pages=pages)
    assert rendered.files == render_files(REGISTRY, normal.state)
    assert rendered.counts == normal.state.counts()
    assert dict(rendered.deleted) == {n: c for n, c in normal.state.counts(Lifecycle.SOFT_DELETED).items() if c}
    assert list(rendered.redactions) == sorted(normal.redactions)
    # The links were added to the kept rows in the schema's key order: group files hold members and owners.
    assert any(b"\nmembers:\n" in content for path, content in rendered.files.items() if "/groups/" in path)
    # The same read without a keeper renders to the same files.
    assert render_read(REGISTRY, raw).files == rendered.files


def test_only_objects_waiting_for_a_link_or_a_child_are_held_as_rows() -> None:
    raw, kept, _ = both_ways(create_emulator("synthetic:users=300,groups=60,apps=6"))
    guests = sum(1 for u in raw.objects["user"] if u.get("userType") == "Guest")
    assert 0 < len(kept.objects["user"]) == guests < len(raw.objects["user"])  # sponsors are read for guests
    assert len(kept.objects["group"]) == len(raw.objects["group"])  # members come by delta, for every group
    assert len(kept.objects["servicePrincipal"]) == len(raw.objects["servicePrincipal"])  # assignments hang off it
    assert kept.objects["conditionalAccessPolicy"] == () and kept.deleted.get("user", ()) == ()


def test_a_listing_that_starts_over_drops_what_it_had_rendered() -> None:
    pages = PageRenderer(REGISTRY)
    user = REGISTRY.get("user")
    ann = {"id": "11111111-2222-3333-4444-555555555555", "displayName": "Ann", "notes": "x"}
    assert pages(user, Lifecycle.ACTIVE, ann) is None
    pages.forget(user, Lifecycle.ACTIVE)
    bob = {**ann, "id": "21111111-2222-3333-4444-555555555555", "displayName": "Bob"}
    assert pages(user, Lifecycle.ACTIVE, bob) is None
    empty = TenantRead(MappingProxyType({"user": ()}), MappingProxyType({}), MappingProxyType({}), NO_STATS, True)
    assert list(render_read(REGISTRY, empty, pages=pages).files) == [f"tenant-state/users/{bob['id']}.yaml"]


def test_a_row_with_a_secret_is_rendered_redacted_and_the_redaction_kept() -> None:
    pages = PageRenderer(REGISTRY)
    app = REGISTRY.get("application")
    row = {"id": "a1", "displayName": "x", "notes": "ci: Ab34Q~ZYXWVUTSRQPONMLKJIHGFEDCBA9876543"}
    assert pages(app, Lifecycle.ACTIVE, row) is None
    empty = TenantRead(
        MappingProxyType({"application": ()}), MappingProxyType({}), MappingProxyType({}), NO_STATS, True
    )
    rendered = render_read(REGISTRY, empty, pages=pages)
    assert REDACTED.encode() in rendered.files["tenant-state/applications/a1.yaml"]
    assert [(r.type_name, r.object_id, r.path) for r in rendered.redactions] == [("application", "a1", "notes")]


def test_an_object_deleted_while_the_read_ran_is_one_deleted_file_as_in_the_state() -> None:
    user = {"id": "11111111-2222-3333-4444-555555555555", "displayName": "Ann", "userPrincipalName": "ann@x.test"}
    gone = {**user, "deletedDateTime": "2026-12-01T00:00:00Z"}
    read = TenantRead(
        MappingProxyType({"user": (user,)}), MappingProxyType({"user": (gone,)}), MappingProxyType({}), NO_STATS
    )
    normal = normalize_read(REGISTRY, read)
    rendered = render_read(REGISTRY, read)
    assert rendered.files == render_files(REGISTRY, normal.state)
    assert list(rendered.files) == [f"tenant-state/deleted/users/{user['id']}.yaml"]
    assert rendered.counts == {"user": 0} and rendered.deleted == {"user": 1}


class Greedy(PageRenderer):
    """A keeper that, wrongly, takes every user as needing no link: what a readWhen Graph disagrees with does."""

    def __call__(self, rtype: Any, lifecycle: Lifecycle, raw: dict[str, Any]) -> dict[str, Any] | None:
        if rtype.name == "user":
            data, found = normalize_row(rtype, raw, lifecycle)
            self.renderer.add(rtype, lifecycle, data, found)
            return None
        return super().__call__(rtype, lifecycle, raw)


def test_links_listed_for_objects_already_written_without_them_fail_the_read() -> None:
    app = create_emulator("demo")
    assert any(u.get("userType") == "Guest" for u in app.tenant.objects(REGISTRY.get("user")).values())
    with pytest.raises(GraphError, match=r"listed user\.sponsors for \d+ user objects the schema's readWhen"):
        with_graph(app, lambda c: read_tenant(c, REGISTRY, (REGISTRY.get("user"),), keep=Greedy(REGISTRY)))
    # The keeper that holds guests for their sponsors reads the same tenant without complaint.
    read = with_graph(app, lambda c: read_tenant(c, REGISTRY, (REGISTRY.get("user"),), keep=PageRenderer(REGISTRY)))
    assert read.objects["user"]
