"""Tool calls in the generic format: what the grammar lets a model write for each
``tool_choice``, how earlier calls are written back into the prompt, and streamed calls:
whatever pieces the output is decoded in, the deltas open each call with its name and then
carry its arguments' exact text."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from stackyard.engine import grammar
from stackyard.gateway import local_tools
from stackyard.gateway.local_tools import CallStream, cut_calls
from tests.conftest import need_module

ONE = '{"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}'
TRICKY = (
    '[{"name": "say", "arguments": {"text": "a } ] \\" { [", "n": [1, {"x": null}]}}, '
    '{"name": "count", "arguments": {}}, '
    '{"name": "quoted \\"name\\"", "arguments": {"deep": {"a": [[], "]"]}}}]'
)
SCALAR = '{"name": "f", "arguments": 12}'
STRING = '{"name": "f", "arguments": "x}y"}'


def pieces(text: str, seed: int) -> list[str]:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(text)), k=min(len(text) - 1, rng.randint(1, 12))))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


def streamed(chunks: list[str]) -> list[dict[str, Any]]:
    """The calls the deltas add up to, as an SDK accumulates them."""
    reader = CallStream()
    calls: list[dict[str, Any]] = []
    for chunk in chunks:
        for delta in reader.feed(chunk):
            if "id" in delta:
                assert delta["index"] == len(calls)
                assert delta["type"] == "function"
                assert delta["function"]["arguments"] == ""
                calls.append({"id": delta["id"], "name": delta["function"]["name"], "args": []})
            else:
                assert set(delta) == {"index", "function"}
                calls[delta["index"]]["args"].append(delta["function"]["arguments"])
    return calls


@pytest.mark.parametrize("text", [ONE, TRICKY, SCALAR, STRING])
@pytest.mark.parametrize("seed", range(6))
def test_deltas_add_up_to_the_calls_however_the_text_is_cut(text: str, seed: int) -> None:
    expected = json.loads(text)
    expected = expected if isinstance(expected, list) else [expected]
    for chunks in (pieces(text, seed), list(text)):
        calls = streamed(chunks)
        assert [c["name"] for c in calls] == [e["name"] for e in expected]
        assert [json.loads("".join(c["args"])) for c in calls] == [e["arguments"] for e in expected]
        assert all(c["id"].startswith("call_") for c in calls)
        assert len({c["id"] for c in calls}) == len(calls)


def test_arguments_come_as_they_are_decoded() -> None:
    reader = CallStream()
    assert reader.feed('{"name": "get_wea') == []  # the name is not whole yet
    [opening] = reader.feed('ther", "arguments": ')
    assert opening["function"] == {"name": "get_weather", "arguments": ""}
    assert reader.feed('{"ci') == [{"index": 0, "function": {"arguments": '{"ci'}}]
    assert reader.feed('ty": "Paris"}') == [
        {"index": 0, "function": {"arguments": 'ty": "Paris"}'}}
    ]
    assert reader.feed("}") == []  # the call's own closing brace is not an argument
    assert reader.opened == 1


def test_a_call_cut_short_keeps_its_name_and_the_arguments_so_far() -> None:
    made = cut_calls('[{"name": "get_weather", "arguments": {"city": "Par')
    assert [c["function"] for c in made] == [{"name": "get_weather", "arguments": '{"city": "Par'}]
    assert made[0]["id"].startswith("call_")
    assert made[0]["type"] == "function"
    # a second call opened, and one cut before its name was whole
    two = '[{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {'
    assert [c["function"]["arguments"] for c in cut_calls(two)] == ['{"x": 1}', "{"]
    half_named = '[{"name": "a", "arguments": 1}, {"na'
    assert [c["function"]["name"] for c in cut_calls(half_named)] == ["a"]
    assert cut_calls('{"name": "get_w') == []


# -- what the grammar allows -----------------------------------------------------------------

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["C", "F"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
PROSE = "It is sunny in Paris."


class ByteTokenizer:
    """One token a byte, and an end of sequence: any text can be written."""

    eos_token_id = 256
    bos_token_id = None
    special_token_ids = [256]
    tokens = [bytes([b]) for b in range(256)] + [b"<eos>"]

    def __call__(self, text: str | bytes) -> list[int]:
        return list(text if isinstance(text, bytes) else text.encode())


def allows(body: dict[str, Any], text: str) -> bool:
    """Whether the grammar for ``body`` takes ``text`` as a whole output."""
    llguidance = need_module("llguidance")
    need_module("transformers")
    spec = local_tools.plan(body).grammar
    assert spec is not None
    tokenizer = grammar.tokenizer_for(ByteTokenizer(), len(ByteTokenizer.tokens))
    matcher = llguidance.LLMatcher(tokenizer, spec, log_level=0)
    return all(matcher.consume_token(b) for b in text.encode()) and matcher.is_accepting()


def call(city: str, name: str = "get_weather") -> str:
    return json.dumps({"name": name, "arguments": {"city": city, "unit": "C"}})


@pytest.mark.parametrize(
    ("choice", "parallel", "allowed", "refused"),
    [
        ("auto", True, [PROSE, f"[{call('Paris')}]", f"[{call('Paris')}, {call('Rome')}]"],
         [call("Paris"), f" {PROSE}", f"[{call('Paris', 'get_time')}]", "{ not a call"]),
        ("auto", False, [PROSE, call("Paris")],
         [f"[{call('Paris')}]", f"{call('Paris')} and more", f"\n{PROSE}"]),
        (None, False, [PROSE, call("Paris")], [f"[{call('Paris')}]"]),
        ("required", False, [call("Paris")], [PROSE, f"[{call('Paris')}]"]),
        ("required", True, [f"[{call('Paris')}]"], [PROSE, call("Paris"), "[]"]),
        ({"type": "function", "function": {"name": "get_weather"}}, False, [call("Paris")],
         [PROSE]),
    ],
)  # fmt: skip
def test_the_grammar_allows_calls_or_text_as_the_tool_choice_says(
    choice: Any, parallel: bool, allowed: list[str], refused: list[str]
) -> None:
    body = {"tools": [WEATHER], "tool_choice": choice, "parallel_tool_calls": parallel}
    for text in allowed:
        assert allows(body, text), text
    for text in refused:
        assert not allows(body, text), text


def test_none_leaves_the_output_free() -> None:
    assert local_tools.plan({"tools": [WEATHER], "tool_choice": "none"}).grammar is None


def test_earlier_calls_are_written_as_the_grammar_has_calls_written_now() -> None:
    """A model that follows its earlier turns then writes a call the grammar allows (an
    array when parallel calls are allowed, an object when not)."""
    arguments = '{"city": "Rome", "unit": "C"}'
    turn = {
        "role": "assistant",
        "tool_calls": [{"function": {"name": "get_weather", "arguments": arguments}}],
    }
    one = {"name": "get_weather", "arguments": {"city": "Rome", "unit": "C"}}
    assert json.loads(local_tools.history(turn) or "") == [one]
    assert json.loads(local_tools.history(turn, parallel=False) or "") == one
    assert local_tools.history({"role": "assistant", "content": "Hi"}) is None
