"""Paged reads: results fixed at the first page so any page can be read again, and Graph's nextLinks."""

from __future__ import annotations

import collections
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from entra_gitops.emulator.odata import MAX_PAGE_SIZE, Query
from entra_gitops.emulator.protocol import GraphFault, Request, bad_request

MAX_CURSORS = 512


@dataclass(frozen=True)
class Cursor:
    """A paged result: the ids (or delta rows) fixed at the first page, so any page can be re-read."""

    items: tuple[Any, ...]
    select: tuple[str, ...] | None
    top: int
    extra: Mapping[str, Any]


class Pager:
    """The cursors of the reads still being paged, the least recently read forgotten first."""

    def __init__(self) -> None:
        self.cursors: collections.OrderedDict[str, Cursor] = collections.OrderedDict()

    def forget(self, skiptoken: str) -> None:
        self.cursors.pop(skiptoken.partition(".")[0], None)

    def _remember(self, cursor: Cursor) -> str:
        token = secrets.token_urlsafe(12)
        self.cursors[token] = cursor
        while len(self.cursors) > MAX_CURSORS:
            self.cursors.popitem(last=False)
        return token

    def page(
        self,
        request: Request,
        query: Query,
        build: Callable[[], tuple[Any, ...]],
        extra: Mapping[str, Any] | None = None,
    ) -> tuple[list[Any], Cursor, str | None]:
        """The page a request asks for; a nextLink when more follow. Rereading a page gives the same page."""
        if query.skiptoken:
            cursor_id, _, offset_text = query.skiptoken.partition(".")
            cursor = self.cursors.get(cursor_id)
            if cursor is None or not offset_text.isdigit():
                raise invalid_skiptoken()
            self.cursors.move_to_end(cursor_id)
            offset = int(offset_text)
        else:
            top = query.top
            # A preference Graph cannot honour is ignored, never an error.
            prefer = re.search(r"odata\.maxpagesize=(\d+)", request.headers.get("prefer", ""))
            if prefer:
                top = min(MAX_PAGE_SIZE, max(1, int(prefer.group(1))))
            cursor = Cursor(build(), query.select, top, extra or {})
            # Only results that need a next page are kept, so small lists never evict a long read's cursor.
            cursor_id = self._remember(cursor) if len(cursor.items) > top else ""
            offset = 0
        end = offset + cursor.top
        page = list(cursor.items[offset:end])
        rule = request.fault
        if rule is not None and rule.truncate:
            # Items lost without a sign: the page keeps its usual nextLink (or none), as a dropped page would.
            page = page[: max(0, len(page) - rule.truncate)]
        # repeat-skiptoken: the nextLink names the page just served, as a server stuck on its cursor would.
        repeat = rule is not None and rule.repeat_skiptoken
        next_link = None
        if end < len(cursor.items) or repeat:
            params = [("$skiptoken", f"{cursor_id}.{offset if repeat else end}")]
            if cursor.select is not None:
                params.insert(0, ("$select", ",".join(cursor.select)))
            params.insert(len(params) - 1, ("$top", str(cursor.top)))
            if query.expand is not None:
                params.insert(len(params) - 1, ("$expand", query.expand.text))
            next_link = f"{request.base_url}/{request.path}?" + "&".join(
                f"{k}={quote(v, safe=',()=$')}" for k, v in params
            )
        return page, cursor, next_link


def listing(
    context: str, value: list[Any], next_link: str | None, annotations: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A collection's body in Graph's order: context, annotations, nextLink, then the value."""
    body: dict[str, Any] = {"@odata.context": context, **(annotations or {})}
    if next_link:
        body["@odata.nextLink"] = next_link
    body["value"] = value
    return body


def invalid_skiptoken() -> GraphFault:
    return bad_request("The $skiptoken is invalid or has expired.", "Request_InvalidSkipToken")
