"""Reversible PII redaction of a chat request on its way to a provider, and the restoration of
its answer: in message text, in tool messages and in tool-call arguments, whole or streamed."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any, Protocol

from stackyard.guardrails.vault import StreamRestorer, Vault

Body = dict[str, Any]


def change_texts(body: Body, change: Callable[[str], str]) -> Body:
    """A copy of a chat request with ``change`` applied to every message's text, every tool
    result and every tool call's arguments."""
    messages = []
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            messages.append(message)
            continue
        copy = dict(message)
        if "content" in copy:
            copy["content"] = _content(copy["content"], change)
        calls = copy.get("tool_calls")
        if isinstance(calls, list):
            copy["tool_calls"] = [_call(call, change) for call in calls]
        messages.append(copy)
    return {**body, "messages": messages}


def change_inputs(body: Body, change: Callable[[str], str]) -> Body:
    """A copy of an embeddings request with ``change`` applied to each text input (token
    arrays are left as they are: there is no text in them to find anything in)."""
    value = body.get("input")
    if isinstance(value, str):
        return {**body, "input": change(value)}
    if isinstance(value, list):
        return {**body, "input": [change(v) if isinstance(v, str) else v for v in value]}
    return body


def _content(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [
            {**part, "text": change(part["text"])}
            if isinstance(part, dict) and isinstance(part.get("text"), str)
            else part
            for part in value
        ]
    return value


async def redacted(
    body: Body, vault: Vault, change: Callable[[Body, Callable[[str], str]], Body] = change_texts
) -> Body:
    """A copy of ``body`` with every text ``change`` reaches (by default every message's text,
    every tool result and every tool call's arguments) redacted; the entity tagger, if the
    vault has one, runs in a worker thread first."""
    texts: list[str] = []

    def collect(text: str) -> str:
        texts.append(text)
        return text

    change(body, collect)
    await vault.prepare(texts)
    return change(body, vault.redact)


def _call(call: Any, change: Callable[[str], str]) -> Any:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        return call
    function = call["function"]
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        return call
    return {**call, "function": {**function, "arguments": change(arguments)}}


def change_response(result: Body, change: Callable[[str], str]) -> Body:
    """The answer with ``change`` applied to each choice's text and tool-call arguments (in
    place)."""
    for choice in result.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        if isinstance(message.get("content"), str):
            message["content"] = change(message["content"])
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            message["tool_calls"] = [_call(call, change) for call in calls]
    return result


def restore_response(result: Body, vault: Vault) -> Body:
    """The answer with every placeholder put back (in place)."""
    if not len(vault):
        return result
    return change_response(result, vault.restore)


class TextStream(Protocol):
    """Changes text that arrives in pieces, holding back what it cannot decide yet."""

    pending: str

    def feed(self, piece: str) -> str: ...

    def flush(self) -> str: ...


class ChunkTransformer:
    """Applies a :class:`TextStream` to stream chunks: one per choice's text and per tool
    call's arguments, across chunk boundaries. Held-back text is released with the choice's
    finishing chunk."""

    def __init__(self, make: Callable[[], TextStream]) -> None:
        self.make = make
        self.text: dict[int, TextStream] = {}
        self.arguments: dict[tuple[int, int], TextStream] = {}

    def feed(self, chunk: Body) -> Body:
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                stream = self.text.get(index)
                if stream is None:
                    stream = self.text[index] = self.make()
                delta["content"] = stream.feed(delta["content"])
            for call in delta.get("tool_calls") or ():
                function = call.get("function") or {}
                if isinstance(function.get("arguments"), str):
                    key = (index, call.get("index", 0))
                    stream = self.arguments.get(key)
                    if stream is None:
                        stream = self.arguments[key] = self.make()
                    function["arguments"] = stream.feed(function["arguments"])
            if choice.get("finish_reason"):
                self._release(index, delta)
                choice["delta"] = delta
        return chunk

    def _release(self, index: int, delta: Body) -> None:
        held = self.text.pop(index, None)
        if held is not None and held.pending:
            # After what this chunk released: the held-back text is the end of the choice.
            delta["content"] = (delta.get("content") or "") + held.flush()
        for key in [k for k in self.arguments if k[0] == index]:
            rest = self.arguments.pop(key).flush()
            if rest:
                delta.setdefault("tool_calls", []).append(
                    {"index": key[1], "function": {"arguments": rest}}
                )


class ChunkRestorer(ChunkTransformer):
    """Restores placeholders in stream chunks."""

    def __init__(self, vault: Vault) -> None:
        super().__init__(lambda: StreamRestorer(vault))


async def transform_stream(
    chunks: AsyncGenerator[Body, None], transformer: ChunkTransformer
) -> AsyncGenerator[Body, None]:
    try:
        async for chunk in chunks:
            yield transformer.feed(chunk)
    finally:
        await chunks.aclose()


def restore_stream(chunks: AsyncGenerator[Body, None], vault: Vault) -> AsyncGenerator[Body, None]:
    return transform_stream(chunks, ChunkRestorer(vault))
