"""Structured output and tool calls for in-process models: what grammar a request's output
follows, how tools are put to the model, and how its output becomes OpenAI's ``tool_calls``.

A model whose chat template has no tool format (SmolLM2's has none) gets the generic one that
llama.cpp's and vLLM's generic handlers use: the tools described in a system message, and a
call written as JSON, ``{"name": ..., "arguments": {...}}`` (a JSON array of those when
parallel calls are allowed). The grammar makes the output exactly that: with ``tool_choice``
``required`` or a named function, a call; with ``auto``, either a call or text that does not
start with ``{`` or ``[``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from stackyard.engine import grammar
from stackyard.gateway.local_params import refuse
from stackyard.gateway.translate.common import new_id


@dataclass
class Plan:
    """What a request asks of the output."""

    #: llguidance grammar the output follows (None: free text).
    grammar: str | None = None
    #: Tools offered to the model (None: none); then the output may be calls.
    tools: list[dict[str, Any]] | None = None
    #: Whether the output must be calls (not text).
    required: bool = False
    parallel: bool = True


def _functions(body: dict[str, Any]) -> list[dict[str, Any]]:
    functions = []
    for index, tool in enumerate(body.get("tools") or ()):
        if tool.get("type", "function") != "function":
            raise refuse(f"tools[{index}].type", "local models call functions only")
        functions.append(tool["function"])
    return functions


def _call_schema(function: dict[str, Any]) -> dict[str, Any]:
    parameters = function.get("parameters") or {"type": "object", "properties": {}}
    return {
        "type": "object",
        "properties": {"name": {"const": function["name"]}, "arguments": parameters},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def plan(body: dict[str, Any]) -> Plan:
    """The plan for ``body``; a 400 naming the field for what cannot be done."""
    functions = _functions(body)
    choice = body.get("tool_choice")
    form = body.get("response_format") or {}
    if functions and choice != "none":
        if isinstance(choice, dict):
            name = (choice.get("function") or {}).get("name")
            functions = [f for f in functions if f["name"] == name]
            if not functions:
                raise refuse("tool_choice", f"no tool is named '{name}'")
        elif choice not in (None, "auto", "required"):
            raise refuse("tool_choice", f"'{choice}' is not a tool choice")
        required = choice is not None and choice != "auto"
        parallel = body.get("parallel_tool_calls") is not False
        schemas = [_call_schema(f) for f in functions]
        call: dict[str, Any] = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
        if parallel:
            call = {"type": "array", "items": call, "minItems": 1}
        rules = f"calls: {grammar.json_fragment(call)}\n"
        if required:
            spec = "start: calls\n" + rules
        else:
            spec = "start: calls | TEXT\nTEXT: /[^\\[{\\s][\\s\\S]*/\n" + rules
        return Plan(_compile(grammar.lark, spec, "tools"), functions, required, parallel)
    kind = form.get("type")
    if kind == "json_object":
        return Plan(_compile(grammar.json_schema, {"type": "object"}, "response_format"))
    if kind == "json_schema":
        asked = form.get("json_schema") or {}
        schema = asked.get("schema") or {}
        strict = asked.get("strict") is True
        compiled = _compile(
            lambda s: grammar.json_schema(s, lenient=not strict), schema, "response_format"
        )
        return Plan(compiled)
    return Plan()


def _compile(make: Any, spec: Any, param: str) -> str:
    try:
        compiled: str = make(spec)
    except grammar.GrammarError as exc:
        raise refuse(param, f"its schema cannot be followed ({exc})") from None
    return compiled


def system_prompt(plan: Plan) -> str:
    """The generic tool-calling instructions (for a template without a tool format)."""
    assert plan.tools is not None
    described = "\n".join(json.dumps(f) for f in plan.tools)
    shape = '{"name": <function name>, "arguments": <arguments object>}'
    if plan.parallel:
        shape = f"a JSON array of calls, each {shape}"
    must = "You must call a function." if plan.required else ""
    return (
        f"You can call these functions:\n{described}\n"
        f"To call functions, answer with {shape} and nothing else. {must}"
    ).strip()


def calls(text: str) -> list[dict[str, Any]] | None:
    """OpenAI ``tool_calls`` for a generic-format output; None when it is text."""
    stripped = text.lstrip()
    if not stripped.startswith(("{", "[")):
        return None
    value = json.loads(stripped)
    items = value if isinstance(value, list) else [value]
    return [
        {
            "id": new_id("call_"),
            "type": "function",
            "function": {"name": item["name"], "arguments": json.dumps(item["arguments"])},
        }
        for item in items
    ]


#: The opening of a call in the generic format, up to its arguments' first character (the
#: grammar fixes the keys' order and the whitespace; what comes before is ``[``, ``}`` and
#: ``, `` between calls).
_OPENING = re.compile(r'[^{]*\{"name": ("(?:[^"\\]|\\.)*"), "arguments": ')


class CallStream:
    """Reads a generic-format output of calls as it is decoded, and gives OpenAI's streamed
    tool-call deltas for it: for each call, one with its id, type and name as soon as the name
    is whole, then its arguments' text in pieces as they come."""

    def __init__(self) -> None:
        self.text = ""
        self.read = 0  # how much of the text has been turned into deltas
        self.opened = 0  # calls opened so far
        self.in_arguments = False
        self.depth = 0  # inside the arguments: how many objects and arrays are open
        self.in_string = False
        self.escaped = False

    def feed(self, text: str) -> list[dict[str, Any]]:
        """The deltas (``choices[].delta.tool_calls`` items) for the output's next ``text``."""
        self.text += text
        out: list[dict[str, Any]] = []
        while True:
            if not self.in_arguments:
                opening = _OPENING.match(self.text, self.read)
                if opening is None:
                    return out
                self.read = opening.end()
                self.in_arguments, self.depth = True, 0
                function = {"name": json.loads(opening.group(1)), "arguments": ""}
                call = {"id": new_id("call_"), "type": "function", "function": function}
                out.append({"index": self.opened, **call})
                self.opened += 1
            end = self._arguments_end()
            piece = self.text[self.read : len(self.text) if end is None else end]
            if piece:
                out.append({"index": self.opened - 1, "function": {"arguments": piece}})
            if end is None:
                self.read = len(self.text)
                return out
            self.read, self.in_arguments = end, False

    def _arguments_end(self) -> int | None:
        """Where the arguments being read end (None: not in the text yet). Scans the text
        not read yet once: the scan's state is kept for the next piece."""
        for at in range(self.read, len(self.text)):
            char = self.text[at]
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif char == "\\":
                    self.escaped = True
                elif char == '"':
                    self.in_string = False
                    if self.depth == 0:
                        return at + 1  # arguments that are one string
            elif char == '"':
                self.in_string = True
            elif char in "{[":
                self.depth += 1
            elif char in "}]":
                if self.depth == 0:
                    return at  # the call's own closing brace, after a number or a literal
                self.depth -= 1
                if self.depth == 0:
                    return at + 1
        return None


def cut_calls(text: str) -> list[dict[str, Any]]:
    """The calls of an output cut short (``max_tokens``, a stop string), as a stream would
    have sent them: each one opened so far, its arguments as far as they got. OpenAI answers
    a call cut by ``max_tokens`` the same way, with ``finish_reason: "length"``."""
    made: list[dict[str, Any]] = []
    for delta in CallStream().feed(text):
        if "id" in delta:
            made.append({k: v for k, v in delta.items() if k != "index"})
        else:
            made[delta["index"]]["function"]["arguments"] += delta["function"]["arguments"]
    return made


def history(message: dict[str, Any], parallel: bool = True) -> str | None:
    """An earlier assistant turn's calls, written as the model would have written them: as
    the grammar has it write calls now (an array when ``parallel``), so that a model that
    follows its earlier turns writes a call the grammar allows."""
    made = message.get("tool_calls")
    if not made:
        return None
    items = []
    for call in made:
        function = call.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except json.JSONDecodeError:
            arguments = function.get("arguments")
        items.append({"name": function.get("name"), "arguments": arguments})
    return json.dumps(items if parallel or len(items) > 1 else items[0])
