"""An Anthropic Messages request answered by an OpenAI-format back end.

``request()`` turns a Messages body into a chat-completions body; ``message()`` turns a
``chat.completion`` into a Messages reply; :class:`EventTranslator` turns chat chunks into
Messages stream events (``message_start``, ``content_block_*``, ``message_delta``,
``message_stop``), the sequence the ``anthropic`` SDK's stream helpers accumulate.
"""

from __future__ import annotations

from typing import Any

from stackyard.gateway.providers.base import Body, UpstreamError
from stackyard.gateway.translate.common import dumps, new_id, parse_arguments

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

#: An Anthropic stream event: its name and its data.
Event = tuple[str, Body]


def _part(block: dict[str, Any]) -> dict[str, Any] | None:
    """An Anthropic content block as an OpenAI content part."""
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": block.get("text", "")}
    if kind == "image":
        source = block.get("source") or {}
        if source.get("type") == "base64":
            url = f"data:{source.get('media_type')};base64,{source.get('data')}"
        elif source.get("type") == "url":
            url = source.get("url", "")
        else:
            raise UpstreamError(
                "client",
                f"image sources of type '{source.get('type')}' are not supported",
                status=400,
            )
        return {"type": "image_url", "image_url": {"url": url}}
    if kind in ("thinking", "redacted_thinking"):
        return None
    raise UpstreamError(
        "client", f"content blocks of type '{kind}' cannot be sent to this model", status=400
    )


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _tool_result_text(content: Any) -> str | list[dict[str, Any]]:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = [p for p in (_part(b) for b in content) if p is not None]
    return _content(parts)


#: The Messages fields the translation carries over; any other is a 400 naming it, never
#: dropped (Anthropic serves the rest, such as ``top_k`` or ``thinking``).
TRANSLATED = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "temperature",
        "top_p",
        "stop_sequences",
        "metadata",
        "tools",
        "tool_choice",
        "stream",
        "output_config",
        "output_format",
    }
)


def _untranslatable(field: str, why: str) -> UpstreamError:
    return UpstreamError(
        "client",
        f"{field}: {why}, which only Anthropic's own models honour; this model is served in "
        "OpenAI's format",
        status=400,
        param=field,
    )


def request(body: Body) -> Body:
    """A Messages body as a chat-completions body (for any OpenAI-format back end)."""
    for field in body:
        if field not in TRANSLATED:
            raise _untranslatable(field, "a Messages parameter")
    for index, tool in enumerate(body.get("tools") or ()):
        if tool.get("type") not in (None, "custom"):
            raise _untranslatable(f"tools[{index}]", f"a '{tool.get('type')}' server tool")
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if isinstance(system, list):
        system = "".join(b.get("text", "") for b in system if isinstance(b, dict))
    if system:
        messages.append({"role": "system", "content": system})
    for turn in body.get("messages") or ():
        role = turn.get("role")
        content = turn.get("content")
        if isinstance(content, str):
            messages.append({"role": role, "content": content})
            continue
        parts: list[dict[str, Any]] = []
        tool_calls: list[dict[str, Any]] = []
        for block in content or ():
            kind = block.get("type")
            if kind == "tool_result":
                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": block.get("tool_use_id"),
                        "content": _tool_result_text(block.get("content")),
                    }
                )
            elif kind == "tool_use":
                tool_calls.append(
                    {
                        "id": block.get("id"),
                        "type": "function",
                        "function": {
                            "name": block.get("name"),
                            "arguments": dumps(block.get("input", {})),
                        },
                    }
                )
            else:
                part = _part(block)
                if part is not None:
                    parts.append(part)
        if role == "assistant":
            message: dict[str, Any] = {
                "role": "assistant",
                "content": _content(parts) if parts else None,
            }
            if tool_calls:
                message["tool_calls"] = tool_calls
            if parts or tool_calls:
                messages.append(message)
        elif parts:
            messages.append({"role": role, "content": _content(parts)})
    out: Body = {"model": body.get("model"), "messages": messages}
    if body.get("max_tokens") is not None:
        out["max_tokens"] = body["max_tokens"]
    for source, target in (("temperature", "temperature"), ("top_p", "top_p")):
        if body.get(source) is not None:
            out[target] = body[source]
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        out["user"] = user
    tools = [
        {
            "type": "function",
            "function": {
                "name": t.get("name"),
                **({"description": t["description"]} if t.get("description") else {}),
                "parameters": t.get("input_schema") or {"type": "object", "properties": {}},
            },
        }
        for t in body.get("tools") or ()
    ]
    if tools:
        out["tools"] = tools
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "auto":
            out["tool_choice"] = "auto"
        elif kind == "any":
            out["tool_choice"] = "required"
        elif kind == "none":
            out["tool_choice"] = "none"
        elif kind == "tool":
            out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
        if choice.get("disable_parallel_tool_use") and tools:
            out["parallel_tool_calls"] = False
    output_format = _output_format(body)
    if output_format is not None:
        out["response_format"] = output_format
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _output_format(body: Body) -> Body | None:
    """Anthropic's structured output (``output_config.format``, or the beta's top-level
    ``output_format``) as chat's ``response_format``."""
    config = body.get("output_config") or {}
    for name in config:
        if name != "format" and config[name] is not None:
            raise _untranslatable(f"output_config.{name}", "an output setting")
    spec = config.get("format") or body.get("output_format")
    if not spec:
        return None
    schema = {"name": "output", "schema": spec.get("schema") or {}, "strict": True}
    return {"type": "json_schema", "json_schema": schema}


def usage(openai_usage: dict[str, Any] | None) -> dict[str, Any]:
    openai_usage = openai_usage or {}
    cached = (openai_usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return {
        "input_tokens": (openai_usage.get("prompt_tokens") or 0) - cached,
        "output_tokens": openai_usage.get("completion_tokens") or 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def message(completion: Body, *, model: str) -> Body:
    """A ``chat.completion`` as a Messages reply (``model`` is the name the client used)."""
    choices = completion.get("choices") or [{}]
    first = choices[0]
    reply = first.get("message") or {}
    content: list[dict[str, Any]] = []
    text = reply.get("content")
    if isinstance(text, list):
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    if text:
        content.append({"type": "text", "text": text})
    for call in reply.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or new_id("toolu_"),
                "name": function.get("name"),
                "input": parse_arguments(function.get("arguments"), "the upstream's tool call"),
            }
        )
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": STOP_REASONS.get(first.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": usage(completion.get("usage")),
    }


class EventTranslator:
    """Chat chunks in, Messages stream events out."""

    def __init__(self, *, model: str) -> None:
        self.model = model
        self.id = new_id("msg_")
        self.started = False
        self.index = -1  # the open content block's index
        self.open_kind: str | None = None
        self.tool_blocks: dict[int, int] = {}  # OpenAI tool index -> block index
        self.stop_reason = "end_turn"
        self.usage: dict[str, Any] | None = None

    def _start(self) -> list[Event]:
        if self.started:
            return []
        self.started = True
        message: dict[str, Any] = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return [("message_start", {"type": "message_start", "message": message})]

    def _close(self) -> list[Event]:
        if self.open_kind is None:
            return []
        self.open_kind = None
        return [("content_block_stop", {"type": "content_block_stop", "index": self.index})]

    def _open(self, kind: str, block: dict[str, Any]) -> list[Event]:
        events = self._close()
        self.index += 1
        self.open_kind = kind
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": self.index, "content_block": block},
            )
        )
        return events

    def feed(self, chunk: Body) -> list[Event]:
        events = self._start()
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                if self.open_kind != "text":
                    events += self._open("text", {"type": "text", "text": ""})
                events.append(
                    (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": self.index,
                            "delta": {"type": "text_delta", "text": text},
                        },
                    )
                )
            for call in delta.get("tool_calls") or ():
                tool_index = call.get("index", 0)
                function = call.get("function") or {}
                if tool_index not in self.tool_blocks:
                    block: dict[str, Any] = {
                        "type": "tool_use",
                        "id": call.get("id") or new_id("toolu_"),
                        "name": function.get("name"),
                        "input": {},
                    }
                    events += self._open("tool_use", block)
                    self.tool_blocks[tool_index] = self.index
                arguments = function.get("arguments")
                if arguments:
                    events.append(
                        (
                            "content_block_delta",
                            {
                                "type": "content_block_delta",
                                "index": self.tool_blocks[tool_index],
                                "delta": {"type": "input_json_delta", "partial_json": arguments},
                            },
                        )
                    )
            if choice.get("finish_reason"):
                self.stop_reason = STOP_REASONS.get(choice["finish_reason"], "end_turn")
        return events

    def finish(self) -> list[Event]:
        events = self._start() + self._close()
        final = usage(self.usage)
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
                    "usage": final,
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        return events
