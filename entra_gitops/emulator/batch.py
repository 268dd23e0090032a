"""JSON batching: up to 20 sub-requests in one $batch envelope, each answered as if sent on its own."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from entra_gitops.emulator.odata import Query
from entra_gitops.emulator.protocol import (
    GraphFault,
    Reply,
    Request,
    bad_request,
    error_reply,
    new_request_id,
    object_body,
)
from entra_gitops.emulator.routes import Route

MAX_BATCH = 20


@dataclass(frozen=True)
class Batch:
    """The $batch handler; `handle` answers each sub-request, with throttling, faults and access checks."""

    handle: Callable[[Request], Reply]

    def batch(self, route: Route, params: dict[str, str], request: Request, query: Query) -> Reply:
        body = object_body(request.body)
        items = body.get("requests")
        if not isinstance(items, list) or not items:
            raise bad_request("The batch request must contain a non-empty 'requests' array.", "BadRequest")
        if len(items) > MAX_BATCH:
            raise bad_request(f"The number of batch requests exceeds the maximum of {MAX_BATCH}.", "BadRequest")
        # json-batching.md: ids are "not case-sensitive" and must be unique, or the whole batch is 400; a body
        # needs a Content-Type header. Both are checked before any request runs, as a malformed batch is.
        for item in items:
            if not isinstance(item, dict) or not {"id", "method", "url"} <= item.keys():
                raise bad_request("Every batch request needs 'id', 'method' and 'url'.", "BadRequest")
            headers = {str(k).lower() for k in (item.get("headers") or {})}
            if item.get("body") is not None and "content-type" not in headers:
                raise bad_request(f"Batch request '{item['id']}' has a body but no Content-Type header.", "BadRequest")
        ids = [str(item["id"]).lower() for item in items]
        if len(set(ids)) != len(ids):
            raise bad_request("Batch request ids must be unique (they are not case-sensitive).", "BadRequest")
        statuses: dict[str, int] = {}
        responses = []
        for item in items:
            item_id = str(item["id"])
            depends = [str(d).lower() for d in item.get("dependsOn") or []]
            if any(d not in statuses for d in depends):
                raise bad_request(
                    f"Batch request '{item_id}' depends on a request that does not come before it.", "BadRequest"
                )
            if any(statuses[d] >= 400 for d in depends):
                fault = GraphFault(
                    424, "FailedDependency", "The request was not run because a request it depends on failed."
                )
                reply = error_reply(fault, None, new_request_id())
            else:
                reply = self.handle(_sub_request(request, item))
            statuses[item_id.lower()] = reply.status
            responses.append(_batch_response(item_id, reply))
        # Graph answers sub-requests in no promised order; answering in reverse keeps clients honest.
        return Reply(200, {"responses": list(reversed(responses))})


def _sub_request(envelope: Request, item: Mapping[str, Any]) -> Request:
    url = str(item["url"]).lstrip("/")
    if url.startswith("v1.0/"):
        url = url[len("v1.0/") :]
    path, _, query = url.partition("?")
    headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
    # Graph authenticates a batch once: every sub-request runs as the caller of the envelope.
    headers.pop("authorization", None)
    if "authorization" in envelope.headers:
        headers["authorization"] = envelope.headers["authorization"]
    return Request(
        method=str(item["method"]).upper(),
        path=path.rstrip("/"),
        params=dict(parse_qsl(query, keep_blank_values=True)),
        headers=headers,
        body=item.get("body"),
        base_url=envelope.base_url,
    )


def _batch_response(item_id: str, reply: Reply) -> dict[str, Any]:
    response: dict[str, Any] = {"id": item_id, "status": reply.status, "headers": dict(reply.headers)}
    if reply.text is not None:
        response["headers"]["Content-Type"] = "text/plain"
        response["body"] = reply.text
    elif reply.body is not None:
        response["headers"]["Content-Type"] = "application/json"
        response["body"] = reply.body
    return response
