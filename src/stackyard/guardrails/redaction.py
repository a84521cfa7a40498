"""Reversible PII redaction of a chat request on its way to a provider, and the restoration of
its answer: in message text (refusals included), in tool messages and in tool-call arguments
(earlier turns' and the answer's, legacy ``function_call`` too), whole or streamed.

Arguments are JSON: what is found is replaced inside their string values, each value read on
its own (the entity tagger, trained on prose, misses names it would find alone when they sit
among JSON's quotes and keys), so that they stay valid JSON."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, Callable
from typing import Any, Protocol

from stackyard.guardrails.vault import StreamRestorer, Vault

Body = dict[str, Any]


#: Fields that tell the provider who the end user is (for its abuse monitoring). OpenAI and
#: Anthropic both ask for an opaque id or a hash there; an e-mail address or a name sent
#: instead is redacted like any text.
IDENTIFIERS = ("user", "safety_identifier")
#: What a message's ``name`` may hold at OpenAI (a placeholder's angle brackets are dropped).
NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def change_identifiers(body: Body, change: Callable[[str], str]) -> Body:
    """A copy of ``body`` with ``change`` applied to its end-user identifier fields."""
    found = {k: change(body[k]) for k in IDENTIFIERS if isinstance(body.get(k), str)}
    return {**body, **found} if found else body


def change_name(name: str, change: Callable[[str], str]) -> str:
    """A message's ``name`` (a participant: ``Ada_Lovelace``) with ``change`` applied, read
    with its underscores as spaces; what changed is sent as the placeholder's bare word
    (``PERSON_1``), since OpenAI allows only letters, digits, ``_`` and ``-`` there."""
    spaced = name.replace("_", " ")
    changed = change(spaced)
    if changed == spaced:
        return name
    return NAME_UNSAFE.sub("", changed.replace(" ", "_")) or "participant"


def change_texts(body: Body, change: Callable[[str], str]) -> Body:
    """A copy of a chat request with ``change`` applied to every message's text and name,
    every tool result, every tool call's arguments, the end-user identifier, a predicted
    output's text and the ``metadata`` values (both are sent to the provider, and OpenAI keeps
    the metadata with a stored completion)."""
    messages = []
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            messages.append(message)
            continue
        copy = dict(message)
        if "content" in copy:
            copy["content"] = _content(copy["content"], change)
        if isinstance(copy.get("refusal"), str):
            copy["refusal"] = change(copy["refusal"])
        if isinstance(copy.get("name"), str):
            copy["name"] = change_name(copy["name"], change)
        calls = copy.get("tool_calls")
        if isinstance(calls, list):
            copy["tool_calls"] = [_call(call, change) for call in calls]
        if isinstance(copy.get("function_call"), dict):  # the legacy functions API
            copy["function_call"] = _arguments(copy["function_call"], change)
        messages.append(copy)
    out = {**body, "messages": messages}
    prediction = body.get("prediction")
    if isinstance(prediction, dict) and "content" in prediction:
        out["prediction"] = {**prediction, "content": _content(prediction["content"], change)}
    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        out["metadata"] = {k: change(v) if isinstance(v, str) else v for k, v in metadata.items()}
    return change_identifiers(out, change)


def change_inputs(body: Body, change: Callable[[str], str]) -> Body:
    """A copy of an embeddings request with ``change`` applied to each text input (token
    arrays are left as they are: there is no text in them to find anything in)."""
    body = change_identifiers(body, change)
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
        return [_part(part, change) for part in value]
    return value


def _part(part: Any, change: Callable[[str], str]) -> Any:
    """A content part with its text (or, for an assistant's refusal part, its refusal)
    changed."""
    if not isinstance(part, dict):
        return part
    for field in ("text", "refusal"):
        if isinstance(part.get(field), str):
            return {**part, field: change(part[field])}
    return part


#: A JSON string, and the colon after it if it is an object's key.
JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"(\s*:)?')


def change_json(text: str, change: Callable[[str], str]) -> str:
    """``text`` with ``change`` applied to each string value in it, if it is JSON (keys,
    numbers and layout are kept; a changed value is written back escaped, so the text stays
    valid JSON); else to the whole text."""
    try:
        json.loads(text)
    except ValueError:
        return change(text)

    def one(match: re.Match[str]) -> str:
        if match[1]:  # a key
            return match[0]
        value = json.loads(match[0])
        changed = change(value)
        return match[0] if changed == value else json.dumps(changed, ensure_ascii=False)

    return JSON_STRING.sub(one, text)


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
    """A tool call with ``change`` applied inside its arguments (a function's JSON, or a
    custom tool's free text)."""
    if not isinstance(call, dict):
        return call
    if isinstance(call.get("function"), dict):
        return {**call, "function": _arguments(call["function"], change)}
    custom = call.get("custom")
    if isinstance(custom, dict) and isinstance(custom.get("input"), str):
        return {**call, "custom": {**custom, "input": change(custom["input"])}}
    return call


def _arguments(function: Body, change: Callable[[str], str]) -> Body:
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        return function
    return {**function, "arguments": change_json(arguments, change)}


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
        if isinstance(message.get("function_call"), dict):
            message["function_call"] = _arguments(message["function_call"], change)
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

    def __init__(
        self, make: Callable[[], TextStream], make_arguments: Callable[[], TextStream] | None = None
    ) -> None:
        """``make_arguments``: for tool calls' arguments (JSON), if not ``make``."""
        self.make = make
        self.make_arguments = make_arguments or make
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
                        stream = self.arguments[key] = self.make_arguments()
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
        # A value put back inside arguments is escaped: they stay valid JSON.
        super().__init__(lambda: StreamRestorer(vault), lambda: StreamRestorer(vault, True))


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
