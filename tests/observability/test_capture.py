"""Assembling a streamed answer for the trace, from OpenAI chunks and Anthropic events."""

from __future__ import annotations

from typing import Any

from stackyard.observability.capture import ChunkCapture, EventCapture


def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "model": "m-2024",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
    }


def test_text_tool_calls_and_finish_reasons_are_assembled() -> None:
    capture = ChunkCapture()
    for piece in (
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({"content": "other"}, index=1),
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": '{"a"'}}
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
        chunk({}, finish="tool_calls"),
        chunk({}, finish="stop", index=1),
    ):
        capture.feed(piece)
    usage = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    result = capture.result(usage)
    assert result["model"] == "m-2024"
    assert result["usage"] == usage
    first, second = result["choices"]
    assert first["message"]["content"] == "Hello"
    assert first["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    ]
    assert first["finish_reason"] == "tool_calls"
    assert second == {
        "index": 1,
        "message": {"role": "assistant", "content": "other"},
        "finish_reason": "stop",
    }


def test_anthropic_events_are_assembled() -> None:
    capture = EventCapture()
    for event in (
        {"type": "message_start", "message": {"id": "msg_1", "model": "claude-x"}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
        {"type": "message_stop"},
    ):
        capture.feed(event)
    result = capture.result(None)
    assert result["model"] == "claude-x"
    assert result["content"] == [{"type": "text", "text": "Hi!"}]
    assert result["stop_reason"] == "end_turn"
