"""Reversible PII redaction of a chat request on its way to a provider, and the restoration of
its answer: in message text, in tool messages and in tool-call arguments, whole or streamed."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any

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


def redact_request(body: Body, vault: Vault) -> Body:
    """A copy of ``body`` with every message's text, every tool result and every tool call's
    arguments redacted."""
    return change_texts(body, vault.redact)


def _call(call: Any, change: Callable[[str], str]) -> Any:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        return call
    function = call["function"]
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        return call
    return {**call, "function": {**function, "arguments": change(arguments)}}


def restore_response(result: Body, vault: Vault) -> Body:
    """The answer with every placeholder put back (in place)."""
    if not len(vault):
        return result
    for choice in result.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        if isinstance(message.get("content"), str):
            message["content"] = vault.restore(message["content"])
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            message["tool_calls"] = [_call(call, vault.restore) for call in calls]
    return result


class ChunkRestorer:
    """Restores placeholders in stream chunks: each choice's text and each tool call's
    arguments, across chunk boundaries. Held-back text is released with the choice's
    finishing chunk."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.text: dict[int, StreamRestorer] = {}
        self.arguments: dict[tuple[int, int], StreamRestorer] = {}

    def feed(self, chunk: Body) -> Body:
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                restorer = self.text.setdefault(index, StreamRestorer(self.vault))
                delta["content"] = restorer.feed(delta["content"])
            for call in delta.get("tool_calls") or ():
                function = call.get("function") or {}
                if isinstance(function.get("arguments"), str):
                    key = (index, call.get("index", 0))
                    restorer = self.arguments.setdefault(key, StreamRestorer(self.vault))
                    function["arguments"] = restorer.feed(function["arguments"])
            if choice.get("finish_reason"):
                self._release(index, delta)
                choice["delta"] = delta
        return chunk

    def _release(self, index: int, delta: Body) -> None:
        held = self.text.pop(index, None)
        if held is not None and held.pending:
            delta["content"] = held.flush() + (delta.get("content") or "")
        for key in [k for k in self.arguments if k[0] == index]:
            rest = self.arguments.pop(key).flush()
            if rest:
                delta.setdefault("tool_calls", []).append(
                    {"index": key[1], "function": {"arguments": rest}}
                )


async def restore_stream(
    chunks: AsyncGenerator[Body, None], vault: Vault
) -> AsyncGenerator[Body, None]:
    restorer = ChunkRestorer(vault)
    try:
        async for chunk in chunks:
            yield restorer.feed(chunk)
    finally:
        await chunks.aclose()
