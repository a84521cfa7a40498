"""An OpenAI chat request answered by Anthropic's Messages API.

``request()`` turns the OpenAI body into a Messages body; ``completion()`` turns the Messages
reply into a ``chat.completion``; :class:`StreamTranslator` turns Messages stream events into
``chat.completion.chunk`` objects. Facts follow Anthropic's API reference: roles alternate (so
consecutive turns are merged), system text is a top-level field, tool results travel in a user
turn, ``max_tokens`` is required, and ``temperature`` runs from 0 to 1.
"""

from __future__ import annotations

from typing import Any

from stackyard.gateway.providers.base import Body, UpstreamError
from stackyard.gateway.translate.common import (
    JSON_TOOL,
    ChunkStream,
    dumps,
    lacking,
    new_id,
    now,
    parse_arguments,
    refused,
    text_of,
)

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

#: Anthropic fields a client may send through the OpenAI door; passed on as they are
#: (``service_tier`` only with a value Anthropic takes: :data:`SERVICE_TIERS`).
NATIVE_FIELDS = ("top_k", "thinking", "service_tier")
#: OpenAI parameters Anthropic has no equivalent of, with the values that ask nothing of it;
#: any other value is a 400 naming the parameter, never dropped.
UNSUPPORTED = lacking(
    "seed",
    "logprobs",
    "top_logprobs",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "modalities",
    "audio",
    "prediction",
    "reasoning_effort",
    "web_search_options",
    "functions",
    "function_call",
    "store",
    "metadata",
    "verbosity",
    "prompt_cache_key",
    "prompt_cache_retention",
)
#: The chat-completions fields the translation carries over (or checks, above). Any other
#: field is a 400 naming it: a parameter is honoured or refused, never dropped.
TRANSLATED = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "n",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "user",
        "safety_identifier",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
    }
)
#: Every field the translation takes, as it is or translated.
CARRIED = TRANSLATED | frozenset(NATIVE_FIELDS)
#: What a client can send instead, where Anthropic has its own way.
INSTEAD = {
    "reasoning_effort": "send Anthropic's 'thinking' instead, "
    'e.g. {"type": "enabled", "budget_tokens": 2048}',
    "functions": "send them as 'tools', which Anthropic models take",
    "function_call": "send 'tool_choice', which Anthropic models take",
    "store": "the gateway's own traces keep the request and answer",
    "metadata": "tag the trace with the x-stackyard-metadata header instead",
    "prompt_cache_key": "Anthropic caches prompts by 'cache_control' blocks, not by a key",
    "prompt_cache_retention": "Anthropic sets a cache's lifetime in its 'cache_control' block",
}
#: The ``service_tier`` values Anthropic takes (OpenAI's ``default``, ``flex``, ``scale`` and
#: ``priority`` are not among them).
SERVICE_TIERS = (None, "auto", "standard_only")


def _image_block(part: dict[str, Any]) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise UpstreamError("client", "an image_url part needs a 'url'", status=400)
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";", 1)[0] or "image/png"
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    """OpenAI message content as Anthropic content blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind in ("text", "input_text"):
            if part.get("text"):
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image_block(part))
        elif kind == "refusal":
            blocks.append({"type": "text", "text": part.get("refusal", "")})
        else:
            raise UpstreamError(
                "client", f"content parts of type '{kind}' cannot be sent to Anthropic", status=400
            )
    return blocks


def _append(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Add a turn, merging it into the previous one of the same role (roles must alternate)."""
    if not blocks:
        return
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def request(body: Body, *, model: str, default_max_tokens: int) -> Body:
    """An OpenAI chat-completions body as an Anthropic Messages body."""
    found = refused(body, CARRIED, UNSUPPORTED)
    if found is not None:
        name, lacked = found
        instead = f" ({INSTEAD[name]})" if name in INSTEAD else ""
        message = (
            f"Anthropic models do not support {name}; leave it out for this model{instead}"
            if lacked
            else f"{name} is not a chat-completions parameter this gateway can send to an "
            "Anthropic model; leave it out for this model"
        )
        raise UpstreamError("client", message, status=400, param=name)
    if body.get("service_tier") not in SERVICE_TIERS:
        raise UpstreamError(
            "client",
            f"Anthropic models do not support service_tier {body['service_tier']!r}; send "
            "'auto' or 'standard_only', or leave it out for this model",
            status=400,
            param="service_tier",
        )
    if (body.get("n") or 1) > 1:
        raise UpstreamError(
            "client", "Anthropic models do not support n > 1", status=400, param="n"
        )
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for index, message in enumerate(body["messages"]):
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            text = text_of(content)
            if text:
                system.append(text)
        elif role == "user":
            _append(messages, "user", _blocks(content))
        elif role == "assistant":
            blocks = _blocks(content)
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id"),
                        "name": function.get("name"),
                        "input": parse_arguments(function.get("arguments"), f"messages[{index}]"),
                    }
                )
            _append(messages, "assistant", blocks)
        elif role in ("tool", "function"):
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id") or message.get("name"),
                "content": text_of(content) if not isinstance(content, list) else _blocks(content),
            }
            _append(messages, "user", [result])
    if not messages:  # Anthropic needs a turn to answer; a system prompt alone is not one
        raise UpstreamError(
            "client",
            "messages must include at least one user, assistant or tool message (Anthropic "
            "models do not answer a system or developer message alone)",
            status=400,
            param="messages",
        )
    out: Body = {
        "model": model,
        "messages": messages,
        "max_tokens": body.get("max_completion_tokens")
        or body.get("max_tokens")
        or default_max_tokens,
    }
    if system:
        out["system"] = "\n\n".join(system)
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("temperature") is not None:
        out["temperature"] = min(float(body["temperature"]), 1.0)
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    user, safety = body.get("user"), body.get("safety_identifier")
    if user and safety and user != safety:
        raise UpstreamError(
            "client",
            "Anthropic models take one end-user id (metadata.user_id); send user or "
            "safety_identifier, not two different ones",
            status=400,
            param="safety_identifier",
        )
    if user or safety:
        out["metadata"] = {"user_id": user or safety}
    for name in NATIVE_FIELDS:
        if name in body:
            out[name] = body[name]
    tools = [_tool(t) for t in body.get("tools") or () if t.get("type", "function") == "function"]
    choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    response_format = body.get("response_format") or {}
    if response_format.get("type") in ("json_schema", "json_object"):
        schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
        tools.append(
            {
                "name": JSON_TOOL,
                "description": "Answer with the final response, as this tool's input.",
                "input_schema": schema,
            }
        )
        # One answer: two json_output blocks would make one unparseable text.
        choice = {"type": "tool", "name": JSON_TOOL, "disable_parallel_tool_use": True}
    if tools:
        out["tools"] = tools
    if choice is not None and (tools or choice.get("type") == "none"):
        out["tool_choice"] = choice
    if body.get("stream"):
        out["stream"] = True
    return out


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function") or {}
    out: dict[str, Any] = {
        "name": function.get("name"),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    out: dict[str, Any] | None
    if choice is None:
        out = {"type": "auto"} if parallel is False else None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        out = {"type": "tool", "name": name}
    else:
        out = None
    if out is not None and parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


def usage(anthropic_usage: dict[str, Any]) -> dict[str, Any]:
    """Anthropic's usage as OpenAI's: prompt tokens include cache reads and writes."""
    fresh = anthropic_usage.get("input_tokens") or 0
    read = anthropic_usage.get("cache_read_input_tokens") or 0
    written = anthropic_usage.get("cache_creation_input_tokens") or 0
    output = anthropic_usage.get("output_tokens") or 0
    prompt = fresh + read + written
    return {
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": {"cached_tokens": read, "cache_creation_tokens": written},
    }


def completion(message: Body, *, json_mode: bool) -> Body:
    """An Anthropic Messages reply as an OpenAI ``chat.completion``."""
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            if json_mode and block.get("name") == JSON_TOOL:
                if not texts:  # the first answer only, should the model give two
                    texts.append(dumps(block.get("input")))
                continue
            tool_calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": dumps(block.get("input"))},
                }
            )
    reason = message.get("stop_reason")
    finish = FINISH_REASONS.get(reason or "", "stop")
    if json_mode and finish == "tool_calls" and not tool_calls:
        finish = "stop"
    out_message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        out_message["tool_calls"] = tool_calls
    return {
        # OpenAI's clients expect chatcmpl- ids; Anthropic's own id stays readable in it.
        "id": f"chatcmpl-{message['id']}" if message.get("id") else new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": now(),
        "model": message.get("model"),
        "choices": [
            {"index": 0, "message": out_message, "logprobs": None, "finish_reason": finish}
        ],
        "usage": usage(message.get("usage") or {}),
    }


class StreamTranslator(ChunkStream):
    """Anthropic stream events in, OpenAI chunks out (a list per event, often empty)."""

    def __init__(self, *, json_mode: bool, include_usage: bool) -> None:
        super().__init__(include_usage=include_usage)
        self.json_mode = json_mode
        self.usage: dict[str, Any] = {}
        self.stop_reason: str | None = None
        self._tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool index
        self._json_blocks: set[int] = set()
        self.finished = False

    def feed(self, event: str | None, data: Body) -> list[Body]:
        kind = data.get("type") or event
        if kind == "message_start":
            message = data.get("message") or {}
            self.id = message.get("id") or self.id
            self.model = message.get("model")
            self.usage = dict(message.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            index = int(data.get("index") or 0)
            if block.get("type") == "tool_use":
                if self.json_mode and block.get("name") == JSON_TOOL:
                    self._json_blocks.add(index)
                    return []
                tool_index = len(self._tool_index)
                self._tool_index[index] = tool_index
                call = {
                    "index": tool_index,
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": ""},
                }
                return [self._chunk({"tool_calls": [call]})]
            if block.get("type") == "text" and block.get("text"):
                return [self._chunk({"content": block["text"]})]
            return []
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            index = int(data.get("index") or 0)
            if delta.get("type") == "text_delta":
                return [self._chunk({"content": delta.get("text", "")})]
            if delta.get("type") == "input_json_delta":
                partial = delta.get("partial_json", "")
                if index in self._json_blocks:
                    return [self._chunk({"content": partial})] if partial else []
                position = self._tool_index.get(index)
                if position is None or not partial:
                    return []
                call = {"index": position, "function": {"arguments": partial}}
                return [self._chunk({"tool_calls": [call]})]
            return []  # thinking, signatures, citations: not part of OpenAI's chunk
        if kind == "message_delta":
            self.stop_reason = (data.get("delta") or {}).get("stop_reason") or self.stop_reason
            for key, value in (data.get("usage") or {}).items():
                if value is not None:
                    self.usage[key] = value
            return []
        if kind == "message_stop":
            self.finished = True
            finish = FINISH_REASONS.get(self.stop_reason or "", "stop")
            if finish == "tool_calls" and not self._tool_index:
                finish = "stop"
            return self._end(finish, usage(self.usage))
        if kind == "error":
            error = data.get("error") or {}
            raise UpstreamError(
                "rate_limited" if error.get("type") == "rate_limit_error" else "server",
                f"Anthropic stream error ({error.get('type')}): {error.get('message')}",
            )
        return []  # ping and events added later
