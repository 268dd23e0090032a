"""Graph's wire conventions: requests as handlers see them, replies, error bodies, headers, context URLs."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from entra_gitops.model.ids import utc_text

if TYPE_CHECKING:
    from entra_gitops.emulator.limits import FaultRule

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
class Request:
    """One Graph request as the handlers see it (also a `$batch` sub-request)."""

    method: str
    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    body: Any
    base_url: str
    fault: FaultRule | None = None  # a paging fault (truncate, repeat-skiptoken) for the pager to apply


@dataclass(frozen=True)
class Reply:
    """A handler's answer before it becomes an HTTP response."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    text: str | None = None


def error_reply(fault: GraphFault, client_request_id: str | None, request_id: str) -> Reply:
    return Reply(fault.status, fault.body(client_request_id, request_id), dict(fault.headers))


def context_url(request: Request, fragment: str) -> str:
    """The @odata.context of a reply: the service's $metadata, then what the reply holds."""
    return f"{request.base_url}/$metadata#{fragment}"


def typed_entity(request: Request, fragment: str, odata_type: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """One object as a directory object is served: its context, then its own @odata.type, then the object."""
    return {"@odata.context": context_url(request, fragment), "@odata.type": f"#{odata_type}", **obj}


def object_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", "BadRequest")
    return body
