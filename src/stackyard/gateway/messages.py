"""``POST /v1/messages``: Anthropic's Messages API as a second door into the gateway.

A request for a model served by Anthropic passes through untouched (but for the guardrails:
secrets, PII redaction and restoration, secrets in answers, as on chat completions); a request
for any other model (OpenAI, self-hosted, in-process) is translated to chat completions and
back, streaming included. Routing, retries and fallback are the same as for
``/v1/chat/completions``, so a Claude model can fall back to an open-source one and the other
way round.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import orjson

from stackyard.auth.admission import Ticket
from stackyard.errors import APIError
from stackyard.gateway.accounting import Settlement, cost_header
from stackyard.gateway.anthropic_wire import error_body, error_type, validate_messages
from stackyard.gateway.chat import check_secrets, pii_vault, rails, secrets_out, tags_names
from stackyard.gateway.deployment import Deployment
from stackyard.gateway.headers import route_headers, with_route_headers
from stackyard.gateway.providers.base import Body, MessagesProvider, UpstreamError
from stackyard.gateway.router import RouteStats
from stackyard.gateway.service import Gateway
from stackyard.gateway.translate import anthropic_backend, anthropic_frontdoor
from stackyard.guardrails.anthropic_shape import (
    EventTransformer,
    change_message,
    change_request,
    request_texts,
    transform_events,
)
from stackyard.guardrails.redaction import redacted
from stackyard.guardrails.secrets import Masker, SecretWindow, mask, scan_messages
from stackyard.guardrails.vault import StreamRestorer
from stackyard.observability.capture import EventCapture
from stackyard.server.http import Request, Response
from stackyard.server.streaming import EventStream

#: A stream of Anthropic events, however produced: (event name, data).
Events = AsyncGenerator[tuple[str | None, Body], None]


def _native(deployment: Deployment) -> bool:
    return deployment.provider.capabilities.anthropic_messages


def _messages_provider(deployment: Deployment) -> MessagesProvider:
    return cast(MessagesProvider, deployment.provider)


async def screen(gateway: Gateway, body: Body, ticket: Ticket) -> None:
    """The injection and topics rails, on the Messages shape's user texts and tool results."""
    if gateway.injection is not None:
        policy = rails(gateway, ticket).injection
        keep = tags_names(gateway, ticket)
        await gateway.injection.check(body, None, ticket, policy, request_texts, keep)
    if gateway.topics is not None:
        await gateway.topics.check(body, ticket, rails(gateway, ticket).topics, request_texts)


def anthropic_error(error: APIError) -> Response:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in error.headers]
    return Response(error.status, error_body(error), headers)


async def messages(gateway: Gateway, request: Request) -> Response | EventStream:
    stats = RouteStats()
    governance = gateway.governance
    ticket: Ticket | None = None
    try:
        body = await request.json_object()
        principal = governance.authenticate(request)  # a keyless caller learns nothing more
        validate_messages(body)
        ticket = await governance.admit(request, body, endpoint="messages", principal=principal)
        body = check_secrets(gateway, body, ticket, scan_messages, _masked_request)
        await screen(gateway, body, ticket)
        if body.get("stream"):
            return await _stream(gateway, request, body, stats, ticket)
        guarded = ticket

        async def attempt(deployment: Deployment) -> Body:
            vault = pii_vault(gateway, deployment, guarded)
            sent = await redacted(body, vault, change_request) if vault is not None else body
            if _native(deployment):
                result = await _messages_provider(deployment).messages(sent)
            else:
                completion = await deployment.provider.chat(anthropic_frontdoor.request(sent))
                result = anthropic_frontdoor.message(completion, model=body["model"])
            if vault is not None and len(vault):
                change_message(result, vault.restore)
            if rails(gateway, guarded).secrets.output == "redact":
                masker = Masker()
                change_message(result, masker)
                secrets_out(guarded, masker.count)
            return result

        routed = await gateway.router.run(body["model"], attempt, stats=stats, operation="messages")
    except APIError as exc:
        if ticket is not None:
            await governance.finish(
                ticket, status=exc.status, usage=None, deployment=None, stats=stats, error=exc
            )
        return anthropic_error(with_route_headers(exc, request, stats))
    except BaseException as exc:  # a bug or a cancellation: nothing it reserved stays held
        if ticket is not None:
            await governance.abandon(ticket, exc, stats)
        raise
    assert ticket is not None  # admitted before routing
    usage = routed.result.get("usage")
    cost = await governance.finish(
        ticket,
        status=200,
        usage=anthropic_backend.usage(usage) if isinstance(usage, dict) else None,
        deployment=routed.deployment,
        stats=stats,
        response=routed.result,
    )
    headers = [*route_headers(request, stats), *ticket.headers, cost_header(cost)]
    return Response.json(routed.result, headers=headers)


async def count_tokens(gateway: Gateway, request: Request) -> Response:
    stats = RouteStats()
    try:
        body = await request.json_object()
        gateway.governance.authenticate(request)  # a keyless caller learns nothing more
        validate_messages(body, count=True)

        async def attempt(deployment: Deployment) -> Body:
            return await _messages_provider(deployment).count_tokens(body)

        routed = await gateway.router.run(
            body["model"],
            attempt,
            stats=stats,
            supports=_native,
            operation="token counting",
            fallbacks=False,
        )
    except APIError as exc:
        return anthropic_error(with_route_headers(exc, request, stats))
    return Response.json(routed.result, headers=route_headers(request, stats))


async def _translated_events(deployment: Deployment, body: Body) -> Events:
    """Events from an OpenAI-format back end, translated as they arrive."""
    translator = anthropic_frontdoor.EventTranslator(model=body["model"])
    chunks = deployment.provider.chat_stream(anthropic_frontdoor.request(body))
    try:
        async for chunk in chunks:
            for event in translator.feed(chunk):
                yield event
    finally:
        await chunks.aclose()
    for event in translator.finish():
        yield event


async def _native_events(deployment: Deployment, body: Body) -> Events:
    events = _messages_provider(deployment).messages_stream(body)
    try:
        async for name, data in events:
            if (data.get("type") or name) == "error":
                error = data.get("error") or {}
                raise UpstreamError(
                    "rate_limited" if error.get("type") == "rate_limit_error" else "server",
                    f"Anthropic stream error ({error.get('type')}): {error.get('message')}",
                    error_type=error.get("type"),
                )
            yield name, data
    finally:
        await events.aclose()


async def _stream(
    gateway: Gateway, request: Request, body: Body, stats: RouteStats, ticket: Ticket
) -> EventStream:
    async def attempt(deployment: Deployment) -> tuple[tuple[str | None, Body], Events]:
        vault = pii_vault(gateway, deployment, ticket)
        sent = await redacted(body, vault, change_request) if vault is not None else body
        events = (
            _native_events(deployment, sent)
            if _native(deployment)
            else (_translated_events(deployment, sent))
        )
        if vault is not None:
            events = transform_events(events, EventTransformer(lambda: StreamRestorer(vault)))
        if rails(gateway, ticket).secrets.output == "redact":
            events = transform_events(events, EventTransformer(SecretWindow))
        try:
            first = await anext(events)
        except StopAsyncIteration:
            raise UpstreamError(
                "invalid_response", f"deployment {deployment.id} sent an empty stream"
            ) from None
        except BaseException:
            await events.aclose()
            raise
        return first, events

    routed = await gateway.router.run(
        body["model"],
        attempt,
        stats=stats,
        stream=True,
        supports=lambda d: d.provider.capabilities.streaming,
        operation="streaming",
    )
    first, events = routed.result
    idle = gateway.config.router.stream_idle_timeout
    settle = Settlement(gateway.governance, ticket, routed.deployment, stats, EventCapture())
    encoded = _encode(first, events, idle, routed.deployment, settle)
    return EventStream(encoded, [*route_headers(request, stats), *ticket.headers])


def _masked_request(body: Body) -> Body:
    return change_request(body, mask)


def _sse(name: str | None, data: Any) -> bytes:
    event = (name or str(data.get("type", "message"))).encode()
    return b"event: " + event + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _track_usage(usage: dict[str, Any], data: Body) -> None:
    """Anthropic's usage arrives in message_start and (cumulative) in message_delta."""
    found = (data.get("message") or {}).get("usage") or data.get("usage") or {}
    for key, value in found.items():
        if value is not None:
            usage[key] = value


async def _encode(
    first: tuple[str | None, Body],
    events: Events,
    idle: float,
    deployment: Deployment,
    settle: Settlement,
) -> AsyncIterator[bytes]:
    usage: dict[str, Any] = {}
    capture = settle.capture
    settle.first_chunk()
    try:
        _track_usage(usage, first[1])
        if capture is not None:
            capture.feed(first[1])
        yield _sse(*first)
        while True:
            try:
                async with asyncio.timeout(idle):
                    name, data = await anext(events)
            except StopAsyncIteration:
                break
            _track_usage(usage, data)
            if capture is not None:
                capture.feed(data)
            yield _sse(name, data)
    except UpstreamError as exc:
        settle.failed(502, "upstream_error", exc.message)
        yield _error_event(exc.error_type or error_type(502), exc.message)
    except TimeoutError:
        message = f"deployment {deployment.id} sent nothing for {idle:g} seconds; stream ended"
        settle.failed(504, "upstream_timeout", message)
        yield _error_event(error_type(504), message)
    finally:
        await events.aclose()
        settle.usage = anthropic_backend.usage(usage)
        await settle.done()


def _error_event(kind: str, message: str) -> bytes:
    data = {"type": "error", "error": {"type": kind, "message": message}}
    return _sse("error", data)
