"""Graph's wire conventions the emulator answers with: error bodies, headers, context URLs."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from entra_gitops.model.ids import utc_text

JSON_CONTENT_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"


@dataclass
class GraphFault(Exception):
    """An error response exactly as Graph shapes it; raised anywhere in a handler."""

    status: int
    code: str
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self, client_request_id: str | None, request_id: str) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": utc_now_text(),
                    "request-id": request_id,
                    "client-request-id": client_request_id or request_id,
                },
            }
        }


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphFault:
    return GraphFault(400, code, message)


def not_found(object_id: str) -> GraphFault:
    return GraphFault(
        404,
        "Request_ResourceNotFound",
        f"Resource '{object_id}' does not exist or one of its queried reference-property objects are not present.",
    )


def no_route(path: str) -> GraphFault:
    return GraphFault(400, "BadRequest", f"Resource not found for the segment '{path.split('/')[-1] or path}'.")


def method_not_allowed(method: str) -> GraphFault:
    return GraphFault(405, "Request_BadRequest", f"The HTTP method '{method}' is not allowed for this resource.")


def utc_now_text(now: dt.datetime | None = None) -> str:
    """Graph's timestamp form: UTC, seconds, trailing Z."""
    return utc_text(now or dt.datetime.now(dt.UTC))


def new_request_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Reply:
    """A handler's answer before it becomes an HTTP response."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    text: str | None = None
