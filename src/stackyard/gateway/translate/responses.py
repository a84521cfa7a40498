"""OpenAI's Responses API in chat-completions terms, for every model behind the gateway.

A request becomes a chat request (the conversation a previous response left first, then
``instructions`` as the system message, then the ``input`` items), a completion becomes a
``Response`` object, and a stream of chunks becomes the Responses event sequence
(``response.created`` ... ``response.completed``). Everything here is pure: the door
(:mod:`stackyard.gateway.doors.responses`) and the stored responses call it.

What the gateway cannot do (built-in tools, background runs, reasoning summaries, a
truncation strategy, ``include``) is a 400 naming the parameter, never dropped.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from stackyard.errors import APIError, invalid_request

Body = dict[str, Any]

#: The fields a request may carry, and what each is, for the messages of a 400.
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
    }
)
#: Fields of OpenAI's that the gateway cannot honour, with why (a 400 names them when set).
REFUSED = {
    "conversation": "the Conversations API is not served; use previous_response_id",
    "top_logprobs": "log probabilities are not returned on /v1/responses",
    "max_tool_calls": "it limits built-in tools, which the gateway does not run",
    "prompt_cache_key": "it is OpenAI's own cache hint; the gateway's cache needs none",
    "prompt_cache_retention": "it is OpenAI's own cache setting",
    "context_management": "server-side compaction is not done",
}
#: Built-in tools the gateway cannot run.
BUILT_IN = (
    "web_search, file_search, computer use, code_interpreter, image_generation, mcp, shell "
    "and the other built-in tools"
)
#: The metadata OpenAI allows: 16 keys of at most 64 characters, values of at most 512.
METADATA_KEYS, METADATA_KEY, METADATA_VALUE = 16, 64, 512


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


def unsupported(param: str, why: str) -> APIError:
    return APIError(
        400,
        f"'{param}' is not supported on /v1/responses: {why}.",
        type="invalid_request_error",
        param=param,
        code="unsupported_parameter",
    )


def _need(ok: bool, param: str, message: str) -> None:
    if not ok:
        raise invalid_request(message, param=param)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# -- the request -------------------------------------------------------------------------------


@dataclass(slots=True)
class Parsed:
    """A checked request: what the chat request is built of, and what the Response echoes."""

    body: Body
    #: This turn's input, as items with ids (``GET /v1/responses/{id}/input_items``).
    items: list[Body]
    #: This turn's input as chat messages (no instructions): the next turn's history.
    messages: list[Body]
    #: Where each of ``messages`` came from in the request (``input[2].output``...), for
    #: errors that name a chat message.
    origins: list[str]
    stream: bool
    store: bool
    previous: str | None


def check(body: Body, *, prompt: bool = False) -> Parsed:
    """Check a Responses request (a 400 names what is wrong or not supported). With a
    registry ``prompt``, ``input`` may be left out."""
    for name in body:
        if name in REFUSED:
            if body[name] is not None:
                raise unsupported(name, REFUSED[name])
        elif name not in FIELDS:
            raise invalid_request(f"Unrecognized request argument: '{name}'.", param=name)
    model = body.get("model")
    _need(isinstance(model, str) and bool(model), "model", "Missing required parameter: 'model'.")
    given = body.get("input")
    if given is None or given == [] or given == "":
        if not prompt:
            raise invalid_request("Missing required parameter: 'input'.", param="input")
        items: list[Body] = []
    else:
        items = input_items(given)
    instructions = body.get("instructions")
    _need(
        instructions is None or isinstance(instructions, str),
        "instructions",
        "'instructions' must be a string.",
    )
    for name, low, high in (("temperature", 0, 2), ("top_p", 0, 1)):
        value = body.get(name)
        _need(
            value is None or (_is_number(value) and low <= value <= high),
            name,
            f"'{name}' must be a number from {low} to {high}.",
        )
    limit = body.get("max_output_tokens")
    _need(
        limit is None or (_is_int(limit) and limit >= 1),
        "max_output_tokens",
        "'max_output_tokens' must be an integer of at least 1.",
    )
    for name in ("stream", "store", "parallel_tool_calls", "background"):
        value = body.get(name)
        _need(value is None or isinstance(value, bool), name, f"'{name}' must be a boolean.")
    for name in ("user", "safety_identifier", "previous_response_id"):
        value = body.get(name)
        _need(value is None or isinstance(value, str), name, f"'{name}' must be a string.")
    _check_metadata(body.get("metadata"))
    _check_unsupported_values(body)
    tools(body.get("tools"))  # checked here; translated in chat_request
    tool_choice(body.get("tool_choice"))
    response_format(body.get("text"))
    stream = bool(body.get("stream"))
    options = body.get("stream_options")
    if options is not None:
        _need(stream, "stream_options", "'stream_options' is only allowed when 'stream' is true.")
        _need(isinstance(options, dict), "stream_options", "'stream_options' must be an object.")
        for key, value in options.items():
            if key != "include_obfuscation":
                raise invalid_request(
                    f"Unrecognized argument: 'stream_options.{key}'.",
                    param=f"stream_options.{key}",
                )
            if value:
                raise unsupported(
                    "stream_options.include_obfuscation",
                    "the gateway does not pad stream events; set it to false",
                )
    said = [
        (message, f"input[{index}].{_FIELD[item['type']]}")
        for index, item in enumerate(items)
        for message in _chat_messages(item)
    ]
    messages, origins = _merged_with([m for m, _ in said], [o for _, o in said])
    return Parsed(
        body=body,
        items=items,
        messages=messages,
        origins=origins,
        stream=stream,
        store=body.get("store") is not False,
        previous=body.get("previous_response_id"),
    )


def _check_metadata(metadata: object) -> None:
    if metadata is None:
        return
    _need(isinstance(metadata, dict), "metadata", "'metadata' must be an object.")
    assert isinstance(metadata, dict)
    _need(
        len(metadata) <= METADATA_KEYS,
        "metadata",
        f"'metadata' may have at most {METADATA_KEYS} keys.",
    )
    for key, value in metadata.items():
        _need(
            len(key) <= METADATA_KEY and isinstance(value, str) and len(value) <= METADATA_VALUE,
            f"metadata.{key}",
            f"'metadata' keys are at most {METADATA_KEY} characters and values strings of at "
            f"most {METADATA_VALUE}.",
        )


def _check_unsupported_values(body: Body) -> None:
    if body.get("background"):
        raise unsupported("background", "background runs are not offered; use the Batch API")
    truncation = body.get("truncation")
    if truncation not in (None, "disabled"):
        raise unsupported("truncation", "only 'disabled' is supported")
    include = body.get("include")
    if include:
        raise unsupported("include", f"none of {include!r} can be returned")
    tier = body.get("service_tier")
    if tier not in (None, "auto", "default"):
        raise unsupported("service_tier", "only 'auto' and 'default' are served")
    reasoning = body.get("reasoning")
    if reasoning is not None:
        _need(isinstance(reasoning, dict), "reasoning", "'reasoning' must be an object.")
        for key, value in reasoning.items():
            if key == "effort":
                _need(
                    value is None or isinstance(value, str),
                    "reasoning.effort",
                    "'reasoning.effort' must be a string.",
                )
            elif value is not None:
                raise unsupported(f"reasoning.{key}", "reasoning summaries are not returned")


def input_items(value: object) -> list[Body]:
    """The ``input``, as items with ids (a string is one user message)."""
    if isinstance(value, str):
        return [_message_item("user", [{"type": "input_text", "text": value}])]
    _need(
        isinstance(value, list) and bool(value),
        "input",
        "'input' must be a string or a non-empty array of input items.",
    )
    assert isinstance(value, list)
    items = []
    for index, item in enumerate(value):
        where = f"input[{index}]"
        _need(isinstance(item, dict), where, f"'{where}' must be an object.")
        items.append(_input_item(item, where))
    return items


def _message_item(role: str, content: list[Body]) -> Body:
    return {
        "id": new_id("msg"),
        "type": "message",
        "role": role,
        "content": content,
        "status": "completed",
    }


def _input_item(item: Body, where: str) -> Body:
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        _need(
            role in ("user", "assistant", "system", "developer"),
            f"{where}.role",
            f"'{where}.role' must be one of user, assistant, system, developer.",
        )
        content = item.get("content")
        if isinstance(content, str):
            part = "output_text" if role == "assistant" else "input_text"
            parts: list[Body] = [{"type": part, "text": content}]
            if role == "assistant":
                parts[0]["annotations"] = []
        else:
            _need(
                isinstance(content, list),
                f"{where}.content",
                f"'{where}.content' must be a string or an array of content parts.",
            )
            assert isinstance(content, list)
            parts = [_content_part(p, f"{where}.content[{i}]") for i, p in enumerate(content)]
        out = _message_item(str(role), parts)
        if role == "assistant":
            out["id"] = item.get("id") or out["id"]
        return out
    if kind == "function_call":
        for name in ("call_id", "name", "arguments"):
            _need(
                isinstance(item.get(name), str),
                f"{where}.{name}",
                f"'{where}.{name}' must be a string.",
            )
        return {
            "id": item.get("id") or new_id("fc"),
            "type": "function_call",
            "call_id": item["call_id"],
            "name": item["name"],
            "arguments": item["arguments"],
            "status": "completed",
        }
    if kind == "function_call_output":
        _need(
            isinstance(item.get("call_id"), str),
            f"{where}.call_id",
            f"'{where}.call_id' must be a string.",
        )
        output = item.get("output")
        if isinstance(output, list):
            output = "".join(
                str(p.get("text", "")) for p in output if isinstance(p, dict) and "text" in p
            )
        _need(isinstance(output, str), f"{where}.output", f"'{where}.output' must be a string.")
        return {
            "id": item.get("id") or new_id("fco"),
            "type": "function_call_output",
            "call_id": item["call_id"],
            "output": output,
            "status": "completed",
        }
    if kind == "reasoning":
        raise unsupported(f"{where}.type", "reasoning items are not produced or taken")
    if kind == "item_reference":
        raise unsupported(
            f"{where}.type", "item references are not resolved; use previous_response_id"
        )
    raise unsupported(f"{where}.type", f"input items of type {kind!r} ({BUILT_IN})")


def _content_part(part: object, where: str) -> Body:
    _need(isinstance(part, dict), where, f"'{where}' must be an object.")
    assert isinstance(part, dict)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        _need(isinstance(part.get("text"), str), f"{where}.text", f"'{where}.text' is required.")
        out: Body = {"type": "output_text" if kind == "output_text" else "input_text"}
        out["text"] = part["text"]
        if kind == "output_text":
            out["annotations"] = []
        return out
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise unsupported(f"{where}.file_id", "images are taken by image_url only")
        return {"type": "input_image", "image_url": url, "detail": part.get("detail") or "auto"}
    if kind == "refusal":
        return {"type": "refusal", "refusal": str(part.get("refusal", ""))}
    raise unsupported(f"{where}.type", f"content of type {kind!r} is not supported")


def _text_of(parts: list[Body]) -> str | list[Body]:
    """A message's parts as chat content: a string when all text, else chat parts."""
    if all(p["type"] in ("input_text", "output_text", "refusal") for p in parts):
        return "".join(p.get("text") or p.get("refusal") or "" for p in parts)
    out: list[Body] = []
    for part in parts:
        if part["type"] == "input_image":
            out.append(
                {"type": "image_url", "image_url": {"url": part["image_url"]}}
                | (
                    {"image_url": {"url": part["image_url"], "detail": part["detail"]}}
                    if part["detail"] != "auto"
                    else {}
                )
            )
        else:
            out.append({"type": "text", "text": part.get("text") or part.get("refusal") or ""})
    return out


def _chat_messages(item: Body) -> list[Body]:
    kind = item["type"]
    if kind == "message":
        return [{"role": item["role"], "content": _text_of(item["content"])}]
    if kind == "function_call":
        call = {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"]},
        }
        return [{"role": "assistant", "content": None, "tool_calls": [call]}]
    return [{"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]}]


#: Where an input item's text is, by its type.
_FIELD = {"message": "content", "function_call": "arguments", "function_call_output": "output"}


def _merged(messages: list[Body]) -> list[Body]:
    return _merged_with(messages, [""] * len(messages))[0]


def _merged_with(messages: list[Body], origins: list[str]) -> tuple[list[Body], list[str]]:
    """Consecutive assistant turns (a text and the function calls that follow it) as one chat
    message, as chat completions has them (with the origin of the first of each)."""
    out: list[Body] = []
    kept: list[str] = []
    for message, origin in zip(messages, origins, strict=True):
        last = out[-1] if out else None
        if (
            last is not None
            and last["role"] == "assistant"
            and message["role"] == "assistant"
            and message.get("tool_calls")
            and isinstance(last.get("content"), str | None)
        ):
            last["tool_calls"] = [*(last.get("tool_calls") or []), *message["tool_calls"]]
            continue
        out.append(dict(message))
        kept.append(origin)
    return out, kept


_CHAT_PATH = re.compile(r"messages\[(\d+)\](\.content)?")


def request_path(chat_path: str, chat_messages: int, parsed: Parsed, history: int) -> str:
    """A chat request's path (``messages[3].content``) as the Responses request names it:
    ``input[2].output`` for this turn's input, ``previous_response_id`` for the conversation
    it continues, ``instructions``, or ``prompt`` for a registry prompt's messages."""

    def one(match: re.Match[str]) -> str:
        index = int(match.group(1))
        turn = chat_messages - len(parsed.messages)
        if index >= turn:
            return parsed.origins[index - turn]
        instructions = 1 if parsed.body.get("instructions") else 0
        if index >= turn - history:
            return "previous_response_id"
        if instructions and index == turn - history - 1:
            return "instructions"
        return "prompt"

    return _CHAT_PATH.sub(one, chat_path)


def tools(value: object) -> list[Body] | None:
    """The function tools in chat's shape (a built-in tool is a 400)."""
    if value is None:
        return None
    _need(isinstance(value, list), "tools", "'tools' must be an array.")
    assert isinstance(value, list)
    out = []
    for index, tool in enumerate(value):
        where = f"tools[{index}]"
        _need(isinstance(tool, dict), where, f"'{where}' must be an object.")
        kind = tool.get("type")
        if kind != "function":
            raise unsupported(f"{where}.type", f"the tool {kind!r} is one of {BUILT_IN}")
        name = tool.get("name")
        _need(
            isinstance(name, str) and 0 < len(name) <= 64,
            f"{where}.name",
            f"'{where}.name' must be a string of 1 to 64 characters.",
        )
        function: Body = {"name": name}
        for key in ("description", "parameters", "strict"):
            if tool.get(key) is not None:
                function[key] = tool[key]
        out.append({"type": "function", "function": function})
    return out


def tool_choice(value: object) -> str | Body | None:
    if value is None or value in ("auto", "none", "required"):
        return value
    if isinstance(value, dict) and value.get("type") == "function":
        name = value.get("name")
        _need(isinstance(name, str), "tool_choice.name", "'tool_choice.name' is required.")
        return {"type": "function", "function": {"name": name}}
    if isinstance(value, dict) and value.get("type") == "allowed_tools":
        raise unsupported("tool_choice.type", "allowed_tools is not supported")
    raise unsupported("tool_choice", f"{value!r} names a built-in tool ({BUILT_IN})")


def response_format(text: object) -> Body | None:
    """``text.format`` as chat's ``response_format``."""
    if text is None:
        return None
    _need(isinstance(text, dict), "text", "'text' must be an object.")
    assert isinstance(text, dict)
    for key, value in text.items():
        if key == "verbosity":
            if value not in (None, "medium"):
                raise unsupported("text.verbosity", "only 'medium' (the default) is served")
        elif key != "format":
            raise invalid_request(f"Unrecognized argument: 'text.{key}'.", param=f"text.{key}")
    form = text.get("format")
    if form is None:
        return None
    _need(isinstance(form, dict), "text.format", "'text.format' must be an object.")
    kind = form.get("type")
    if kind in ("text", "json_object"):
        return {"type": kind}
    if kind == "json_schema":
        name, schema = form.get("name"), form.get("schema")
        _need(
            isinstance(name, str) and bool(name),
            "text.format.name",
            "'text.format.name' is required.",
        )
        _need(
            isinstance(schema, dict),
            "text.format.schema",
            "'text.format.schema' must be an object.",
        )
        spec: Body = {"name": name, "schema": schema}
        for key in ("strict", "description"):
            if form.get(key) is not None:
                spec[key] = form[key]
        return {"type": "json_schema", "json_schema": spec}
    raise invalid_request(
        "'text.format.type' must be one of text, json_object, json_schema.",
        param="text.format.type",
    )


def chat_request(parsed: Parsed, history: list[Body]) -> Body:
    """The chat-completions request for a Responses request: ``history`` (the conversation up
    to the previous response), the instructions, this turn's input."""
    body = parsed.body
    messages: list[Body] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    messages += [dict(m) for m in history]
    messages += [dict(m) for m in parsed.messages]
    chat: Body = {"model": body["model"], "messages": messages}
    for name in ("temperature", "top_p", "user", "parallel_tool_calls"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    if body.get("safety_identifier") is not None and body.get("user") is None:
        chat["user"] = body["safety_identifier"]
    functions = tools(body.get("tools"))
    if functions:
        chat["tools"] = functions
    choice = tool_choice(body.get("tool_choice"))
    if choice is not None:
        chat["tool_choice"] = choice
    form = response_format(body.get("text"))
    if form is not None and form["type"] != "text":
        chat["response_format"] = form
    effort = (body.get("reasoning") or {}).get("effort")
    if effort is not None:
        chat["reasoning_effort"] = effort
    if parsed.stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


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


def history_of(messages: list[Body], output: list[Body]) -> list[Body]:
    """The conversation after a response: its messages, then its output as chat messages."""
    said: list[Body] = []
    for item in output:
        if item["type"] == "message":
            text = "".join(
                p.get("text") or p.get("refusal") or "" for p in item.get("content") or []
            )
            said.append({"role": "assistant", "content": text})
        elif item["type"] == "function_call":
            said += _chat_messages(item)
    return _merged([*messages, *said])


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
