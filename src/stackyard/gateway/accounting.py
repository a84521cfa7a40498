"""Settling a request: a routed JSON answer at once, a streamed one once it ends; and the
cost header."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from stackyard.gateway.deployment import Deployment
from stackyard.observability.capture import ChunkCapture, EventCapture

if TYPE_CHECKING:
    from stackyard.auth.admission import Governance, Ticket
    from stackyard.errors import APIError
    from stackyard.gateway.router import Routed, RouteStats
    from stackyard.server.http import Request, Response


def cost_header(cost: float) -> tuple[bytes, bytes]:
    return b"x-stackyard-cost-usd", f"{cost:.8f}".encode()


async def settled_json(
    governance: Governance,
    request: Request,
    ticket: Ticket,
    stats: RouteStats,
    call: Callable[[], Awaitable[Routed[dict[str, Any]]]],
    summary: Callable[[dict[str, Any]], dict[str, Any]],
) -> Response:
    """The JSON answer of ``call`` (a routed request that is not streamed), with the ticket
    settled either way: its usage, spend and trace (``summary``: the answer as the trace
    stores it), and the route and cost headers."""
    from stackyard.errors import APIError
    from stackyard.gateway.headers import route_headers, with_route_headers
    from stackyard.server.http import Response

    try:
        routed = await call()
    except APIError as exc:
        await governance.finish(
            ticket, status=exc.status, usage=None, deployment=None, stats=stats, error=exc
        )
        raise with_route_headers(exc, request, stats) from None
    except BaseException as exc:  # a bug or a cancellation: nothing it reserved stays held
        await governance.abandon(ticket, exc, stats)
        raise
    cost = await governance.finish(
        ticket,
        status=200,
        usage=routed.result.get("usage"),
        deployment=routed.deployment,
        stats=stats,
        response=summary(routed.result) if ticket.trace is not None else None,
    )
    headers = [*route_headers(request, stats), *ticket.headers, cost_header(cost)]
    return Response.json(routed.result, headers=headers)


class Settlement:
    """Collects a stream's usage (and, for its trace, the time of its first chunk and the
    answer it assembles) as it passes, and settles the ticket when the stream ends (whole,
    failed, or abandoned by its client)."""

    __slots__ = (
        "cache_hit",
        "capture",
        "complete",
        "cost",
        "deployment",
        "error",
        "governance",
        "on_complete",
        "stats",
        "status",
        "ticket",
        "usage",
    )

    def __init__(
        self,
        governance: Governance,
        ticket: Ticket,
        deployment: Deployment | None,
        stats: RouteStats | None = None,
        capture: ChunkCapture | EventCapture | None = None,
        *,
        cache_hit: bool = False,
        cost: float | None = None,
    ) -> None:
        self.governance = governance
        self.ticket = ticket
        self.deployment = deployment
        self.stats = stats
        self.usage: dict[str, Any] | None = None
        self.status = 200
        self.error: APIError | None = None
        #: Set only when the request is traced.
        self.capture = capture if ticket.trace is not None else None
        self.cache_hit = cache_hit
        self.cost = cost
        #: The stream reached its end (not an error, not a client that left).
        self.complete = False
        #: Called with the cost once a complete stream is settled (the cache keeps it).
        self.on_complete: Callable[[float], None] | None = None

    def first_chunk(self) -> None:
        if self.ticket.trace is not None:
            self.ticket.trace.first_chunk_ns = time.time_ns()

    def failed(self, status: int, code: str, message: str) -> None:
        from stackyard.errors import APIError

        self.status = status
        self.error = APIError(status, message, type="server_error", code=code)

    async def done(self) -> None:
        capture = self.capture
        cost = await self.governance.finish(
            self.ticket,
            status=self.status,
            usage=self.usage,
            deployment=self.deployment,
            stats=self.stats,
            error=self.error,
            response=capture.result(self.usage) if capture is not None else None,
            cache_hit=self.cache_hit,
            cost=self.cost,
        )
        if self.complete and self.status == 200 and self.on_complete is not None:
            self.on_complete(cost)
