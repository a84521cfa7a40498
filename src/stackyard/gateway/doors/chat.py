"""``POST /v1/chat/completions``: OpenAI's chat completions, whole or streamed, as a door onto
the pipeline."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson

from stackyard.gateway.pipeline.door import Change, Door, JsonTexts, Texts
from stackyard.gateway.pipeline.exchange import Body, Event, Events, Exchange
from stackyard.gateway.wire import validate_chat
from stackyard.guardrails.injection import request_texts
from stackyard.guardrails.output_json import Expected, expected, reask_messages
from stackyard.guardrails.redaction import change_texts, restore_response, restore_stream
from stackyard.guardrails.secrets import MaskedStream, mask_request, mask_response, scan_request
from stackyard.guardrails.unscannable import Part, chat_parts
from stackyard.observability.capture import ChunkCapture

if TYPE_CHECKING:
    from stackyard.cache.entry import Entry
    from stackyard.gateway.accounting import Settlement
    from stackyard.gateway.deployment import Deployment
    from stackyard.guardrails.secrets import Secret
    from stackyard.guardrails.vault import Vault

DONE = b"data: [DONE]\n\n"
#: ``ex.state`` keys: the client asked for the usage chunk; the gateway asked for it anyway.
WANTS_USAGE = "chat.wants_usage"
HIDDEN_USAGE = "chat.hidden_usage"


class ChatDoor(Door):
    endpoint = "chat"
    operation = "chat completions"
    stages = frozenset(
        {"prompt", "rag", "secrets", "pii", "injection", "topics", "cache", "json_output"}
    )

    def validate(self, ex: Exchange) -> bool:
        parsed = validate_chat(ex.body)
        options = parsed.stream_options
        ex.state[WANTS_USAGE] = bool(options and options.include_usage)
        return bool(parsed.stream)

    def scan_secrets(self, body: Body) -> list[Secret]:
        return scan_request(body)

    def mask_secrets(self, body: Body) -> Body:
        return mask_request(body)

    def change_texts(self, body: Body, change: Change) -> Body:
        return change_texts(body, change)

    def unscanned(self, body: Body) -> list[Part]:
        return chat_parts(body)

    def texts(self, body: Body, roles: tuple[str, ...] = ("user", "tool")) -> Texts:
        return request_texts(body, roles)

    def question(self, body: Body) -> str:
        from stackyard.rag.augment import last_user_text

        return last_user_text(body)

    def with_context(self, body: Body, context: list[Body]) -> Body:
        messages = list(body.get("messages") or [])
        at = next(
            (
                i
                for i, m in enumerate(messages)
                if not (isinstance(m, dict) and m.get("role") in ("system", "developer"))
            ),
            len(messages),
        )
        messages[at:at] = context
        return {**body, "messages": messages}

    def with_prompt(self, body: Body, rendered: list[Body], defaults: dict[str, Any]) -> Body:
        merged = dict(body)
        for key, value in defaults.items():
            merged.setdefault(key, value)
        merged["messages"] = [*rendered, *(body.get("messages") or [])]
        return merged

    def cache_view(self, body: Body) -> Body:
        return body

    def wants_json(self, body: Body) -> Expected | None:
        return expected(body)

    # -- the call -----------------------------------------------------------------------------

    async def call(self, ex: Exchange, deployment: Deployment, body: Body) -> Body:
        return await deployment.provider.chat(deployment.chat_body(body))

    def call_stream(self, ex: Exchange, deployment: Deployment, body: Body) -> Events:
        hidden = deployment.provider.capabilities.stream_usage and not ex.state[WANTS_USAGE]
        ex.state[HIDDEN_USAGE] = hidden
        if hidden:  # always learn the usage (for cost accounting); the client does not see it
            options = {**(body.get("stream_options") or {}), "include_usage": True}
            body = {**body, "stream_options": options}
        return deployment.provider.chat_stream(deployment.chat_body(body))

    # -- the answer ---------------------------------------------------------------------------

    def restore(self, answer: Body, vault: Vault) -> Body:
        return restore_response(answer, vault)

    def restore_events(self, events: Events, vault: Vault) -> Events:
        return restore_stream(events, vault)

    def mask(self, answer: Body) -> int:
        return mask_response(answer)

    def mask_events(self, events: Events, counted: Callable[[int], None]) -> Events:
        return _masked(events, counted)

    def json_texts(self, answer: Body) -> JsonTexts:
        found: JsonTexts = []
        for choice in answer.get("choices") or ():
            message = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                found.append((message["content"], partial(message.__setitem__, "content")))
        return found  # a tool call, or a refusal, is not the JSON answer

    def reask(self, body: Body, answer: str, why: str) -> Body:
        return {**body, "messages": reask_messages(body["messages"], answer, why), "n": 1}

    def add_usage(self, answer: Body, more: Body) -> None:
        answer["usage"] = _add_usage(answer.get("usage"), more.get("usage"))

    def calls_tools(self, answer: Body | None, events: list[Event] | None) -> bool:
        from stackyard.cache.semantic import calls_tools

        return calls_tools(answer, events)

    # -- a stream -----------------------------------------------------------------------------

    def capture(self) -> ChunkCapture:
        return ChunkCapture()

    def first(self, ex: Exchange, event: Event) -> Event:
        if ex.citations is not None:
            return {**event, "citations": ex.citations}
        return event

    def account(self, ex: Exchange, event: Event, settle: Settlement) -> None:
        usage = event.get("usage")
        if usage:
            settle.usage = usage
        if settle.capture is not None:
            settle.capture.feed(event)

    def terminal(self, event: Event) -> bool:
        return any(
            isinstance(c, dict) and c.get("finish_reason") for c in event.get("choices") or ()
        )

    def encode(self, ex: Exchange, event: Event) -> bytes | None:
        # A replay from the cache hides a usage chunk the client did not ask for, too.
        hidden = ex.state.get(HIDDEN_USAGE, not ex.state.get(WANTS_USAGE))
        if hidden and "usage" in event:
            if not event.get("choices"):
                return None  # the usage-only chunk the client did not ask for
            event = {k: v for k, v in event.items() if k != "usage"}
        return b"data: " + orjson.dumps(event) + b"\n\n"

    def end(self, ex: Exchange) -> bytes:
        return DONE

    def error_event(
        self, ex: Exchange, status: int, code: str, message: str, kind: str | None
    ) -> bytes:
        # One code for every failure after the first byte, as clients have always seen it.
        error = {
            "error": {
                "message": message,
                "type": "server_error",
                "param": None,
                "code": "upstream_error",
            }
        }
        return b"data: " + orjson.dumps(error) + b"\n\n"

    # -- answers from the cache ---------------------------------------------------------------

    def replay(self, entry: Entry) -> Body:
        return entry.completion()

    def replay_events(self, entry: Entry) -> list[Event]:
        return entry.stream()


def _add_usage(total: Body | None, more: Body | None) -> Body | None:
    if not more:
        return total
    if not total:
        return dict(more)
    merged = dict(total)
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        merged[name] = int(total.get(name) or 0) + int(more.get(name) or 0)
    return merged


async def _masked(chunks: Events, counted: Callable[[int], None]) -> Events:
    """The stream with secrets masked (the guardrails' secrets output policy)."""
    stream = MaskedStream()
    try:
        async for chunk in stream.wrap(chunks):
            yield chunk
    finally:
        counted(stream.masked)


CHAT = ChatDoor()
