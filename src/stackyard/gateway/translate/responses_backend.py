"""An OpenAI chat request answered by OpenAI's Responses API (``POST /v1/responses``).

For upstream models that OpenAI serves through the Responses API only (``o1-pro``, the codex
models and others), or a server that speaks it alone: a deployment with ``options: {api:
responses}``. ``request()`` turns the chat body into a Responses body; ``completion()`` turns
the ``Response`` into a ``chat.completion``; :class:`StreamTranslator` turns the Responses
stream's events into ``chat.completion.chunk`` objects.

The gateway keeps conversations itself (``previous_response_id`` on its own door), so the
upstream gets the whole conversation each time, with ``store: false``. Chat parameters the
Responses API has no counterpart for are a 400 naming them, never dropped.
"""

from __future__ import annotations

from typing import Any

from stackyard.gateway.providers.base import Body, ErrorKind, UpstreamError
from stackyard.gateway.translate.common import (
    ChunkStream,
    lacking,
    new_id,
    now,
    refused,
    text_of,
)

#: Chat parameters the Responses API has no counterpart for, with the values that ask
#: nothing of it; any other value is a 400 naming the parameter.
UNSUPPORTED = lacking(
    "n",
    "stop",
    "seed",
    "logprobs",
    "top_logprobs",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
    "functions",
    "function_call",
    "store",
)
#: The chat fields carried over (or checked above); any other field is a 400 naming it.
TRANSLATED = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "user",
        "safety_identifier",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "reasoning_effort",
        "metadata",
        "service_tier",
        "verbosity",
        "prompt_cache_key",
        "prompt_cache_retention",
    }
)
#: Fields passed on under the same name.
SAME = (
    "temperature",
    "top_p",
    "user",
    "safety_identifier",
    "parallel_tool_calls",
    "metadata",
    "service_tier",
    "prompt_cache_key",
    "prompt_cache_retention",
)


def _refuse(param: str, why: str) -> UpstreamError:
    return UpstreamError(
        "client",
        f"{param} cannot be sent to a model served by the Responses API: {why}",
        status=400,
        param=param,
    )


def _parts(content: Any, role: str, where: str) -> list[Body]:
    """Chat message content as Responses content parts."""
    text_type = "output_text" if role == "assistant" else "input_text"
    if content is None:
        return []
    if isinstance(content, str):
        return [_text_part(text_type, content)]
    parts: list[Body] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("text", "input_text", "output_text"):
            parts.append(_text_part(text_type, str(part.get("text", ""))))
        elif kind == "refusal" and role == "assistant":
            parts.append({"type": "refusal", "refusal": str(part.get("refusal", ""))})
        elif kind == "image_url" and role != "assistant":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str):
                raise _refuse(f"{where}.content[{index}]", "an image_url part needs a 'url'")
            detail = image.get("detail") if isinstance(image, dict) else None
            parts.append({"type": "input_image", "image_url": url, "detail": detail or "auto"})
        else:
            raise _refuse(f"{where}.content[{index}]", f"content of type {kind!r}")
    return parts


def _text_part(kind: str, text: str) -> Body:
    part: Body = {"type": kind, "text": text}
    if kind == "output_text":
        part["annotations"] = []
    return part


def _input(messages: list[Body]) -> list[Body]:
    items: list[Body] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = message.get("role")
        if role == "tool":
            output = text_of(message.get("content"))
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message.get("tool_call_id"),
                    "output": output,
                }
            )
            continue
        if role not in ("system", "developer", "user", "assistant"):
            raise _refuse(f"{where}.role", f"messages of role {role!r}")
        parts = _parts(message.get("content"), str(role), where)
        if parts:
            items.append({"type": "message", "role": role, "content": parts})
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.get("id"),
                    "name": function.get("name"),
                    "arguments": function.get("arguments") or "",
                }
            )
    return items


def _tool(tool: Body, index: int) -> Body:
    if tool.get("type") != "function":
        raise _refuse(f"tools[{index}].type", f"tools of type {tool.get('type')!r}")
    function = tool.get("function") or {}
    out: Body = {"type": "function", "name": function.get("name")}
    for key in ("description", "parameters", "strict"):
        if key in function:
            out[key] = function[key]
    if "parameters" not in out:
        out["parameters"] = {"type": "object", "properties": {}}
    return out


def _tool_choice(choice: Any) -> Any:
    if choice is None or isinstance(choice, str):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "name": (choice.get("function") or {}).get("name")}
    raise _refuse("tool_choice", f"a tool choice of {choice!r}")


def _text_format(response_format: Any) -> Body | None:
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind in ("text", "json_object"):
        return {"type": kind}
    if kind == "json_schema":
        schema = response_format.get("json_schema") or {}
        out: Body = {"type": "json_schema", "name": schema.get("name") or "response"}
        for key in ("schema", "strict", "description"):
            if key in schema:
                out[key] = schema[key]
        return out
    raise _refuse("response_format", f"a response format of type {kind!r}")


def request(body: Body, *, model: str) -> Body:
    """A chat-completions body as a Responses body (``store: false``: the gateway keeps
    conversations itself)."""
    found = refused(body, TRANSLATED, UNSUPPORTED)
    if found is not None:
        name, lacked = found
        why = "it is not a chat-completions parameter the gateway translates"
        raise _refuse(name, "the Responses API has no such parameter" if lacked else why)
    out: Body = {"model": model, "input": _input(body["messages"]), "store": False}
    for name in SAME:
        if body.get(name) is not None:
            out[name] = body[name]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is not None:
        out["max_output_tokens"] = limit
    if body.get("tools"):
        out["tools"] = [_tool(tool, i) for i, tool in enumerate(body["tools"])]
    if body.get("tool_choice") is not None:
        out["tool_choice"] = _tool_choice(body["tool_choice"])
    text: Body = {}
    text_format = _text_format(body.get("response_format"))
    if text_format is not None:
        text["format"] = text_format
    if body.get("verbosity") is not None:
        text["verbosity"] = body["verbosity"]
    if text:
        out["text"] = text
    if body.get("reasoning_effort") is not None:
        out["reasoning"] = {"effort": body["reasoning_effort"]}
    if body.get("stream"):
        out["stream"] = True
    return out


# -- the answer ----------------------------------------------------------------------------------


def usage(response_usage: Body | None) -> Body:
    """The Responses API's usage as chat's."""
    given = response_usage or {}
    prompt = int(given.get("input_tokens") or 0)
    completion_tokens = int(given.get("output_tokens") or 0)
    cached = (given.get("input_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (given.get("output_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": int(given.get("total_tokens") or prompt + completion_tokens),
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def _finish(response: Body, tool_calls: bool) -> str:
    if response.get("status") == "incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason")
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if tool_calls else "stop"


def _failure(response: Body, upstream: str) -> UpstreamError:
    error = response.get("error") or {}
    code = error.get("code")
    kind: ErrorKind = "rate_limited" if code == "rate_limit_exceeded" else "server"
    return UpstreamError(kind, f"{upstream} failed the response ({code}): {error.get('message')}")


def completion(response: Body, *, upstream: str) -> Body:
    """A ``Response`` as a ``chat.completion``."""
    if response.get("status") == "failed":
        raise _failure(response, upstream)
    output = response.get("output")
    if not isinstance(output, list):
        raise UpstreamError("invalid_response", f"{upstream} sent no 'output'")
    texts: list[str] = []
    refusals: list[str] = []
    tool_calls: list[Body] = []
    for item in output:
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or ():
                if part.get("type") == "output_text":
                    texts.append(str(part.get("text", "")))
                elif part.get("type") == "refusal":
                    refusals.append(str(part.get("refusal", "")))
        elif kind == "function_call":
            tool_calls.append(
                {
                    "id": item.get("call_id"),
                    "type": "function",
                    "function": {"name": item.get("name"), "arguments": item.get("arguments")},
                }
            )
        # reasoning items (and any later kinds) are not part of a chat completion
    message: Body = {
        "role": "assistant",
        "content": "".join(texts) if texts or not (tool_calls or refusals) else None,
        "refusal": "".join(refusals) if refusals else None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    finish = _finish(response, bool(tool_calls))
    return {
        "id": f"chatcmpl-{response['id']}" if response.get("id") else new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(response.get("created_at") or now()),
        "model": response.get("model"),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage(response.get("usage")),
    }


class StreamTranslator(ChunkStream):
    """Responses stream events in, chat chunks out (a list per event, often empty)."""

    def __init__(self, *, include_usage: bool, upstream: str) -> None:
        super().__init__(include_usage=include_usage)
        self.upstream = upstream
        self._tools: dict[int, int] = {}  # the Response's output_index -> the chat tool index
        self.finished = False

    def feed(self, data: Body) -> list[Body]:
        kind = data.get("type")
        if kind == "response.created":
            response = data.get("response") or {}
            if response.get("id"):
                self.id = f"chatcmpl-{response['id']}"
            self.model = response.get("model")
            self.created = int(response.get("created_at") or self.created)
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "response.output_text.delta":
            return [self._chunk({"content": str(data.get("delta", ""))})]
        if kind == "response.refusal.delta":
            return [self._chunk({"refusal": str(data.get("delta", ""))})]
        if kind == "response.output_item.added":
            item = data.get("item") or {}
            if item.get("type") != "function_call":
                return []
            position = len(self._tools)
            self._tools[int(data.get("output_index") or 0)] = position
            call = {
                "index": position,
                "id": item.get("call_id"),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments") or ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        if kind == "response.function_call_arguments.delta":
            found = self._tools.get(int(data.get("output_index") or 0))
            if found is None or not data.get("delta"):
                return []
            call = {"index": found, "function": {"arguments": str(data["delta"])}}
            return [self._chunk({"tool_calls": [call]})]
        if kind in ("response.completed", "response.incomplete"):
            self.finished = True
            response = data.get("response") or {}
            return self._end(_finish(response, bool(self._tools)), usage(response.get("usage")))
        if kind == "response.failed":
            raise _failure(data.get("response") or {}, self.upstream)
        if kind == "error":
            code = data.get("code")
            raise UpstreamError(
                "rate_limited" if code == "rate_limit_exceeded" else "server",
                f"{self.upstream} failed mid-stream ({code}): {data.get('message')}",
            )
        return []  # in_progress, content parts, the *.done events, reasoning: nothing new
