"""Delta queries: the link a later read continues from, and the changes since one, merged per object.

Graph's rules (delta-query-overview.md, user-delta.md, group-delta.md): a round follows `@odata.nextLink`
to a page with `@odata.deltaLink`; a changed object comes back with every selected property (unchanged
ones with their old value, never-set ones left out); a removed one as `{"id", "@removed": {"reason"}}`,
`changed` for one in deleted items and `deleted` for one gone for good; a relationship selected on groups
comes as `<name>@delta` entries, a removed one with `@removed`; an object may appear more than once.
Microsoft Entra resources "support the sync from now scenario": `$deltatoken=latest` answers with only a
deltaLink. A token Graph no longer holds is refused (a 400 `syncStateNotFound` since 2020's seven-day
lifetime, a 410 for a reset): the caller then reads that type in full.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from entra_gitops.graph.client import GraphClient, PageTokenExpired
from entra_gitops.model.errors import GraphError
from entra_gitops.model.ids import fold_id, is_guid
from entra_gitops.model.progress import Progress
from entra_gitops.model.registry import ResourceType

# What Graph answers for a token it cannot continue from: expired, reset, or not one of its own.
EXPIRED_CODES = frozenset({"syncstatenotfound", "resyncrequired", "request_invaliddeltatoken", "badrequest"})
# A delta token is opaque, but it goes into a URL this tool builds: letters, digits and URL-safe marks only.
TOKEN = re.compile(r"^[A-Za-z0-9._~%=+/-]{1,8192}$")


class DeltaTokenRejected(Exception):
    """Graph would not continue from a stored delta link (expired, reset or foreign): read the type in full."""

    def __init__(self, type_name: str, reason: str) -> None:
        super().__init__(f"{type_name}: {reason}")
        self.type_name = type_name
        self.reason = reason


@dataclass(frozen=True)
class DeltaChanges:
    """What one delta round said, merged per object id, and the link the next round continues from.

    `changed` maps an id to its latest full row (relationships taken out); `links` maps (id, relationship)
    to member id -> present, in the order Graph said it; `removed` maps an id to Graph's reason.
    """

    type_name: str
    changed: Mapping[str, Mapping[str, Any]]
    links: Mapping[tuple[str, str], Mapping[str, bool]]
    removed: Mapping[str, str]
    next_link: str
    rows: int


def delta_select(rtype: ResourceType) -> tuple[str, ...]:
    """What a delta round selects: the type's properties, and its relationships that delta tracks."""
    tracked = tuple(p.name for p in rtype.links if p.link is not None and p.link.delta)
    return (*rtype.select, *tracked)


def continue_url(client: GraphClient, rtype: ResourceType, stored: str) -> str:
    """The URL to continue from a stored delta link, rebuilt on this client's Graph from its token alone.

    A backup's record is a file anyone with push access can edit: its link is never followed as given, so a
    rewritten record cannot send this tool's bearer token to another host or path.
    """
    assert rtype.delta is not None
    try:
        parts = urlsplit(stored)
    except ValueError:
        raise DeltaTokenRejected(rtype.name, "the stored delta link is not a URL") from None
    tokens = parse_qs(parts.query).get("$deltatoken", [])
    if not parts.path.removesuffix("()").endswith("/" + rtype.delta.strip("/")):
        raise DeltaTokenRejected(rtype.name, f"the stored delta link is not one of {rtype.delta}")
    if len(tokens) != 1 or not TOKEN.match(tokens[0]):
        raise DeltaTokenRejected(rtype.name, "the stored delta link holds no usable $deltatoken")
    return client.url(rtype.delta, {"$deltatoken": tokens[0]})


def _rejected(err: GraphError) -> bool:
    return err.status == 410 or (err.status == 400 and str(err.code or "").lower() in EXPIRED_CODES)


async def latest_link(client: GraphClient, rtype: ResourceType) -> str:
    """A delta link that continues from now, for a type this run reads in full (one request, no objects)."""
    assert rtype.delta is not None
    params = {"$select": ",".join(delta_select(rtype)), "$deltatoken": "latest"}
    async for page in client.pages(rtype.delta, params, scope=rtype.throttle_scope):
        link = page.get("@odata.deltaLink")
        if isinstance(link, str):
            return link
    raise GraphError(f"Graph gave no @odata.deltaLink for {rtype.delta}?$deltatoken=latest")


async def read_changes(client: GraphClient, rtype: ResourceType, stored: str, progress: Progress) -> DeltaChanges:
    """Every change since `stored`, merged per object; DeltaTokenRejected when Graph will not continue from it."""
    label = f"{rtype.name} (delta)"
    url = continue_url(client, rtype, stored)
    tracked = {p.name for p in rtype.links if p.link is not None and p.link.delta}
    changed: dict[str, dict[str, Any]] = {}
    links: dict[tuple[str, str], dict[str, bool]] = {}
    removed: dict[str, str] = {}
    rows = 0
    next_link: str | None = None
    progress(label, 0)
    try:
        async for page in client.pages(url, scope=rtype.throttle_scope):
            value = page.get("value", [])
            for row in value:
                rows += 1
                _merge(rtype, row, tracked, changed, links, removed)
            progress(label, len(value))
            found = page.get("@odata.deltaLink")
            next_link = found if isinstance(found, str) else next_link
    except (GraphError, PageTokenExpired) as err:
        if isinstance(err, PageTokenExpired) or _rejected(err):
            raise DeltaTokenRejected(rtype.name, f"Graph refused the delta token ({err.code or err.status})") from None
        raise
    if next_link is None:
        raise GraphError(f"Graph's delta round for {rtype.name} ended without an @odata.deltaLink")
    progress.total(label, rows)
    return DeltaChanges(
        rtype.name,
        MappingProxyType(changed),
        MappingProxyType({k: MappingProxyType(v) for k, v in links.items()}),
        MappingProxyType(removed),
        next_link,
        rows,
    )


def _merge(
    rtype: ResourceType,
    row: Any,
    tracked: set[str],
    changed: dict[str, dict[str, Any]],
    links: dict[tuple[str, str], dict[str, bool]],
    removed: dict[str, str],
) -> None:
    """One delta row into the round so far: the latest row of an object wins, link entries accumulate."""
    if not isinstance(row, dict) or not isinstance(row.get("id"), str) or not row["id"]:
        raise GraphError(f"Graph's delta round for {rtype.name} holds a row without an id: stopping")
    object_id = fold_id(row["id"])
    gone = row.get("@removed")
    if gone is not None:
        reason = gone.get("reason") if isinstance(gone, dict) else None
        # Only "changed" keeps the object (in deleted items); anything else Graph says is treated as gone.
        removed[object_id] = "changed" if reason == "changed" else "deleted"
        changed.pop(object_id, None)
        for name in tracked:
            links.pop((object_id, name), None)
        return
    removed.pop(object_id, None)
    props = {k: v for k, v in row.items() if not k.endswith("@delta") and k not in tracked}
    earlier = changed.get(object_id)
    # A row that carries only relationship changes keeps the properties an earlier row of this round gave.
    changed[object_id] = {**earlier, **props} if earlier is not None and links_only(props) else props
    for name in tracked:
        entries = row.get(f"{name}@delta")
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise GraphError(f"Graph's delta row for {rtype.name} {object_id} has {name}@delta that is not a list")
        current = links.setdefault((object_id, name), {})
        for entry in entries:
            member = entry.get("id") if isinstance(entry, dict) else None
            if not is_guid(member):
                raise GraphError(f"Graph's delta row for {rtype.name} {object_id} has a {name} entry without an id")
            assert isinstance(member, str)
            current.pop(member.lower(), None)  # the latest entry for a member decides, in Graph's order
            current[member.lower()] = "@removed" not in entry


def links_only(row: Mapping[str, Any]) -> bool:
    """Whether a changed row holds nothing but its id (and type): a relationship-only change."""
    return not (set(row) - {"id", "@odata.type"})
