"""A Responses API answer from a chat completion: the ``Response`` object of a whole answer,
and the Responses event sequence (``response.created`` ... ``response.completed``) of a
stream of chunks. Pure, as :mod:`stackyard.gateway.translate.responses` (the request) is."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from stackyard.gateway.translate.responses import new_id

Body = dict[str, Any]


# -- the answer --------------------------------------------------------------------------------


def envelope(body: Body, response_id: str, created: float, store: bool) -> Body:
    """A Response's fields that echo the request (every one the SDK's type has)."""
    form = (body.get("text") or {}).get("format") or {"type": "text"}
    reasoning = body.get("reasoning") or {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(created),
        "status": "in_progress",
        "background": False,
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": body["model"],
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": None},
        "service_tier": "default",
        "store": store,
        "temperature": body.get("temperature", 1.0),
        "text": {"format": form, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": [_echo_tool(t) for t in body.get("tools") or []],
        "top_logprobs": 0,
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def _echo_tool(tool: Body) -> Body:
    return {
        "type": "function",
        "name": tool["name"],
        "description": tool.get("description"),
        "parameters": tool.get("parameters"),
        "strict": tool.get("strict", True),
    }


def usage(chat: Body | None) -> Body | None:
    if not chat:
        return None
    prompt = int(chat.get("prompt_tokens") or 0)
    completion = int(chat.get("completion_tokens") or 0)
    cached = (chat.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (chat.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": int(cached), "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": int(reasoning)},
        "total_tokens": prompt + completion,
    }


def _finished(response: Body, finish_reason: str | None, chat_usage: Body | None) -> Body:
    if finish_reason == "length":
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": "max_output_tokens"}
    elif finish_reason == "content_filter":
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": "content_filter"}
    else:
        response["status"] = "completed"
        response["completed_at"] = int(time.time())
    response["usage"] = usage(chat_usage)
    return response


def output_text_part(text: str) -> Body:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def response(envelope_: Body, completion: Body) -> Body:
    """A whole chat completion as a Response."""
    choices = completion.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    output: list[Body] = []
    content, refusal = message.get("content"), message.get("refusal")
    calls = message.get("tool_calls") or []
    if content or refusal or not calls:
        parts = [output_text_part(content or "")] if content or not refusal else []
        if refusal:
            parts.append({"type": "refusal", "refusal": refusal})
        output.append(
            {
                "id": new_id("msg"),
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": parts,
            }
        )
    for call in calls:
        function = call.get("function") or {}
        output.append(
            {
                "id": new_id("fc"),
                "type": "function_call",
                "call_id": call.get("id") or new_id("call"),
                "name": function.get("name", ""),
                "arguments": function.get("arguments") or "",
                "status": "completed",
            }
        )
    out = {**envelope_, "output": output}
    if completion.get("model"):
        out["model"] = completion["model"]
    return _finished(out, choice.get("finish_reason"), completion.get("usage"))


# -- a stream ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Call:
    output_index: int
    item: Body


@dataclass
class EventEncoder:
    """Chat chunks in, Responses events out (``(type, data)`` pairs, each with its
    ``sequence_number``). The text and each tool call are output items, opened when their
    first delta comes and closed (``.done``) when the next item opens or the stream ends."""

    response: Body
    sequence: int = 0
    output: list[Body] = field(default_factory=list)
    text: _Call | None = None
    refusal: str | None = None
    calls: dict[int, _Call] = field(default_factory=dict)
    open_calls: list[_Call] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Body | None = None
    model: str | None = None

    def _event(self, kind: str, **data: Any) -> tuple[str, Body]:
        event = {"type": kind, "sequence_number": self.sequence, **data}
        self.sequence += 1
        return kind, event

    def _snapshot(self) -> Body:
        return orjson.loads(orjson.dumps(self.response))  # type: ignore[no-any-return]

    def start(self) -> list[tuple[str, Body]]:
        return [
            self._event("response.created", response=self._snapshot()),
            self._event("response.in_progress", response=self._snapshot()),
        ]

    def feed(self, chunk: Body) -> list[tuple[str, Body]]:
        events: list[tuple[str, Body]] = []
        if chunk.get("model"):
            self.model = chunk["model"]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                events += self._text(text)
            if delta.get("refusal"):
                self.refusal = (self.refusal or "") + delta["refusal"]
            for call in delta.get("tool_calls") or ():
                events += self._call(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def _open(self, item: Body) -> tuple[_Call, tuple[str, Body]]:
        opened = _Call(len(self.output), item)
        self.output.append(item)
        added = self._event(
            "response.output_item.added", output_index=opened.output_index, item=dict(item)
        )
        return opened, added

    def _text(self, text: str) -> list[tuple[str, Body]]:
        events: list[tuple[str, Body]] = []
        if self.text is None:
            events += self._close_calls()
            item = {
                "id": new_id("msg"),
                "type": "message",
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            }
            self.text, added = self._open(item)
            events.append(added)
            events.append(
                self._event(
                    "response.content_part.added",
                    item_id=item["id"],
                    output_index=self.text.output_index,
                    content_index=0,
                    part=output_text_part(""),
                )
            )
            item["text"] = ""
        opened = self.text
        opened.item["text"] += text
        events.append(
            self._event(
                "response.output_text.delta",
                item_id=opened.item["id"],
                output_index=opened.output_index,
                content_index=0,
                delta=text,
                logprobs=[],
            )
        )
        return events

    def _call(self, call: Body) -> list[tuple[str, Body]]:
        events: list[tuple[str, Body]] = []
        index = call.get("index", 0)
        function = call.get("function") or {}
        opened = self.calls.get(index)
        if opened is None:
            events += self._close_text()
            item = {
                "id": new_id("fc"),
                "type": "function_call",
                "call_id": call.get("id") or new_id("call"),
                "name": function.get("name") or "",
                "arguments": "",
                "status": "in_progress",
            }
            opened, added = self._open(item)
            self.calls[index] = opened
            self.open_calls.append(opened)
            events.append(added)
        elif function.get("name"):
            opened.item["name"] += function["name"]
        arguments = function.get("arguments")
        if arguments:
            opened.item["arguments"] += arguments
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=opened.item["id"],
                    output_index=opened.output_index,
                    delta=arguments,
                )
            )
        return events

    def _close_text(self) -> list[tuple[str, Body]]:
        opened, self.text = self.text, None
        if opened is None:
            return []
        item = opened.item
        text = item.pop("text")
        part = output_text_part(text)
        item["content"] = [part]
        item["status"] = "completed"
        where = {"item_id": item["id"], "output_index": opened.output_index, "content_index": 0}
        return [
            self._event("response.output_text.done", **where, text=text, logprobs=[]),
            self._event("response.content_part.done", **where, part=part),
            self._event(
                "response.output_item.done", output_index=opened.output_index, item=dict(item)
            ),
        ]

    def _close_calls(self) -> list[tuple[str, Body]]:
        events = []
        for opened in self.open_calls:
            item = opened.item
            item["status"] = "completed"
            events.append(
                self._event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=opened.output_index,
                    name=item["name"],
                    arguments=item["arguments"],
                )
            )
            events.append(
                self._event(
                    "response.output_item.done", output_index=opened.output_index, item=dict(item)
                )
            )
        self.open_calls = []
        return events

    def finish(self) -> list[tuple[str, Body]]:
        """The open items closed, then ``response.completed`` (or ``response.incomplete``)."""
        events = self._close_text() + self._close_calls()
        if self.refusal:
            item = {
                "id": new_id("msg"),
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "refusal", "refusal": self.refusal}],
            }
            _, added = self._open(item)
            events.append(added)
            events.append(
                self._event(
                    "response.output_item.done", output_index=len(self.output) - 1, item=item
                )
            )
        if not self.output:  # an empty answer is one empty message, as on a whole answer
            events += self._empty()
        response = self.final()
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        events.append(self._event(kind, response=response))
        return events

    def _empty(self) -> list[tuple[str, Body]]:
        item = {
            "id": new_id("msg"),
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [output_text_part("")],
        }
        opened, added = self._open(item)
        return [
            added,
            self._event("response.output_item.done", output_index=opened.output_index, item=item),
        ]

    def final(self) -> Body:
        """The Response as the stream left it."""
        out = {**self.response, "output": [dict(i) for i in self.output]}
        if self.model:
            out["model"] = self.model
        return _finished(out, self.finish_reason, self.usage)

    def error(self, code: str, message: str) -> tuple[str, Body]:
        return self._event("error", code=code, message=message, param=None)


def sse(events: list[tuple[str, Body]]) -> bytes:
    return b"".join(
        b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
        for kind, data in events
    )
