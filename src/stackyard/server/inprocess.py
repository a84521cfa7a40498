"""A call of one of the server's own routes from inside the process, as a given principal (the
console's pages, a batch's lines): a request built in memory, its reply collected."""

from __future__ import annotations

from typing import Any

import orjson

from stackyard.auth.admission import PRINCIPAL_SCOPE
from stackyard.auth.principal import Principal
from stackyard.errors import APIError
from stackyard.server.http import Request
from stackyard.server.routing import Routes
from stackyard.server.types import Message


async def call_route(
    routes: Routes,
    method: str,
    path: str,
    principal: Principal,
    *,
    payload: bytes = b"",
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    scope: dict[str, Any] | None = None,
    max_body_bytes: int,
) -> tuple[int, Any, str]:
    """(status, decoded JSON or text, request id) of the route's answer, errors included."""
    built = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": [(b"content-type", b"application/json"), *(headers or [])],
        PRINCIPAL_SCOPE: principal,
        **(scope or {}),
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": payload, "more_body": False}

    request = Request(built, receive, max_body_bytes=max_body_bytes)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    try:
        reply = await routes.find(method, path)(request)
        await reply(send, receive, request.request_id)
    except APIError as exc:
        return exc.status, exc.body(), request.request_id
    status = int(sent[0]["status"]) if sent else 500
    raw = b"".join(m.get("body", b"") for m in sent[1:])
    try:
        return status, orjson.loads(raw) if raw else None, request.request_id
    except orjson.JSONDecodeError:
        return status, raw.decode("utf-8", "replace"), request.request_id
