"""The guardrails' text changes in Anthropic's Messages shape, for ``/v1/messages``: every text
a request carries (``system``, text blocks, tool results, tool-use inputs), every text of an
answer (text blocks and tool-use inputs), and a stream's text and tool-input deltas, across
event boundaries."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any

from stackyard.guardrails.redaction import TextStream

Body = dict[str, Any]
Change = Callable[[str], str]
Event = tuple[str | None, Body]


def json_strings(value: Any, change: Change) -> Any:
    """A copy of a JSON value with ``change`` applied to each string in it (not to keys)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [json_strings(item, change) for item in value]
    if isinstance(value, dict):
        return {key: json_strings(item, change) for key, item in value.items()}
    return value


#: Blocks whose ``input`` the model wrote: a client tool's call, a server tool's (a web
#: search's query) and an MCP server's tool's.
TOOL_USES = ("tool_use", "server_tool_use", "mcp_tool_use")
#: Blocks whose ``content`` is a string or text blocks: a tool's result, a search result (RAG
#: text the client supplies), an MCP tool's result.
RESULTS = ("tool_result", "search_result", "mcp_tool_result")


def _block(block: Any, change: Change) -> Any:
    if not isinstance(block, dict):
        return block
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        return {**block, "text": change(block["text"])}
    if kind in TOOL_USES and "input" in block:
        return {**block, "input": json_strings(block["input"], change)}
    if kind in RESULTS and "content" in block:
        block = {**block, "content": _content(block["content"], change)}
    if kind in ("document", "search_result"):
        return _document(block, change)
    return block


def _document(block: Body, change: Change) -> Body:
    """A document's (or a search result's) title and context, and a plain-text or
    content-block source."""
    out = dict(block)
    for field in ("title", "context"):
        if isinstance(out.get(field), str):
            out[field] = change(out[field])
    source = out.get("source")
    if isinstance(source, dict) and source.get("type") == "text":
        if isinstance(source.get("data"), str):
            out["source"] = {**source, "data": change(source["data"])}
    elif isinstance(source, dict) and source.get("type") == "content":
        out["source"] = {**source, "content": _content(source.get("content"), change)}
    return out


def _content(value: Any, change: Change) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [_block(block, change) for block in value]
    return value


def change_request(body: Body, change: Change) -> Body:
    """A copy of a Messages request with ``change`` applied to every text it carries."""
    out = dict(body)
    if "system" in body:
        out["system"] = _content(body["system"], change)
    messages = body.get("messages")
    if isinstance(messages, list):
        out["messages"] = [
            {**m, "content": _content(m["content"], change)}
            if isinstance(m, dict) and "content" in m
            else m
            for m in messages
        ]
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        # Anthropic asks for an opaque id here; an e-mail address sent instead is redacted
        out["metadata"] = {**metadata, "user_id": change(metadata["user_id"])}
    return out


def request_texts(body: Body, roles: tuple[str, ...] = ("user", "tool")) -> list[tuple[str, str]]:
    """The texts of a Messages request that the injection and topics rails read, by where
    they are: a user's text (``user``) and tool results (``tool``, which Messages carries in
    user turns as ``tool_result`` blocks, and in an assistant's turn as ``mcp_tool_result``
    blocks, an MCP server's answer that stays in the conversation). The shape of
    :func:`stackyard.guardrails.injection.request_texts` for ``/v1/messages``."""
    items: list[tuple[str, str]] = []
    for index, message in enumerate(body.get("messages") or ()):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            continue
        user = message.get("role") == "user"
        result_block = "tool_result" if user else "mcp_tool_result"
        content = message.get("content")
        if isinstance(content, str):
            if user and "user" in roles:
                items.append((f"messages[{index}].content", content))
            continue
        for number, block in enumerate(content if isinstance(content, list) else ()):
            if not isinstance(block, dict):
                continue
            where = f"messages[{index}].content[{number}]"
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                if user and "user" in roles:
                    items.append((f"{where}.text", block["text"]))
            elif block.get("type") == result_block and "tool" in roles:
                result = block.get("content")
                if isinstance(result, str):
                    items.append((f"{where}.content", result))
                for part, piece in enumerate(result if isinstance(result, list) else ()):
                    if isinstance(piece, dict) and isinstance(piece.get("text"), str):
                        items.append((f"{where}.content[{part}].text", piece["text"]))
    return items


def change_message(message: Body, change: Change) -> Body:
    """A Messages answer with ``change`` applied to its text and tool inputs (in place)."""
    content = message.get("content")
    if isinstance(content, list):
        message["content"] = [_block(block, change) for block in content]
    return message


class EventTransformer:
    """Applies a :class:`TextStream` to a Messages stream: one per content block, on its
    ``text_delta`` or ``input_json_delta`` pieces. What a block holds back is released in
    one more delta just before its ``content_block_stop``."""

    def __init__(
        self, make: Callable[[], TextStream], make_json: Callable[[], TextStream] | None = None
    ) -> None:
        """``make_json``: for tool-use inputs (``input_json_delta``), if not ``make``."""
        self.make = make
        self.make_json = make_json or make
        self.blocks: dict[int, tuple[str, str, TextStream]] = {}  # index: delta type, field

    def feed(self, event: Event) -> list[Event]:
        name, data = event
        kind = data.get("type") or name
        index = data.get("index", 0)
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            field = {"text_delta": "text", "input_json_delta": "partial_json"}.get(
                delta.get("type", "")
            )
            if field is not None and isinstance(delta.get(field), str):
                held = self.blocks.get(index)
                if held is None:
                    make = self.make if field == "text" else self.make_json
                    held = self.blocks[index] = (delta["type"], field, make())
                delta[field] = held[2].feed(delta[field])
            return [event]
        if kind == "content_block_stop" and index in self.blocks:
            delta_type, field, stream = self.blocks.pop(index)
            rest = stream.flush()
            if rest:
                released = {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": delta_type, field: rest},
                }
                return [("content_block_delta", released), event]
        return [event]


async def transform_events(
    events: AsyncGenerator[Event, None], transformer: EventTransformer
) -> AsyncGenerator[Event, None]:
    try:
        async for event in events:
            for out in transformer.feed(event):
                yield out
    finally:
        await events.aclose()
