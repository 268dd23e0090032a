"""The directory audit log read: one filtered, paged, bounded read of the events since a time, never a failure.

Graph: GET /auditLogs/directoryAudits (api-reference/v1.0/api/directoryaudit-list.md) needs AuditLog.Read.All
and supports `$filter` with `ge`/`le` on activityDateTime and `$top`; events come newest first. Who changed
what is information for reviewers, so a log that cannot be read degrades to "unknown" with one warning.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from entra_gitops.graph.client import GraphClient
from entra_gitops.model.attribution import AuditEvent, parse_events, utc_seconds
from entra_gitops.model.errors import GraphError
from entra_gitops.model.ids import GUID, fold_id
from entra_gitops.model.progress import Progress, Reads, watched

PATH = "auditLogs/directoryAudits"
PERMISSION = "AuditLog.Read.All"
MAX_EVENTS = 50_000  # a day of a busy tenant's directory changes; beyond it the read stops and says so
MAX_FILTERED_IDS = 15  # more ids than this make one filter too long: the read filters by time, matching here
PAGE_SIZE = 999
LABEL = "directoryAudit"


class AuditRead(NamedTuple):
    """What the read found: the events (newest first), whether the log could be read, and one warning line."""

    events: tuple[AuditEvent, ...]
    available: bool
    warning: str | None = None


def _unavailable(why: str) -> AuditRead:
    return AuditRead((), False, f"who changed it is unknown: {why}")


def time_filter(since: dt.datetime) -> str:
    return f"activityDateTime ge {utc_seconds(since)}"


def id_filter(object_ids: set[str]) -> str | None:
    """`targetResources/any(...)` for a few GUIDs; None when there are too many or any is not a GUID."""
    ids = sorted({fold_id(i) for i in object_ids})
    # Only GUIDs go into a URL: any other id (a relationship's base64 id) is matched here instead.
    if not ids or len(ids) > MAX_FILTERED_IDS or not all(GUID.match(i) for i in ids):
        return None
    clauses = [f"targetResources/any(t: t/id eq '{i}')" for i in ids]
    return clauses[0] if len(clauses) == 1 else "(" + " or ".join(clauses) + ")"


async def _pages(client: GraphClient, query: str, progress: Progress) -> tuple[list[Any], bool]:
    raws: list[Any] = []
    async for page in client.pages(PATH, {"$filter": query, "$top": PAGE_SIZE}):
        values = page.get("value") if isinstance(page, dict) else None
        if not isinstance(values, list):
            raise GraphError(f"GET /{PATH} answered a page without a value list")
        raws.extend(values)
        progress(LABEL, len(values))
        if len(raws) >= MAX_EVENTS:
            return raws[:MAX_EVENTS], True
    return raws, False


async def read_audit(
    client: GraphClient,
    since: dt.datetime,
    object_ids: set[str] | None = None,
    progress: Progress | Reads | None = None,
) -> AuditRead:
    """The directory audit events since `since` (for `object_ids` when they are few), checked and newest first."""
    watch = watched(progress)
    base = time_filter(since)
    narrowed = id_filter(object_ids) if object_ids else None
    try:
        try:
            raws, capped = await _pages(client, f"{base} and {narrowed}" if narrowed else base, watch)
        except GraphError as err:
            if narrowed is None or err.status != 400:
                raise
            # A Graph that refuses the any() filter still answers the plain one: match the ids here.
            raws, capped = await _pages(client, base, watch)
    except GraphError as err:
        if err.status in (401, 403):
            return _unavailable(f"reading the directory audit log needs the {PERMISSION} permission ({err.status})")
        if err.status in (400, 404):
            return _unavailable(f"Graph does not serve the directory audit log here ({err.status})")
        return _unavailable(f"the directory audit log could not be read: {err}")
    events, _skipped = parse_events(raws)
    warning = None
    if capped:
        warning = (
            f"the directory audit log holds more than {MAX_EVENTS:,} events since {utc_seconds(since)}: "
            f"only the newest {MAX_EVENTS:,} were read, so older changes may say 'not in the audit log'"
        )
    return AuditRead(events, True, warning)
