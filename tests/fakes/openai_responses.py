"""The fake OpenAI server's ``POST /v1/responses``: a ``Response`` object, or its stream of
events, in the wire format of OpenAI's API reference (``response.created``,
``response.in_progress``, ``response.output_item.added``, ``response.content_part.added``,
``response.output_text.delta`` ... ``response.completed`` or ``response.incomplete``; a
``response.failed`` event for an injected stream error).

The answer itself is the chat fake's (:class:`openai_upstream._Answer`): the last user text
echoed, a tool call when asked, JSON for a ``text.format``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
from aiohttp import web

#: The request fields OpenAI's Responses API takes (others: 400 "Unrecognized request argument").
FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "text",
        "max_output_tokens",
        "temperature",
        "top_p",
        "metadata",
        "user",
        "safety_identifier",
        "store",
        "previous_response_id",
        "stream",
        "stream_options",
        "reasoning",
        "truncation",
        "include",
        "background",
        "service_tier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "top_logprobs",
        "max_tool_calls",
        "conversation",
        "prompt",
    }
)


def unknown_field(body: dict[str, Any]) -> str | None:
    return next((name for name in body if name not in FIELDS), None)


def chat_view(body: dict[str, Any]) -> dict[str, Any]:
    """The request as the chat fake reads one: messages, tools, tool choice, format, limit."""
    given = body.get("input")
    messages: list[dict[str, Any]] = []
    if isinstance(given, str):
        messages.append({"role": "user", "content": given})
    for item in given if isinstance(given, list) else ():
        if item.get("type", "message") == "message":
            content = item.get("content")
            if isinstance(content, list):
                content = " ".join(str(p.get("text", "")) for p in content if "text" in p)
            messages.append({"role": item.get("role"), "content": content})
    tools = [
        {"type": "function", "function": {"name": t.get("name"), "parameters": t.get("parameters")}}
        for t in body.get("tools") or ()
        if t.get("type") == "function"
    ]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        choice = {"type": "function", "function": {"name": choice.get("name")}}
    text_format = (body.get("text") or {}).get("format") or {}
    response_format: dict[str, Any] | None = None
    if text_format.get("type") == "json_object":
        response_format = {"type": "json_object"}
    elif text_format.get("type") == "json_schema":
        response_format = {"type": "json_schema", "json_schema": text_format}
    return {
        "model": body.get("model"),
        "messages": messages,
        "tools": tools,
        "tool_choice": choice,
        "response_format": response_format,
        "max_tokens": body.get("max_output_tokens"),
    }


class ResponseAnswer:
    """One Response, whole or as events, from a chat answer's pieces and tool call."""

    def __init__(self, body: dict[str, Any], answer: Any) -> None:
        self.body = body
        self.answer = answer
        self.id = f"resp_{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.item_id = f"msg_{uuid.uuid4().hex}"
        self.sequence = 0

    def _usage(self) -> dict[str, Any]:
        usage = self.answer.usage()
        return {
            "input_tokens": usage["prompt_tokens"],
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": usage["completion_tokens"],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage["total_tokens"],
        }

    def _items(self, done: bool) -> list[dict[str, Any]]:
        call = self.answer.tool_call
        status = "completed" if done else "in_progress"
        if call is not None:
            function = call["function"]
            return [
                {
                    "id": f"fc_{call['id'][5:]}",
                    "type": "function_call",
                    "status": status,
                    "call_id": call["id"],
                    "name": function["name"],
                    "arguments": function["arguments"] if done else "",
                }
            ]
        text = "".join(self.answer.pieces) if done else ""
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        return [
            {
                "id": self.item_id,
                "type": "message",
                "status": status,
                "role": "assistant",
                "content": [part] if done else [],
            }
        ]

    def response(self, status: str = "completed") -> dict[str, Any]:
        done = status != "in_progress"
        incomplete = self.answer.finish == "length"
        if done and incomplete:
            status = "incomplete"
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if done and incomplete else None,
            "instructions": self.body.get("instructions"),
            "max_output_tokens": self.body.get("max_output_tokens"),
            "model": self.body.get("model"),
            "output": self._items(True) if done else [],
            "parallel_tool_calls": self.body.get("parallel_tool_calls", True),
            "previous_response_id": None,
            "store": self.body.get("store", True),
            "temperature": self.body.get("temperature", 1.0),
            "text": self.body.get("text") or {"format": {"type": "text"}},
            "tool_choice": self.body.get("tool_choice", "auto"),
            "tools": self.body.get("tools") or [],
            "top_p": self.body.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": self._usage() if done else None,
            "metadata": self.body.get("metadata") or {},
        }

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        self.sequence += 1
        return {"type": kind, "sequence_number": self.sequence - 1, **fields}

    def events(self) -> Iterator[dict[str, Any]]:
        yield self._event("response.created", response=self.response("in_progress"))
        yield self._event("response.in_progress", response=self.response("in_progress"))
        item = self._items(False)[0]
        yield self._event("response.output_item.added", output_index=0, item=item)
        if item["type"] == "function_call":
            for piece in self.answer.pieces:
                yield self._event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=0,
                    delta=piece,
                )
            final = self._items(True)[0]
            yield self._event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=0,
                arguments=final["arguments"],
            )
        else:
            where = {"item_id": self.item_id, "output_index": 0, "content_index": 0}
            empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            yield self._event("response.content_part.added", **where, part=empty)
            for piece in self.answer.pieces:
                yield self._event("response.output_text.delta", **where, delta=piece, logprobs=[])
            final = self._items(True)[0]
            text = final["content"][0]["text"]
            yield self._event("response.output_text.done", **where, text=text, logprobs=[])
            yield self._event("response.content_part.done", **where, part=final["content"][0])
        yield self._event("response.output_item.done", output_index=0, item=final)
        finished = self.response()
        yield self._event(f"response.{finished['status']}", response=finished)

    def failed(self, message: str) -> dict[str, Any]:
        failed = {**self.response("in_progress"), "status": "failed"}
        failed["error"] = {"code": "server_error", "message": message}
        return self._event("response.failed", response=failed)


async def serve(request: web.Request, answer: ResponseAnswer) -> web.StreamResponse:
    """The answer as JSON, or as SSE events with the request's queued stream fault applied."""
    from tests.fakes import openai_upstream as upstream  # it imports this module

    if not answer.body.get("stream"):
        return web.json_response(answer.response(), dumps=lambda v: orjson.dumps(v).decode())
    fault: Any = request.get(upstream.FAULT)
    kind = getattr(fault, "kind", None)
    cut_at = fault.after_chunks if kind in ("cut_stream", "stream_error") else -1
    response = web.StreamResponse(headers=upstream._SSE_HEADERS)
    await response.prepare(request)
    for index, event in enumerate(answer.events()):
        if index == cut_at:
            if kind == "cut_stream":
                upstream._abort(request)
                return response
            event = answer.failed(fault.message)
        data = orjson.dumps(event)
        await response.write(b"event: %s\ndata: %s\n\n" % (event["type"].encode(), data))
        if index == cut_at:
            break
    await response.write_eof()
    return response
