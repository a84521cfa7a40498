"""What each case must mean to the client, whatever the door and back end.

These checks read the client's output as a user would (the text, the tool calls with their
parsed arguments, the finish or stop reason, the usage arithmetic, the stream invariants), so
that a golden file cannot bless a wrong translation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.conformance.cases import RESULT_TEXT, Case

PARIS = {"city": "Paris", "country": "France"}
BOTH_TOOLS = [("get_weather", {"city": "Paris"}), ("get_time", {"timezone": "Asia/Tokyo"})]


@dataclass
class Meaning:
    text: str | dict[str, str]  # per wire format when the upstreams differ
    finish: str  # OpenAI door
    stop: str  # Anthropic door
    tools: list[tuple[str, Any]] = field(default_factory=list)


MEANINGS: dict[str, Meaning] = {
    "text": Meaning("Hi there!", "stop", "end_turn"),
    "system": Meaning("Hi.", "stop", "end_turn"),
    "multi_turn": Meaning("Tokyo.", "stop", "end_turn"),
    "parallel_tools": Meaning(
        {"openai": "", "anthropic": "Checking both."}, "tool_calls", "tool_use", BOTH_TOOLS
    ),
    "tool_results": Meaning(RESULT_TEXT, "stop", "end_turn"),
    "max_tokens": Meaning("1, 2, 3", "length", "max_tokens"),
}


def _openai_result(
    client: dict[str, Any],
) -> tuple[str, list[tuple[str, Any]], str, dict[str, Any]]:
    if "response" in client:
        choice = client["response"]["choices"][0]
        message = choice["message"]
        tools = [
            (c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in message.get("tool_calls") or []
        ]
        return (
            message.get("content") or "",
            tools,
            choice["finish_reason"],
            client["response"]["usage"],
        )
    chunks = client["chunks"]
    assert len({c["id"] for c in chunks}) == 1, "every chunk carries the same id"
    with_role = [
        i for i, c in enumerate(chunks) if c["choices"] and c["choices"][0]["delta"].get("role")
    ]
    assert with_role == [0], "role appears in the first delta only"
    finishes = [
        c["choices"][0]["finish_reason"]
        for c in chunks
        if c["choices"] and c["choices"][0].get("finish_reason")
    ]
    assert len(finishes) == 1, "exactly one chunk carries a finish_reason"
    *body, last = chunks
    assert last["choices"] == [], "the last chunk has no choices"
    assert last["usage"], "the last chunk carries the usage"
    assert all(c.get("usage") is None for c in body), "usage is null on every other chunk"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in body if c["choices"])
    calls: dict[int, dict[str, str]] = {}
    for chunk in body:
        for call in (
            (chunk["choices"][0]["delta"].get("tool_calls") or []) if chunk["choices"] else []
        ):
            entry = calls.setdefault(call["index"], {"name": "", "arguments": ""})
            function = call.get("function") or {}
            if function.get("name"):
                assert not entry["name"], "a tool call's name is sent once"
                entry["name"] = function["name"]
                assert call.get("id"), "the first delta of a tool call carries its id"
            entry["arguments"] += function.get("arguments") or ""
    tools = [(calls[i]["name"], json.loads(calls[i]["arguments"])) for i in sorted(calls)]
    return text, tools, finishes[0], last["usage"]


def _anthropic_result(
    client: dict[str, Any],
) -> tuple[str, list[tuple[str, Any]], str, dict[str, Any]]:
    if "response" in client:
        message = client["response"]
    else:
        events = client["events"]
        kinds = [e["type"] for e in events]
        assert kinds[0] == "message_start"
        assert kinds[-1] == "message_stop"
        assert kinds[-2] == "message_delta"
        open_blocks: set[int] = set()
        for event in events:
            if event["type"] == "content_block_start":
                assert not open_blocks, "one content block at a time"
                open_blocks.add(event["index"])
            elif event["type"] == "content_block_delta":
                assert event["index"] in open_blocks
            elif event["type"] == "content_block_stop":
                open_blocks.remove(event["index"])
        assert not open_blocks
        message = client["final"]
    text = "".join(b["text"] for b in message["content"] if b["type"] == "text")
    tools = [(b["name"], b["input"]) for b in message["content"] if b["type"] == "tool_use"]
    return text, tools, message["stop_reason"], message["usage"]


def check(door: str, fmt: str, case: Case, observed: dict[str, Any]) -> None:
    client = observed["client"]
    base = case.name.removesuffix("_stream")
    if case.name == "error_mid_stream":
        assert client["error"] is not None, "a failure mid-stream reaches the client as an error"
        if door == "openai":
            assert (
                "".join(
                    c["choices"][0]["delta"].get("content") or ""
                    for c in client["chunks"]
                    if c["choices"]
                )
                == "The answer"
            )
        else:
            assert any(e["type"] == "content_block_delta" for e in client["events"])
        return
    assert client.get("error") is None
    if door == "openai":
        text, tools, finish, usage = _openai_result(client)
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    else:
        text, tools, finish, usage = _anthropic_result(client)
        assert usage["input_tokens"] >= 0
        assert usage["output_tokens"] > 0
    if base == "json_schema":
        if door == "openai":
            assert (json.loads(text), tools, finish) == (PARIS, [], "stop")
        else:
            assert (text, tools, finish) == ("", [("record_answer", PARIS)], "tool_use")
        return
    meaning = MEANINGS[base]
    expected_text = meaning.text if isinstance(meaning.text, str) else meaning.text[fmt]
    assert text == expected_text
    assert tools == meaning.tools
    assert finish == (meaning.finish if door == "openai" else meaning.stop)
