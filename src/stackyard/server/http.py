"""Requests and responses over raw ASGI."""

from __future__ import annotations

import asyncio
import os
import time
import urllib.parse
from typing import Any

import orjson

from stackyard.errors import APIError, body_too_large, invalid_request
from stackyard.server.types import Headers, Receive, Scope, Send

JSON = b"application/json"
#: What is read and dropped of a refused body, at most, before the 413 (then the connection
#: closes): enough for any client that sends first and reads after.
DISCARD_BYTES = 256 * 1024 * 1024
DISCARD_SECONDS = 10.0
#: How deep a request's JSON may nest (objects and arrays), unless server.max_json_depth says
#: otherwise: far more than any API's body needs, and nothing downstream ever recurses further.
DEFAULT_JSON_DEPTH = 64


def nested_deeper(value: object, limit: int) -> bool:
    """Whether JSON ``value`` nests objects and arrays more than ``limit`` levels deep (the top
    level is 1). Iterative: a body nested a thousand levels deep costs no recursion."""
    if type(value) is not dict and type(value) is not list:
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        for child in item.values() if type(item) is dict else item:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, depth + 1))
    return False


def new_request_id() -> str:
    return os.urandom(12).hex()


def _clean_request_id(value: bytes) -> str | None:
    if not value or len(value) > 128:
        return None
    text = value.decode("latin-1")
    return text if text.isprintable() else None


class Request:
    """One HTTP request. Headers are looked up lazily; the body is read at most once."""

    __slots__ = (
        "_body",
        "_headers",
        "max_body_bytes",
        "max_json_depth",
        "receive",
        "request_id",
        "scope",
        "started",
    )

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        *,
        max_body_bytes: int,
        max_json_depth: int = DEFAULT_JSON_DEPTH,
    ) -> None:
        self.scope = scope
        self.receive = receive
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth
        self.started = time.perf_counter()
        self._headers: dict[bytes, bytes] | None = None
        self._body: bytes | None = None
        given = self.header(b"x-request-id")
        self.request_id = (_clean_request_id(given) if given else None) or new_request_id()

    @property
    def method(self) -> str:
        method: str = self.scope["method"]
        return method

    @property
    def path(self) -> str:
        path: str = self.scope["path"]
        return path

    @property
    def query(self) -> dict[str, str]:
        """The query string's parameters (the last value of a repeated one)."""
        raw = self.scope.get("query_string", b"").decode("latin-1")
        return {k: v[-1] for k, v in urllib.parse.parse_qs(raw).items()}

    def header(self, name: bytes) -> bytes | None:
        headers = self._headers
        if headers is None:
            headers = self._headers = dict(self.scope["headers"])
        return headers.get(name)

    async def body(self) -> bytes:
        if self._body is not None:
            return self._body
        limit = self.max_body_bytes
        declared = self.header(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._discard()
            raise body_too_large(limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    await self._discard()
                    raise body_too_large(limit)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        self._body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return self._body

    async def _discard(self) -> None:
        """Read and drop the rest of a body that is refused, so that a client which sends
        its whole body before it reads (urllib, requests) gets the 413 and not a reset
        connection, as nginx's lingering close does; within bounds, then the connection goes."""
        dropped = 0
        deadline = time.monotonic() + DISCARD_SECONDS
        while dropped < DISCARD_BYTES and time.monotonic() < deadline:
            try:
                message = await asyncio.wait_for(self.receive(), deadline - time.monotonic())
            except TimeoutError:
                return
            if message["type"] != "http.request":
                return
            dropped += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def json_object(self) -> dict[str, Any]:
        """The body as a JSON object, or a 400 that says what is wrong with it."""
        raw = await self.body()
        if not raw:
            raise invalid_request("The request body is empty; expected a JSON object.")
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise invalid_request(
                f"We could not parse the JSON body of your request: {exc}. "
                "The body must be valid JSON (see https://www.json.org)."
            ) from None
        if not isinstance(data, dict):
            raise invalid_request(
                f"The request body must be a JSON object, not a {type(data).__name__}."
            )
        if nested_deeper(data, self.max_json_depth):
            raise invalid_request(
                f"The JSON body is nested deeper than {self.max_json_depth} levels "
                "(the server's limit, server.max_json_depth)."
            )
        return data


class ClientDisconnected(Exception):
    """The client went away before the request was read."""


class Response:
    """A complete response, sent in one go."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        headers: Headers | None = None,
        content_type: bytes = JSON,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else []
        self.content_type = content_type

    @classmethod
    def text(cls, text: str, content_type: str = "text/plain; charset=utf-8") -> Response:
        return cls(200, text.encode(), content_type=content_type.encode())

    @classmethod
    def json(cls, data: object, status: int = 200, headers: Headers | None = None) -> Response:
        return cls(status, orjson.dumps(data), headers)

    @classmethod
    def error(cls, error: APIError, headers: Headers | None = None) -> Response:
        extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in error.headers]
        return cls(error.status, error.to_json(), [*(headers or []), *extra])

    async def __call__(self, send: Send, receive: Receive, request_id: str) -> None:
        body = self.body
        headers = [
            (b"content-type", self.content_type),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode("latin-1")),
            *self.headers,
        ]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
