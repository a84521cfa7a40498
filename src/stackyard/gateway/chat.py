"""``POST /v1/chat/completions``: validate, route, and answer whole or as a stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson

from stackyard.auth.admission import Ticket
from stackyard.errors import APIError
from stackyard.gateway.accounting import Settlement, cost_header
from stackyard.gateway.deployment import Deployment
from stackyard.gateway.headers import route_headers, with_route_headers
from stackyard.gateway.providers.base import Body, UpstreamError
from stackyard.gateway.router import RouteStats
from stackyard.gateway.service import Gateway
from stackyard.gateway.wire import validate_chat
from stackyard.observability.capture import ChunkCapture
from stackyard.server.http import Request, Response
from stackyard.server.streaming import EventStream

DONE = b"data: [DONE]\n\n"


async def chat_completions(gateway: Gateway, request: Request) -> Response | EventStream:
    body = await request.json_object()
    applied = None
    spec = body.get("prompt")
    if spec is not None:
        session = request.header(b"x-stackyard-session-id")
        user = body.get("user")
        body, applied = gateway.prompts.apply(
            body,
            user=user if isinstance(user, str) else None,
            session=session.decode("latin-1") if session else None,
        )
    parsed = validate_chat(body)
    governance = gateway.governance
    ticket = await governance.admit(request, body, endpoint="chat")
    if applied is not None:
        served = f"{applied.name}@{applied.version}".encode()
        ticket.headers = [*ticket.headers, (b"x-stackyard-prompt", served)]
        if ticket.trace is not None:
            ticket.trace.prompt_name = applied.name
            ticket.trace.prompt_version = applied.version
            # Stored with the rendered request: the variables make a dataset item later.
            ticket.trace.body = {**body, "prompt": spec}
    stats = RouteStats()
    try:
        if parsed.stream:
            options = parsed.stream_options
            return await _stream(
                gateway, request, body, stats, bool(options and options.include_usage), ticket
            )
        routed = await gateway.router.run(
            body["model"], lambda d: d.provider.chat(body), stats=stats
        )
    except APIError as exc:
        await governance.finish(
            ticket, status=exc.status, usage=None, deployment=None, stats=stats, error=exc
        )
        raise with_route_headers(exc, request, stats) from None
    cost = await governance.finish(
        ticket,
        status=200,
        usage=routed.result.get("usage"),
        deployment=routed.deployment,
        stats=stats,
        response=routed.result,
    )
    headers = [*route_headers(request, stats), *ticket.headers, cost_header(cost)]
    return Response.json(routed.result, headers=headers)


async def _stream(
    gateway: Gateway,
    request: Request,
    body: Body,
    stats: RouteStats,
    client_wants_usage: bool,
    ticket: Ticket,
) -> EventStream:
    async def attempt(deployment: Deployment) -> tuple[Body, AsyncGenerator[Body, None], bool]:
        hidden_usage = deployment.provider.capabilities.stream_usage and not client_wants_usage
        upstream_body = body
        if hidden_usage:
            # Always learn the usage (for cost accounting); the client does not see it.
            options = {**(body.get("stream_options") or {}), "include_usage": True}
            upstream_body = {**body, "stream_options": options}
        chunks = deployment.provider.chat_stream(upstream_body)
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            raise UpstreamError(
                "invalid_response", f"deployment {deployment.id} sent an empty stream"
            ) from None
        except BaseException:
            await chunks.aclose()
            raise
        return first, chunks, hidden_usage

    routed = await gateway.router.run(
        body["model"],
        attempt,
        stats=stats,
        stream=True,
        supports=lambda d: d.provider.capabilities.streaming,
        operation="streaming",
    )
    first, chunks, hidden_usage = routed.result
    idle_timeout = gateway.config.router.stream_idle_timeout
    settle = Settlement(gateway.governance, ticket, routed.deployment, stats, ChunkCapture())
    events = _events(first, chunks, hidden_usage, idle_timeout, routed.deployment, settle)
    return EventStream(events, [*route_headers(request, stats), *ticket.headers])


async def _events(
    first: Body,
    chunks: AsyncGenerator[Body, None],
    hidden_usage: bool,
    idle_timeout: float,
    deployment: Deployment,
    settle: Settlement,
) -> AsyncIterator[bytes]:
    """Encode chunks as SSE events; a failure after the first byte ends the stream with an
    error event (never a silent, truncated stream)."""
    capture = settle.capture
    settle.first_chunk()
    try:
        chunk: Body | None = first
        while True:
            if chunk is not None and chunk.get("usage"):
                settle.usage = chunk["usage"]
            if chunk is not None and capture is not None:
                capture.feed(chunk)
            if chunk is not None:
                if hidden_usage and "usage" in chunk:
                    chunk.pop("usage")
                    if not chunk.get("choices"):
                        chunk = None  # the usage-only chunk the client did not ask for
                if chunk is not None:
                    yield b"data: " + orjson.dumps(chunk) + b"\n\n"
            try:
                async with asyncio.timeout(idle_timeout):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                break
        yield DONE
    except UpstreamError as exc:
        settle.failed(502, "upstream_error", exc.message)
        yield _error_event(exc.message)
    except TimeoutError:
        message = (
            f"deployment {deployment.id} sent nothing for {idle_timeout:g} seconds; "
            "the stream was ended"
        )
        settle.failed(504, "upstream_timeout", message)
        yield _error_event(message)
    finally:
        await chunks.aclose()
        await settle.done()


def _error_event(message: str) -> bytes:
    error: dict[str, Any] = {
        "error": {
            "message": message,
            "type": "server_error",
            "param": None,
            "code": "upstream_error",
        }
    }
    return b"data: " + orjson.dumps(error) + b"\n\n"
