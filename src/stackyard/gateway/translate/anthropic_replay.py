"""A Messages answer kept whole, replayed as the stream a client would have seen; and a kept
stream assembled into the whole answer (for the cache on ``/v1/messages``)."""

from __future__ import annotations

from typing import Any

import orjson

from stackyard.observability.capture import EventCapture

Body = dict[str, Any]
Event = tuple[str | None, Body]


def anthropic_usage(usage: dict[str, Any] | None) -> dict[str, Any]:
    """Chat-completions usage (as the cache keeps it) in Anthropic's terms."""
    usage = usage or {}
    return {
        "input_tokens": int(usage.get("prompt_tokens") or 0),
        "output_tokens": int(usage.get("completion_tokens") or 0),
    }


def assembled(events: list[Event], usage: dict[str, Any] | None) -> Body:
    """The message a stream of events makes (tool inputs parsed from their JSON pieces)."""
    capture = EventCapture()
    stop_sequence = None
    for _, data in events:
        capture.feed(data)
        if data.get("type") == "message_delta":
            stop_sequence = (data.get("delta") or {}).get("stop_sequence", stop_sequence)
    message = capture.result(anthropic_usage(usage))
    content = []
    for block in message["content"]:
        block = dict(block)
        pieces = block.pop("partial_json", None)
        if block.get("type") == "tool_use" and pieces is not None:
            try:
                block["input"] = orjson.loads(pieces) if pieces else {}
            except orjson.JSONDecodeError:
                block["input"] = {}
        content.append(block)
    message["content"] = content
    message["stop_sequence"] = stop_sequence
    return message


def replayed(message: Body) -> list[Event]:
    """The events of a stream that makes ``message``: its start, one start, delta and stop per
    content block, the stop reason with the usage, and ``message_stop``."""
    usage = message.get("usage") or {}
    start = {
        **{k: v for k, v in message.items() if k not in ("content", "usage")},
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 0},
    }
    events: list[Event] = [("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message.get("content") or ()):
        kind = block.get("type")
        if kind == "text":
            empty: Body = {"type": "text", "text": ""}
            delta: Body = {"type": "text_delta", "text": block.get("text", "")}
        elif kind == "tool_use":
            empty = {"type": "tool_use", "id": block.get("id"), "name": block.get("name")}
            empty["input"] = {}
            pieces = orjson.dumps(block.get("input") or {}).decode()
            delta = {"type": "input_json_delta", "partial_json": pieces}
        else:  # a block without deltas (thinking, say): whole in its start
            empty, delta = dict(block), {}
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": empty},
            )
        )
        if delta:
            events.append(
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": message.get("stop_reason"),
                    "stop_sequence": message.get("stop_sequence"),
                },
                "usage": {"output_tokens": int(usage.get("output_tokens") or 0)},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events
