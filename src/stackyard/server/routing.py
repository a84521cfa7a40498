"""A route table: exact paths, looked up in a dict (the hot path does no regex matching)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from stackyard.errors import method_not_allowed, not_found
from stackyard.server.http import Request
from stackyard.server.types import Receive, Send


class Reply(Protocol):
    async def __call__(self, send: Send, receive: Receive, request_id: str) -> None: ...


Handler = Callable[[Request], Awaitable[Reply]]


class Routes:
    def __init__(self) -> None:
        self._table: dict[str, dict[str, Handler]] = {}
        #: Paths under a prefix (``/api/traces/{id}``): tried, longest first, after an exact miss.
        self._prefixes: list[tuple[str, dict[str, Handler]]] = []

    def add(self, method: str, paths: Iterable[str], handler: Handler) -> None:
        for path in paths:
            self._table.setdefault(path, {})[method] = handler

    def add_prefix(self, method: str, prefix: str, handler: Handler) -> None:
        """Serve every path that starts with ``prefix`` (ending in ``/``); the handler reads
        the rest of the path itself."""
        for known, methods in self._prefixes:
            if known == prefix:
                methods[method] = handler
                return
        self._prefixes.append((prefix, {method: handler}))
        self._prefixes.sort(key=lambda entry: -len(entry[0]))

    def endpoints(self) -> list[tuple[str, str]]:
        """Every (method, path) served."""
        exact = [(method, path) for path, methods in self._table.items() for method in methods]
        return exact + [
            (method, prefix + "{id}") for prefix, methods in self._prefixes for method in methods
        ]

    def find(self, method: str, path: str) -> Handler:
        methods = self._table.get(path)
        if methods is None and len(path) > 1 and path.endswith("/"):
            methods = self._table.get(path.rstrip("/"))
        if methods is None:
            methods = next(
                (m for prefix, m in self._prefixes if path.startswith(prefix) and path != prefix),
                None,
            )
        if methods is None:
            raise not_found(path)
        handler = methods.get(method)
        if handler is None:
            if method == "HEAD" and "GET" in methods:
                return methods["GET"]
            raise method_not_allowed(method, path, sorted(methods))
        return handler
