"""Who is using the console, and the calls it makes for them.

A browser that logs in gets a session (:mod:`stackyard.ui.sessions`): its cookie holds an opaque
token, never the key. The console calls the gateway's own APIs in process, through the route
table, as the session's principal (set on the request's scope, which no HTTP client can
reach), so that every page sees exactly what that key may see through the API.

Cross-site requests: the cookie is ``SameSite=Strict`` and ``HttpOnly`` (``Secure`` over
TLS), every form carries the session's anti-forgery token, and a POST whose ``Origin`` (or,
without one, ``Referer``) is another site is refused, as is a login without the token of the
login page it came from (no login CSRF).
"""

from __future__ import annotations

import hmac
import http.cookies
import secrets
import urllib.parse
from collections.abc import Callable
from typing import Any

import orjson

from stackyard.auth.admission import PRINCIPAL_SCOPE
from stackyard.auth.principal import Principal
from stackyard.server.http import Request
from stackyard.server.inprocess import call_route
from stackyard.server.routing import Routes

COOKIE = "stackyard_session"
#: The login page's anti-forgery token (double submit: the cookie and the form's field).
LOGIN_COOKIE = "stackyard_login"
#: The cookie of earlier versions, which held the key itself: cleared at logout and login.
OLD_COOKIE = "stackyard_key"
#: Requests from the console's scripts carry this header: a page on another site cannot send
#: it without a CORS preflight, which the gateway never grants.
UI_HEADER = b"x-stackyard-ui"

#: The console's subjects: the master key, an open gateway (no keys at all: nobody logs in),
#: or a virtual key by the sha256 the store keeps of it ("key:...").
MASTER_SUBJECT = "master"
OPEN_SUBJECT = "open"

#: On every page the console serves.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        b"img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        b"form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def cookies(request: Request) -> dict[str, str]:
    raw = request.header(b"cookie")
    if not raw:
        return {}
    jar: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
    try:
        jar.load(raw.decode("latin-1"))
    except http.cookies.CookieError:
        return {}
    return {name: urllib.parse.unquote(m.value) for name, m in jar.items() if m.value}


def secure(request: Request, always: bool) -> bool:
    """Whether cookies get ``Secure``: configured so (TLS ends in front of the gateway), or the
    request came over https."""
    return always or request.scope.get("scheme") == "https"


def _cookie(name: str, value: str, path: str, max_age: int, is_secure: bool) -> tuple[bytes, bytes]:
    flags = f"Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict"
    if is_secure:
        flags += "; Secure"
    return b"set-cookie", f"{name}={urllib.parse.quote(value, safe='')}; {flags}".encode()


def session_cookie(token: str, max_age: int, is_secure: bool) -> tuple[bytes, bytes]:
    return _cookie(COOKIE, token, "/", max_age, is_secure)


def login_token_cookie(token: str, is_secure: bool) -> tuple[bytes, bytes]:
    return _cookie(LOGIN_COOKIE, token, "/ui/login", 3600, is_secure)


def cleared_cookies() -> list[tuple[bytes, bytes]]:
    return [
        (b"set-cookie", f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict".encode()),
        (b"set-cookie", f"{OLD_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict".encode()),
    ]


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


def same_origin(request: Request) -> bool:
    """Whether a POST came from one of the console's own pages, as far as the browser says:
    its ``Origin`` (or, without one, its ``Referer``) is this server. A request that carries
    neither (not a browser's, or a very old one) is left to the anti-forgery token."""
    host = request.header(b"host")
    if host is None:
        return False
    own = host.decode("latin-1").lower()
    # The host and port, whatever the scheme: behind a proxy that ends TLS, the browser's
    # origin is https while the request reaching the gateway is http.
    for name in (b"origin", b"referer"):
        given = request.header(name)
        if given is not None:
            return urllib.parse.urlsplit(given.decode("latin-1")).netloc.lower() == own
    return True


def as_principal(request: Request, principal: Principal) -> Request:
    """``request`` as the console's caller makes it: its principal set, no key or cookie."""
    headers = [
        (name, value)
        for name, value in request.scope["headers"]
        if name not in (b"authorization", b"x-api-key", b"cookie")
    ]
    scope = {**request.scope, "headers": headers, PRINCIPAL_SCOPE: principal}
    inner = Request(
        scope,
        request.receive,
        max_body_bytes=request.max_body_bytes,
        max_json_depth=request.max_json_depth,
    )
    inner.request_id = request.request_id
    return inner


class Caller:
    """Calls the gateway's JSON APIs in process, as one of the console's subjects."""

    def __init__(
        self,
        routes: Routes,
        max_body_bytes: int,
        principal_of: Callable[[str], Principal | None],
    ) -> None:
        self.routes = routes
        self.max_body_bytes = max_body_bytes
        self.principal_of = principal_of

    async def __call__(
        self,
        subject: str,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: Any = None,
    ) -> tuple[int, Any]:
        """(status, decoded JSON) of the API's answer, errors included."""
        principal = self.principal_of(subject)
        if principal is None:
            return 401, {"error": {"message": "This session's key is no longer valid."}}
        params = {k: v for k, v in (query or {}).items() if v not in (None, "")}
        status, answer, _ = await call_route(
            self.routes,
            method,
            path,
            principal,
            payload=orjson.dumps(body) if body is not None else b"",
            query=urllib.parse.urlencode(params).encode(),
            max_body_bytes=self.max_body_bytes,
        )
        return status, answer
