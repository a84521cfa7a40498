"""``POST /v1/chat/completions``: validate, route, and answer whole or as a stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from stackyard.auth.admission import Ticket
from stackyard.cache.service import Cache, Control, Lookup
from stackyard.config.guardrails import GuardrailsConfig
from stackyard.errors import APIError
from stackyard.gateway.accounting import Settlement, cost_header
from stackyard.gateway.deployment import Deployment
from stackyard.gateway.headers import route_headers, with_route_headers
from stackyard.gateway.providers.base import Body, UpstreamError
from stackyard.gateway.router import Routed, RouteStats
from stackyard.gateway.service import Gateway
from stackyard.gateway.validation import InvalidOutput, validate
from stackyard.gateway.wire import validate_chat
from stackyard.guardrails.audit import decide
from stackyard.guardrails.output_json import expected
from stackyard.guardrails.redaction import redacted, restore_response, restore_stream
from stackyard.guardrails.secrets import (
    MaskedStream,
    Secret,
    mask_request,
    mask_response,
    scan_request,
)
from stackyard.guardrails.vault import Vault
from stackyard.observability.capture import ChunkCapture
from stackyard.server.http import Request, Response
from stackyard.server.streaming import EventStream

DONE = b"data: [DONE]\n\n"


async def chat_completions(gateway: Gateway, request: Request) -> Response | EventStream:
    body = await request.json_object()
    governance = gateway.governance
    # Nothing but parsing before the key is checked: a registry prompt is rendered only for a
    # caller with a valid key (and its limits and budget are checked on the rendered request).
    principal = governance.authenticate(request)
    applied = None
    spec = body.get("prompt")
    rendering = (0, 0)
    if spec is not None:
        session = request.header(b"x-stackyard-session-id")
        user = body.get("user")
        started = time.time_ns()
        body, applied = gateway.prompts.apply(
            body,
            user=user if isinstance(user, str) else None,
            session=session.decode("latin-1") if session else None,
        )
        rendering = (started, time.time_ns())
    cache_spec = body.pop("cache", None)  # ours: never sent upstream
    rag_spec = body.pop("rag", None)  # ours too
    parsed = validate_chat(body)
    ticket = await governance.admit(request, body, endpoint="chat", principal=principal)
    if applied is not None:
        served = f"{applied.name}@{applied.version}".encode()
        ticket.headers = [*ticket.headers, (b"x-stackyard-prompt", served)]
        if ticket.trace is not None:
            ticket.trace.prompt_name = applied.name
            ticket.trace.prompt_version = applied.version
            # Stored with the rendered request: the variables make a dataset item later.
            ticket.trace.body = {**body, "prompt": spec}
            span = ticket.trace.child("prompt.render", *rendering)
            span.attributes["stackyard.prompt.name"] = applied.name
            span.attributes["stackyard.prompt.version"] = applied.version
    stats = RouteStats()
    options = parsed.stream_options
    wants_usage = bool(options and options.include_usage)
    stored: Stored | None = None
    citations: list[dict[str, Any]] | None = None
    try:
        if rag_spec is not None:
            body, citations = await _retrieve(gateway, body, rag_spec, ticket)
        body = check_secrets(gateway, body, ticket)
        if gateway.injection is not None:
            policy = rails(gateway, ticket).injection
            keep = tags_names(gateway, ticket)
            await gateway.injection.check(body, citations, ticket, policy, keep=keep)
        if gateway.topics is not None:
            await gateway.topics.check(body, ticket, rails(gateway, ticket).topics)
        cache = gateway.cache
        control = cache.control(request, cache_spec, ticket.principal) if cache else None
        if cache is not None and control is not None:
            looked = time.time_ns()
            found = await cache.lookup(control, ticket.principal, body)
            if ticket.trace is not None:
                span = ticket.trace.child("cache.lookup", looked)
                span.attributes["stackyard.cache.mode"] = control.mode
                span.attributes["stackyard.cache.hit"] = found.entry is not None
                span.attributes["stackyard.cache.tier"] = found.tier
                span.attributes["stackyard.cache.namespace"] = control.namespace
                if found.similarity is not None:
                    span.attributes["stackyard.cache.similarity"] = round(found.similarity, 4)
                    span.attributes["stackyard.cache.verifier_score"] = round(found.score or 0, 4)
                if found.skipped:
                    span.attributes["stackyard.cache.semantic_skipped"] = found.skipped
            if found.entry is not None:
                return await _replay(gateway, ticket, found, bool(parsed.stream), wants_usage)
            if found.key is not None:
                stored = Stored(cache, found, control, str(body["model"]))
        if parsed.stream:
            return await _stream(
                gateway, request, body, stats, wants_usage, ticket, stored, citations
            )
        routed = await gateway.router.run(
            body["model"],
            lambda d: _chat(gateway, d, body, ticket),
            stats=stats,
            supports=can_chat,
        )
        checked = await _check_json(gateway, body, routed, ticket)
    except APIError as exc:
        failed = exc if isinstance(exc, InvalidOutput) else None  # what its calls used counts
        await governance.finish(
            ticket,
            status=exc.status,
            usage=failed.usage if failed else None,
            deployment=failed.deployment if failed else None,
            stats=stats,
            error=exc,
        )
        raise with_route_headers(exc, request, stats) from None
    except BaseException as exc:  # a bug or a cancellation: nothing it reserved stays held
        await governance.abandon(ticket, exc, stats)
        raise
    usage = routed.result.get("usage")
    cost = await governance.finish(
        ticket,
        status=200,
        usage=usage,
        deployment=routed.deployment,
        stats=stats,
        response=routed.result,
    )
    headers = [*route_headers(request, stats), *ticket.headers, cost_header(cost)]
    if checked is not None:
        headers.append((b"x-stackyard-guardrails-json", checked.encode()))
    if citations is not None:
        routed.result["citations"] = citations
    if stored is not None:
        stored.keep(cost, usage, response=routed.result)
        headers.extend(miss_headers(stored))
    return Response.json(routed.result, headers=headers)


async def _check_json(
    gateway: Gateway, body: Body, routed: Routed[Body], ticket: Ticket
) -> str | None:
    """The output-validation rail (guardrails.json_output), for answers asked for as JSON."""
    action = rails(gateway, ticket).json_output.action
    wanted = expected(body) if action != "off" else None
    if wanted is None:
        return None

    async def ask(again: Body, stats: RouteStats) -> Routed[Body]:
        return await gateway.router.run(
            again["model"],
            lambda d: _chat(gateway, d, again, ticket),
            stats=stats,
            supports=can_chat,
        )

    try:
        outcome = await validate(routed, body, wanted, action, ask)
    except InvalidOutput:
        decide(ticket, "json", "failed", {"policy": action})
        if ticket.trace is not None:
            ticket.trace.root.attributes["stackyard.guardrails.json"] = "failed"
        raise
    if outcome != "valid":
        decide(ticket, "json", outcome, {"policy": action})
    if ticket.trace is not None:
        ticket.trace.root.attributes["stackyard.guardrails.json"] = outcome
    return outcome


CACHE_MISS = (b"x-stackyard-cache", b"miss")


def miss_headers(stored: Stored) -> list[tuple[bytes, bytes]]:
    """``x-stackyard-cache: miss``, and why the semantic tier was not asked, if it was not."""
    skipped = stored.found.skipped
    if skipped is None:
        return [CACHE_MISS]
    return [
        CACHE_MISS,
        (b"x-stackyard-cache-semantic-skipped", skipped.encode("latin-1", "replace")),
    ]


async def _retrieve(
    gateway: Gateway, body: Body, spec: object, ticket: Ticket
) -> tuple[Body, list[dict[str, Any]]]:
    """Passages from the collections the request names, in a system message (RAG)."""
    if gateway.rag is None:
        raise APIError(
            400,
            "This gateway does not serve RAG (install the 'rag' extra).",
            param="rag",
            code="rag_unavailable",
        )
    from stackyard.rag.augment import augment

    body, retrieval = await augment(gateway.rag, body, spec, ticket.principal, gateway.prompts)
    ticket.headers = [
        *ticket.headers,
        (b"x-stackyard-rag-citations", str(len(retrieval.citations)).encode()),
    ]
    if ticket.trace is not None:
        span = ticket.trace.child("rag.retrieve", retrieval.started_ns)
        span.attributes["stackyard.rag.collections"] = retrieval.collections
        span.attributes["stackyard.rag.passages"] = len(retrieval.citations)
        span.attributes["stackyard.rag.sources"] = [c["source"] for c in retrieval.citations]
        if retrieval.prompt is not None:
            span.attributes["stackyard.rag.prompt"] = retrieval.prompt
    return body, retrieval.citations


def rails(gateway: Gateway, ticket: Ticket) -> GuardrailsConfig:
    """The guardrail policies for this request: the gateway's, its model's, its team's."""
    return gateway.policies.for_request(ticket.principal.team_id, ticket.model)


def check_secrets(
    gateway: Gateway,
    body: Body,
    ticket: Ticket,
    scan: Callable[[Body], list[Secret]] = scan_request,
    masked: Callable[[Body], Body] = mask_request,
) -> Body:
    """Refuse, or mask, a request carrying a secret (the guardrails' secrets policy); ``scan``
    and ``masked`` read and change the request's shape."""
    action = rails(gateway, ticket).secrets.action
    if action == "off":
        return body
    found = scan(body)
    if not found:
        return body
    detectors = sorted({s.detector for s in found})
    decide(
        ticket,
        "secrets",
        "redact" if action == "redact" else "block",
        {"detectors": detectors, "where": sorted({s.where for s in found})},
    )
    if ticket.trace is not None:
        ticket.trace.root.attributes["stackyard.guardrails.secrets"] = detectors
    if action == "redact":
        return masked(body)
    first = found[0]
    raise APIError(
        400,
        f"The request carries a secret ({first.detector}) in {first.where}, characters "
        f"{first.start}-{first.end}; it was not sent. Remove it, or ask an administrator "
        "about guardrails.secrets.",
        type="invalid_request_error",
        param=first.where,
        code="secret_detected",
    )


def tags_names(gateway: Gateway, ticket: Ticket) -> bool:
    """Whether this request's PII redaction may run the entity tagger."""
    policy = rails(gateway, ticket).pii
    return gateway.tagger is not None and policy.redact != "off" and policy.names


def pii_vault(gateway: Gateway, deployment: Deployment, ticket: Ticket) -> Vault | None:
    """A vault when this deployment's requests must leave without PII (the guardrails'
    policy), else None."""
    policy = rails(gateway, ticket).pii
    if policy.redact == "off" or (policy.redact == "external" and not deployment.external):
        return None
    if ticket.trace is not None:
        ticket.trace.root.attributes["stackyard.guardrails.pii"] = "redacted"
    tagger = gateway.tagger if policy.names else None
    vault = Vault(frozenset(policy.kinds) if policy.kinds else None, tagger, ticket.readings)
    # Audited once the answer is back, and only if something was found: the kinds and
    # counts, never the values.
    decide(
        ticket,
        "pii",
        "redact",
        lambda: {"deployment": deployment.id, "found": vault.counts()} if len(vault) else None,
    )
    return vault


def can_chat(deployment: Deployment) -> bool:
    return deployment.provider.capabilities.chat


async def _chat(gateway: Gateway, deployment: Deployment, body: Body, ticket: Ticket) -> Body:
    vault = pii_vault(gateway, deployment, ticket)
    if vault is None:
        result = await deployment.provider.chat(body)
    else:
        result = restore_response(
            await deployment.provider.chat(await redacted(body, vault)), vault
        )
    if rails(gateway, ticket).secrets.output == "redact":
        secrets_out(ticket, mask_response(result))
    return result


def secrets_out(ticket: Ticket, masked: int) -> None:
    """Record on the trace how many secrets an answer carried (masked)."""
    if masked:
        decide(ticket, "secrets_output", "redact", {"count": masked})
        if ticket.trace is not None:
            ticket.trace.root.attributes["stackyard.guardrails.secrets_output"] = masked


async def _masked(chunks: AsyncGenerator[Body, None], ticket: Ticket) -> AsyncGenerator[Body, None]:
    """The stream with secrets masked (the guardrails' secrets output policy)."""
    stream = MaskedStream()
    try:
        async for chunk in stream.wrap(chunks):
            yield chunk
    finally:
        secrets_out(ticket, stream.masked)


@dataclass(slots=True)
class Stored:
    """Where a missed request's answer goes once it is complete."""

    cache: Cache
    found: Lookup
    control: Control
    model: str

    def keep(
        self,
        cost: float,
        usage: dict[str, Any] | None,
        *,
        response: Body | None = None,
        chunks: list[Body] | None = None,
    ) -> None:
        assert self.found.key is not None
        self.cache.store(
            self.found.key,
            self.control,
            self.model,
            cost=cost,
            usage=usage,
            response=response,
            chunks=chunks,
            asked=self.found.question,
            vector=self.found.vector,
        )


async def _replay(
    gateway: Gateway, ticket: Ticket, found: Lookup, stream: bool, wants_usage: bool
) -> Response | EventStream:
    """An answer from the cache: whole, or streamed as the chunks the client would have
    seen; charged at the configured price of a hit."""
    entry = found.entry
    assert entry is not None
    price = gateway.config.cache.cost_per_hit
    headers = [
        *ticket.headers,
        (b"x-stackyard-cache", found.tier.encode()),
        (b"x-stackyard-cache-id", entry.id.encode()),
    ]
    if found.similarity is not None:
        headers.append((b"x-stackyard-cache-similarity", b"%.4f" % found.similarity))
        headers.append((b"x-stackyard-cache-verifier-score", b"%.4f" % (found.score or 0.0)))
    if stream:
        chunks = entry.stream()

        async def rest() -> AsyncGenerator[Body, None]:
            for chunk in chunks[1:]:
                yield chunk

        settle = Settlement(
            gateway.governance, ticket, None, None, ChunkCapture(), cache_hit=True, cost=price
        )
        idle = gateway.config.router.stream_idle_timeout
        events = _events(chunks[0], rest(), not wants_usage, idle, None, settle)
        return EventStream(events, headers)
    completion = entry.completion()
    cost = await gateway.governance.finish(
        ticket,
        status=200,
        usage=entry.usage,
        deployment=None,
        cache_hit=True,
        cost=price,
        response=completion,
    )
    return Response.json(completion, headers=[*headers, cost_header(cost)])


async def _stream(
    gateway: Gateway,
    request: Request,
    body: Body,
    stats: RouteStats,
    client_wants_usage: bool,
    ticket: Ticket,
    stored: Stored | None = None,
    citations: list[dict[str, Any]] | None = None,
) -> EventStream:
    async def attempt(deployment: Deployment) -> tuple[Body, AsyncGenerator[Body, None], bool]:
        hidden_usage = deployment.provider.capabilities.stream_usage and not client_wants_usage
        upstream_body = body
        if hidden_usage:
            # Always learn the usage (for cost accounting); the client does not see it.
            options = {**(body.get("stream_options") or {}), "include_usage": True}
            upstream_body = {**body, "stream_options": options}
        vault = pii_vault(gateway, deployment, ticket)
        if vault is not None:
            upstream_body = await redacted(upstream_body, vault)
        chunks = deployment.provider.chat_stream(upstream_body)
        if vault is not None:
            chunks = restore_stream(chunks, vault)
        if rails(gateway, ticket).secrets.output == "redact":
            chunks = _masked(chunks, ticket)
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
    if citations is not None:
        first = {**first, "citations": citations}
    idle_timeout = gateway.config.router.stream_idle_timeout
    settle = Settlement(gateway.governance, ticket, routed.deployment, stats, ChunkCapture())
    headers = [*route_headers(request, stats), *ticket.headers]
    record: list[Body] | None = None
    if stored is not None:
        record = []
        kept = stored  # for the closure

        def keep(cost: float) -> None:
            kept.keep(cost, settle.usage, chunks=record)

        settle.on_complete = keep
        headers.extend(miss_headers(stored))
    events = _events(first, chunks, hidden_usage, idle_timeout, routed.deployment, settle, record)
    return EventStream(events, headers)


async def _events(
    first: Body,
    chunks: AsyncGenerator[Body, None],
    hidden_usage: bool,
    idle_timeout: float,
    deployment: Deployment | None,
    settle: Settlement,
    record: list[Body] | None = None,
) -> AsyncIterator[bytes]:
    """Encode chunks as SSE events; a failure after the first byte ends the stream with an
    error event (never a silent, truncated stream). ``record`` keeps a copy of each chunk as
    it came (for the cache)."""
    capture = settle.capture
    settle.first_chunk()
    try:
        chunk: Body | None = first
        while True:
            if chunk is not None and chunk.get("usage"):
                settle.usage = chunk["usage"]
            if chunk is not None and capture is not None:
                capture.feed(chunk)
            if chunk is not None and record is not None:
                record.append(dict(chunk))
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
        settle.complete = True
    except UpstreamError as exc:
        settle.failed(502, "upstream_error", exc.message)
        yield _error_event(exc.message)
    except TimeoutError:
        source = f"deployment {deployment.id}" if deployment else "the cache"
        message = f"{source} sent nothing for {idle_timeout:g} seconds; the stream was ended"
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
