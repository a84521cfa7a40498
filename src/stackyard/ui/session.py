"""Who is using the console: the key given at login, kept in an HttpOnly cookie, and the calls
the console makes to the gateway's own APIs with it (in process, through the route table), so
that every page sees exactly what that key may see through the API."""

from __future__ import annotations

import http.cookies
import urllib.parse
from typing import Any

import orjson

from stackyard.errors import APIError
from stackyard.server.http import Request
from stackyard.server.routing import Routes
from stackyard.server.types import Message

COOKIE = "stackyard_key"
#: Requests from the console's scripts carry this header: a page on another site cannot send
#: it without a CORS preflight, which the gateway never grants (with SameSite=Strict, the
#: defence against cross-site requests riding on the cookie).
UI_HEADER = b"x-stackyard-ui"


#: The key the console calls the APIs with on an open gateway (no master key and no virtual
#: key: the APIs take any key, or none), where nobody logs in.
OPEN_KEY = "open-gateway"


def cookie_key(request: Request) -> str | None:
    raw = request.header(b"cookie")
    if not raw:
        return None
    jar: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
    try:
        jar.load(raw.decode("latin-1"))
    except http.cookies.CookieError:
        return None
    morsel = jar.get(COOKIE)
    return urllib.parse.unquote(morsel.value) if morsel and morsel.value else None


def login_cookie(key: str) -> tuple[bytes, bytes]:
    value = urllib.parse.quote(key, safe="")
    return b"set-cookie", f"{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict".encode()


def logout_cookie() -> tuple[bytes, bytes]:
    return b"set-cookie", f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict".encode()


def as_key(request: Request, key: str) -> Request:
    """``request`` as if it came with ``Authorization: Bearer KEY`` (and no cookie)."""
    headers = [
        (name, value)
        for name, value in request.scope["headers"]
        if name not in (b"authorization", b"x-api-key", b"cookie")
    ]
    headers.append((b"authorization", f"Bearer {key}".encode("latin-1")))
    scope = {**request.scope, "headers": headers}
    inner = Request(scope, request.receive, max_body_bytes=request.max_body_bytes)
    inner.request_id = request.request_id
    return inner


class Caller:
    """Calls the gateway's JSON APIs in process, as one key."""

    def __init__(self, routes: Routes, max_body_bytes: int) -> None:
        self.routes = routes
        self.max_body_bytes = max_body_bytes

    async def __call__(
        self,
        key: str,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: Any = None,
    ) -> tuple[int, Any]:
        """(status, decoded JSON) of the API's answer, errors included."""
        params = {k: v for k, v in (query or {}).items() if v not in (None, "")}
        payload = orjson.dumps(body) if body is not None else b""
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "query_string": urllib.parse.urlencode(params).encode(),
            "headers": [
                (b"authorization", f"Bearer {key}".encode("latin-1")),
                (b"content-type", b"application/json"),
            ],
        }

        async def receive() -> Message:
            return {"type": "http.request", "body": payload, "more_body": False}

        request = Request(scope, receive, max_body_bytes=self.max_body_bytes)
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        try:
            reply = await self.routes.find(method, path)(request)
            await reply(send, receive, request.request_id)
        except APIError as exc:
            return exc.status, exc.body()
        status = int(sent[0]["status"]) if sent else 500
        raw = b"".join(m.get("body", b"") for m in sent[1:])
        try:
            return status, orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            return status, raw.decode("utf-8", "replace")
