"""A request of OpenAI's Responses API in chat-completions terms: checked, and made a chat
request (the conversation a previous response left first, then ``instructions`` as the system
message, then the ``input`` items). The answer's way back (a ``Response``, the stream's events)
is :mod:`stackyard.gateway.translate.responses_answer`. Everything here is pure: the door
(:mod:`stackyard.gateway.doors.responses`) calls it.

What the gateway cannot do (built-in tools, background runs, reasoning summaries, a
truncation strategy, ``include``) is a 400 naming the parameter, never dropped.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

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
    if body.get("user") is not None and body.get("safety_identifier") is not None:
        raise unsupported(
            "safety_identifier",
            "it is sent upstream as the user, and 'user' is set too; send one of them",
        )
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
            image = {"url": part["image_url"]}
            if part["detail"] != "auto":
                image["detail"] = part["detail"]
            out.append({"type": "image_url", "image_url": image})
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
