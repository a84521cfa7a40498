"""Assembling a streamed answer as it passes, for the trace: the text of each choice, tool-call
arguments, finish reasons and the model (OpenAI chunks), or the text blocks and stop reason
(Anthropic events). Only what a stored response body needs; the chunks go out untouched."""

from __future__ import annotations

from typing import Any


class ChunkCapture:
    """OpenAI ``chat.completion.chunk`` objects, assembled into a ``chat.completion``."""

    __slots__ = ("finish", "id", "model", "text", "tools")

    def __init__(self) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self.text: dict[int, list[str]] = {}
        self.finish: dict[int, str] = {}
        #: (choice, tool index) -> [id, name, argument pieces]
        self.tools: dict[tuple[int, int], list[Any]] = {}

    def feed(self, chunk: dict[str, Any]) -> None:
        if self.id is None:
            self.id = chunk.get("id")
            self.model = chunk.get("model")
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                self.text.setdefault(index, []).append(content)
            for call in delta.get("tool_calls") or ():
                slot = self.tools.setdefault((index, call.get("index", 0)), [None, None, []])
                slot[0] = slot[0] or call.get("id")
                function = call.get("function") or {}
                slot[1] = slot[1] or function.get("name")
                if function.get("arguments"):
                    slot[2].append(function["arguments"])
            if choice.get("finish_reason"):
                self.finish[index] = choice["finish_reason"]

    def result(self, usage: dict[str, Any] | None) -> dict[str, Any]:
        choices = []
        for index in sorted({*self.text, *self.finish, *(i for i, _ in self.tools)}):
            message: dict[str, Any] = {
                "role": "assistant",
                "content": "".join(self.text.get(index, ())) or None,
            }
            calls = [
                {
                    "id": slot[0],
                    "type": "function",
                    "function": {"name": slot[1], "arguments": "".join(slot[2])},
                }
                for (choice, _), slot in sorted(self.tools.items())
                if choice == index
            ]
            if calls:
                message["tool_calls"] = calls
            choices.append(
                {"index": index, "message": message, "finish_reason": self.finish.get(index)}
            )
        return {
            "id": self.id,
            "object": "chat.completion",
            "model": self.model,
            "choices": choices,
            "usage": usage,
        }


class EventCapture:
    """Anthropic Messages stream events, assembled into a ``message``."""

    __slots__ = ("blocks", "id", "model", "stop_reason")

    def __init__(self) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self.stop_reason: str | None = None
        self.blocks: dict[int, dict[str, Any]] = {}

    def feed(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "message_start":
            message = data.get("message") or {}
            self.id, self.model = message.get("id"), message.get("model")
        elif kind == "content_block_start":
            self.blocks[data.get("index", 0)] = dict(data.get("content_block") or {})
        elif kind == "content_block_delta":
            block = self.blocks.setdefault(data.get("index", 0), {"type": "text", "text": ""})
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                block["text"] = block.get("text", "") + delta.get("text", "")
            elif delta.get("type") == "input_json_delta":
                block["partial_json"] = block.get("partial_json", "") + delta.get(
                    "partial_json", ""
                )
        elif kind == "message_delta":
            self.stop_reason = (data.get("delta") or {}).get("stop_reason") or self.stop_reason

    def result(self, usage: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [self.blocks[i] for i in sorted(self.blocks)],
            "stop_reason": self.stop_reason,
            "usage": usage,
        }
