"""The ``x-stackyard-*`` response headers that say how a request was routed."""

from __future__ import annotations

import time

from stackyard.errors import APIError
from stackyard.gateway.router import RouteStats
from stackyard.server.http import Request
from stackyard.server.types import Headers


def route_headers(request: Request, stats: RouteStats, *, served: bool = True) -> Headers:
    """Attempts, overhead (time in the gateway itself, upstream waits excluded) and, when a
    deployment answered, which one."""
    overhead_ms = max(0.0, (time.perf_counter() - request.started - stats.waited) * 1000)
    headers = [
        (b"x-stackyard-attempts", str(stats.attempts).encode()),
        (b"x-stackyard-overhead-ms", f"{overhead_ms:.3f}".encode()),
    ]
    if served and stats.deployment is not None:
        headers.append((b"x-stackyard-model-deployment", stats.deployment.id.encode("utf-8")))
    return headers


def with_route_headers(error: APIError, request: Request, stats: RouteStats) -> APIError:
    """Add the routing headers to an error on its way to the client."""
    for name, value in route_headers(request, stats, served=False):
        error.headers.append((name.decode("latin-1"), value.decode("latin-1")))
    return error
