"""Streamed tool calls from the generic format: whatever pieces the output is decoded in, the
deltas open each call with its name and then carry its arguments' exact text."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from stackyard.gateway.local_tools import CallStream

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
