"""The guardrails' changes in Anthropic's Messages shape: requests, answers and streams."""

from __future__ import annotations

from typing import Any

from stackyard.guardrails.anthropic_shape import (
    EventTransformer,
    change_message,
    change_request,
    json_strings,
    request_texts,
)
from stackyard.guardrails.secrets import SecretWindow
from stackyard.guardrails.vault import StreamRestorer, Vault

EMAIL = "ada@example.org"


def test_every_text_of_a_request_is_changed_and_the_original_kept() -> None:
    body: dict[str, Any] = {
        "model": "claude",
        "system": [{"type": "text", "text": "sys a"}],
        "messages": [
            {"role": "user", "content": "user a"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "assistant a"},
                    {"type": "tool_use", "id": "t", "name": "f", "input": {"q": ["a", 1]}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t", "content": "result a"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "u",
                        "content": [{"type": "text", "text": "block a"}],
                    },
                    {"type": "image", "source": {"data": "a"}},
                ],
            },
        ],
    }
    changed = change_request(body, lambda text: text.replace("a", "A"))
    assert changed["system"][0]["text"] == "sys A"
    first, second, third = changed["messages"]
    assert first["content"] == "user A"
    assert second["content"][0]["text"] == "AssistAnt A"
    assert second["content"][1]["input"] == {"q": ["A", 1]}  # strings only, keys untouched
    assert third["content"][0]["content"] == "result A"
    assert third["content"][1]["content"][0]["text"] == "block A"
    assert third["content"][2] == {"type": "image", "source": {"data": "a"}}  # not text
    assert body["messages"][0]["content"] == "user a"  # a copy: the original is untouched
    assert change_request({"system": "s a"}, str.upper)["system"] == "S A"


def test_an_answer_is_changed_in_place() -> None:
    answer = {
        "content": [
            {"type": "text", "text": "x"},
            {"type": "tool_use", "id": "t", "name": "f", "input": {"to": "x"}},
        ]
    }
    change_message(answer, lambda text: text + "!")
    assert answer["content"] == [
        {"type": "text", "text": "x!"},
        {"type": "tool_use", "id": "t", "name": "f", "input": {"to": "x!"}},
    ]
    assert json_strings({"a": [{"b": "c"}, None, 2]}, str.upper) == {"a": [{"b": "C"}, None, 2]}


def events(text: str, partial: str, cut: int) -> list[tuple[str, dict[str, Any]]]:
    def delta(index: int, kind: str, field: str, value: str) -> tuple[str, dict[str, Any]]:
        body = {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": kind, field: value},
        }
        return "content_block_delta", body

    return [
        delta(0, "text_delta", "text", text[:cut]),
        delta(0, "text_delta", "text", text[cut:]),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        delta(1, "input_json_delta", "partial_json", partial[:cut]),
        delta(1, "input_json_delta", "partial_json", partial[cut:]),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("message_stop", {"type": "message_stop"}),
    ]


def test_a_stream_is_restored_whatever_the_split_and_released_before_each_stop() -> None:
    vault = Vault()
    vault.redact(EMAIL)
    text, partial = "Write to <EMAIL_1> now <", '{"to": "<EMAIL_1>"}'
    for cut in range(len(partial) + 1):
        transformer = EventTransformer(lambda: StreamRestorer(vault))
        out = [e for event in events(text, partial, cut) for e in transformer.feed(event)]
        texts = "".join(d.get("delta", {}).get("text", "") for _, d in out if d.get("index") == 0)
        inputs = "".join(
            d["delta"].get("partial_json", "")
            for _, d in out
            if d["type"] == "content_block_delta" and d["index"] == 1
        )
        assert texts == f"Write to {EMAIL} now <", cut
        assert inputs == f'{{"to": "{EMAIL}"}}', cut
        kinds = [d["type"] for _, d in out]
        stop = kinds.index("content_block_stop")
        assert kinds[stop - 1] == "content_block_delta"  # what was held comes before the stop
        assert kinds[-1] == "message_stop"


def test_secrets_are_masked_in_a_messages_stream() -> None:
    key = "sk-ant-" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6"
    transformer = EventTransformer(SecretWindow)
    out = [e for event in events(f"the key is {key}.", "{}", 14) for e in transformer.feed(event)]
    text = "".join(d.get("delta", {}).get("text", "") for _, d in out if d.get("index") == 0)
    assert text == "the key is [SECRET]."


def test_the_rails_read_user_texts_and_tool_results_by_where_they_are() -> None:
    body = {
        "system": "You are careful.",
        "messages": [
            {"role": "user", "content": "plain"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "not read"},
                    {"type": "mcp_tool_use", "id": "m", "name": "f", "input": {"q": "not read"}},
                    {
                        "type": "mcp_tool_result",
                        "tool_use_id": "m",
                        "content": [{"type": "text", "text": "an MCP result"}],
                    },
                    {"type": "tool_result", "tool_use_id": "t", "content": "not a user's"},
                ],
            },
            {"role": "system", "content": "not a Messages role"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "a block"},
                    {"type": "tool_result", "tool_use_id": "t", "content": "a result"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "u",
                        "content": [{"type": "text", "text": "a part"}],
                    },
                    {"type": "image", "source": {}},
                ],
            },
        ],
    }
    assert request_texts(body) == [
        ("messages[0].content", "plain"),
        ("messages[1].content[2].content[0].text", "an MCP result"),
        ("messages[3].content[0].text", "a block"),
        ("messages[3].content[1].content", "a result"),
        ("messages[3].content[2].content[0].text", "a part"),
    ]
    assert [where for where, _ in request_texts(body, ("tool",))] == [
        "messages[1].content[2].content[0].text",
        "messages[3].content[1].content",
        "messages[3].content[2].content[0].text",
    ]
    assert [text for _, text in request_texts(body, ("user",))] == ["plain", "a block"]
