"""``POST /v1/messages``: Anthropic's Messages API as a door onto the pipeline.

A request for a model served by Anthropic passes through untouched (provider-native
passthrough, inside "route and call"); a request for any other model (OpenAI, self-hosted,
in-process) is translated to chat completions and back, streaming included. Every stage runs
around the call as on ``/v1/chat/completions``: registry prompts, RAG, the guardrails, the
cache, settlement and tracing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import orjson

from stackyard.errors import APIError
from stackyard.gateway.anthropic_wire import error_body, error_type, validate_messages
from stackyard.gateway.doors.chat import CHAT
from stackyard.gateway.headers import route_headers, with_route_headers
from stackyard.gateway.pipeline.door import Change, Door, JsonTexts, Texts
from stackyard.gateway.pipeline.exchange import Body, Event, Events, Exchange
from stackyard.gateway.providers.base import MessagesProvider, UpstreamError
from stackyard.gateway.router import RouteStats
from stackyard.gateway.translate import anthropic_backend, anthropic_frontdoor
from stackyard.gateway.translate.anthropic_replay import assembled, replayed
from stackyard.guardrails.anthropic_shape import (
    EventTransformer,
    change_message,
    change_request,
    request_texts,
    transform_events,
)
from stackyard.guardrails.output_json import Expected, expected_messages, reask_text
from stackyard.guardrails.secrets import Masker, SecretWindow, mask, scan_messages
from stackyard.guardrails.unscannable import Part, messages_parts
from stackyard.guardrails.vault import StreamRestorer
from stackyard.observability.capture import EventCapture
from stackyard.server.http import Response

if TYPE_CHECKING:
    from stackyard.cache.entry import Entry
    from stackyard.gateway.accounting import Settlement
    from stackyard.gateway.deployment import Deployment
    from stackyard.gateway.service import Gateway
    from stackyard.guardrails.secrets import Secret
    from stackyard.guardrails.vault import Vault
    from stackyard.server.http import Request

#: ``ex.state`` key: the stream's usage so far, in Anthropic's terms.
USAGE = "messages.usage"
#: Of a registry prompt's parameters, those Messages has, by their name there.
PROMPT_PARAMETERS = {
    "model": "model",
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "stop": "stop_sequences",
}


def native(deployment: Deployment) -> bool:
    return deployment.provider.capabilities.anthropic_messages


def messages_provider(deployment: Deployment) -> MessagesProvider:
    return cast(MessagesProvider, deployment.provider)


def anthropic_error(error: APIError) -> Response:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in error.headers]
    return Response(error.status, error_body(error), headers)


class MessagesDoor(Door):
    endpoint = "messages"
    operation = "messages"
    stages = frozenset(
        {"prompt", "rag", "secrets", "pii", "injection", "topics", "cache", "json_output"}
    )

    def validate(self, ex: Exchange) -> bool:
        validate_messages(ex.body)
        return bool(ex.body.get("stream"))

    def refuse(self, error: APIError, ex: Exchange | None = None) -> Response:
        return anthropic_error(error)

    def scan_secrets(self, body: Body) -> list[Secret]:
        return scan_messages(body)

    def mask_secrets(self, body: Body) -> Body:
        return change_request(body, mask)

    def change_texts(self, body: Body, change: Change) -> Body:
        return change_request(body, change)

    def unscanned(self, body: Body) -> list[Part]:
        return messages_parts(body)

    def texts(self, body: Body, roles: tuple[str, ...] = ("user", "tool")) -> Texts:
        return request_texts(body, roles)

    def question(self, body: Body) -> str:
        for message in reversed(body.get("messages") or ()):
            if not isinstance(message, dict) or message.get("role") != "user":
                continue
            content = message.get("content")
            if isinstance(content, str):
                return content
            blocks = content if isinstance(content, list) else []
            texts = [
                str(block.get("text", ""))
                for block in blocks
                if isinstance(block, dict) and block.get("type") == "text"
            ]
            if texts:
                return " ".join(texts)
        return ""

    def with_context(self, body: Body, context: list[Body]) -> Body:
        return _with_messages(body, context, front=False)

    def with_prompt(self, body: Body, rendered: list[Body], defaults: dict[str, Any]) -> Body:
        merged = _with_messages(body, rendered, front=True)
        for key, value in defaults.items():
            name = PROMPT_PARAMETERS.get(key)
            if name is None:  # never dropped without a word
                raise APIError(
                    400,
                    f"The prompt sets '{key}', which /v1/messages cannot honour (it takes "
                    f"{', '.join(sorted(PROMPT_PARAMETERS))}); use /v1/chat/completions for "
                    "this prompt, or remove the parameter from its config.",
                    type="invalid_request_error",
                    param=f"prompt.config.{key}",
                    code="unsupported_parameter",
                )
            merged.setdefault(name, value)
        return merged

    def cache_view(self, body: Body) -> Body:
        try:
            view = anthropic_frontdoor.request(body)
        except (APIError, UpstreamError):  # only Anthropic itself can serve it: keyed as is
            view = dict(body)
        return {**view, "stackyard_door": "messages"}

    def wants_json(self, body: Body) -> Expected | None:
        return expected_messages(body)

    # -- the call -----------------------------------------------------------------------------

    async def call(self, ex: Exchange, deployment: Deployment, body: Body) -> Body:
        if native(deployment):
            return await messages_provider(deployment).messages(deployment.messages_body(body))
        chat = deployment.chat_body(anthropic_frontdoor.request(body))
        completion = await deployment.provider.chat(chat)
        return anthropic_frontdoor.message(completion, model=body["model"])

    def call_stream(self, ex: Exchange, deployment: Deployment, body: Body) -> Events:
        if native(deployment):
            return _native_events(deployment, body)
        return _translated_events(deployment, body)

    # -- the answer ---------------------------------------------------------------------------

    def restore(self, answer: Body, vault: Vault) -> Body:
        if len(vault):
            change_message(answer, vault.restore)
        return answer

    def restore_events(self, events: Events, vault: Vault) -> Events:
        restorer = EventTransformer(
            lambda: StreamRestorer(vault), lambda: StreamRestorer(vault, True)
        )
        return transform_events(events, restorer)

    def mask(self, answer: Body) -> int:
        masker = Masker()
        change_message(answer, masker)
        return masker.count

    def mask_events(self, events: Events, counted: Callable[[int], None]) -> Events:
        return _masked(events, counted)

    def usage(self, answer: Body) -> dict[str, Any] | None:
        usage = answer.get("usage")
        return anthropic_backend.usage(usage) if isinstance(usage, dict) else None

    def json_texts(self, answer: Body) -> JsonTexts:
        content = answer.get("content")
        blocks = [
            b for b in content or () if isinstance(b, dict) and isinstance(b.get("text"), str)
        ]
        if not blocks or not isinstance(content, list):
            return []

        def put(text: str) -> None:  # the fixed JSON in the first text block, alone
            at = content.index(blocks[0])
            content[:] = [b for b in content if b not in blocks[1:]]
            content[at] = {**blocks[0], "text": text}

        return [("".join(b["text"] for b in blocks), put)]

    def reask(self, body: Body, answer: str, why: str) -> Body:
        told = [
            {"role": "assistant", "content": [{"type": "text", "text": answer}]},
            {"role": "user", "content": reask_text(why)},
        ]
        return {**body, "messages": [*(body.get("messages") or []), *told]}

    def add_usage(self, answer: Body, more: Body) -> None:
        usage = dict(answer.get("usage") or {})
        for name, value in (more.get("usage") or {}).items():
            if isinstance(value, int) and isinstance(usage.get(name, 0), int):
                usage[name] = usage.get(name, 0) + value
        answer["usage"] = usage

    def calls_tools(self, answer: Body | None, events: list[Event] | None) -> bool:
        if answer is not None:
            content = answer.get("content") or ()
            return any(isinstance(b, dict) and b.get("type") == "tool_use" for b in content)
        return any(
            (data.get("content_block") or {}).get("type") == "tool_use"
            for _, data in events or ()
            if data.get("type") == "content_block_start"
        )

    # -- a stream -----------------------------------------------------------------------------

    def capture(self) -> EventCapture:
        return EventCapture()

    def first(self, ex: Exchange, event: Event) -> Event:
        name, data = event
        if ex.citations is not None and isinstance(data.get("message"), dict):
            return name, {**data, "message": {**data["message"], "citations": ex.citations}}
        return event

    def account(self, ex: Exchange, event: Event, settle: Settlement) -> None:
        data = event[1]
        found = (data.get("message") or {}).get("usage") or data.get("usage")
        if found:  # in message_start, and (cumulative) in message_delta
            usage = ex.state.setdefault(USAGE, {})
            usage.update({k: v for k, v in found.items() if v is not None})
            settle.usage = anthropic_backend.usage(usage)
        if settle.capture is not None:
            settle.capture.feed(data)

    def terminal(self, event: Event) -> bool:
        name, data = event
        return bool((data.get("type") or name) == "message_stop")

    def encode(self, ex: Exchange, event: Event) -> bytes:
        name, data = event
        kind = (name or str(data.get("type", "message"))).encode()
        return b"event: " + kind + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def error_event(
        self, ex: Exchange, status: int, code: str, message: str, kind: str | None
    ) -> bytes:
        data = {"type": "error", "error": {"type": kind or error_type(status), "message": message}}
        return b"event: error\ndata: " + orjson.dumps(data) + b"\n\n"

    # -- answers from the cache ---------------------------------------------------------------

    def replay(self, entry: Entry) -> Body:
        if entry.response is not None:
            return dict(entry.response)
        kept: list[Any] = list(entry.chunks or ())  # [name, data] pairs
        return assembled([(e[0], e[1]) for e in kept], entry.usage)

    def replay_events(self, entry: Entry) -> list[Event]:
        if entry.chunks is not None:
            kept: list[Any] = list(entry.chunks)  # [name, data] pairs
            return [(e[0], dict(e[1])) for e in kept]
        return replayed(entry.response or {})


def _with_messages(body: Body, given: list[Body], *, front: bool) -> Body:
    """Chat messages given to a Messages request: the system ones in ``system`` (in front of
    its own when ``front``, else after), the others in front of its messages."""
    system = [
        str(m.get("content") or "") for m in given if m.get("role") in ("system", "developer")
    ]
    others = [
        {"role": m.get("role"), "content": m.get("content")}
        for m in given
        if m.get("role") not in ("system", "developer")
    ]
    out = dict(body)
    if system:
        text = "\n\n".join(system)
        own = body.get("system")
        if own is None or own == "" or own == []:
            out["system"] = text
        elif isinstance(own, str):
            out["system"] = f"{text}\n\n{own}" if front else f"{own}\n\n{text}"
        else:
            block = {"type": "text", "text": text}
            out["system"] = [block, *own] if front else [*own, block]
    if others:
        out["messages"] = [*others, *(body.get("messages") or [])]
    return out


async def _translated_events(deployment: Deployment, body: Body) -> Events:
    """Events from an OpenAI-format back end, translated as they arrive."""
    translator = anthropic_frontdoor.EventTranslator(model=body["model"])
    chunks = deployment.provider.chat_stream(
        deployment.chat_body(anthropic_frontdoor.request(body))
    )
    ended = False
    try:
        async for chunk in chunks:
            ended = ended or CHAT.terminal(chunk)
            for event in translator.feed(chunk):
                yield event
    finally:
        await chunks.aclose()
    if not ended:  # the translation's own message_stop would hide the cut
        raise UpstreamError(
            "invalid_response", f"deployment {deployment.id} ended the stream before its end"
        )
    for event in translator.finish():
        yield event


async def _native_events(deployment: Deployment, body: Body) -> Events:
    events = messages_provider(deployment).messages_stream(deployment.messages_body(body))
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


async def _masked(events: Events, counted: Callable[[int], None]) -> Events:
    windows: list[SecretWindow] = []

    def window() -> SecretWindow:
        made = SecretWindow()
        windows.append(made)
        return made

    masked = transform_events(events, EventTransformer(window))
    try:
        async for event in masked:
            yield event
    finally:
        await masked.aclose()
        counted(sum(w.masked for w in windows))


MESSAGES = MessagesDoor()


async def count_tokens(gateway: Gateway, request: Request) -> Response:
    """``POST /v1/messages/count_tokens``: Anthropic's own count, from an Anthropic deployment
    of the model (not a generation: no pipeline, no spend)."""
    stats = RouteStats()
    try:
        body = await request.json_object()
        gateway.governance.authenticate(request)  # a keyless caller learns nothing more
        validate_messages(body, count=True)

        async def attempt(deployment: Deployment) -> Body:
            return await messages_provider(deployment).count_tokens(body)

        routed = await gateway.router.run(
            body["model"],
            attempt,
            stats=stats,
            supports=native,
            operation="token counting",
            fallbacks=False,
        )
    except APIError as exc:
        return anthropic_error(with_route_headers(exc, request, stats))
    return Response.json(routed.result, headers=route_headers(request, stats))
