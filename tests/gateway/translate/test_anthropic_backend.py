"""Edge cases of OpenAI -> Anthropic translation (the conformance suite covers the main paths)."""

from typing import Any

import pytest

from stackyard.gateway.providers.base import UpstreamError
from stackyard.gateway.translate.anthropic_backend import StreamTranslator, completion, request


def translate(**body: Any) -> dict[str, Any]:
    return request(
        {"model": "x", "messages": [{"role": "user", "content": "hi"}], **body},
        model="claude",
        default_max_tokens=1024,
    )


def test_consecutive_turns_are_merged_and_system_messages_lifted() -> None:
    out = translate(
        messages=[
            {"role": "system", "content": "A"},
            {"role": "user", "content": "one"},
            {"role": "user", "content": [{"type": "text", "text": "two"}]},
            {"role": "developer", "content": "B"},
            {"role": "assistant", "content": "three"},
        ]
    )
    assert out["system"] == "A\n\nB"
    assert out["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "three"}]},
    ]
    assert out["max_tokens"] == 1024


def test_images_as_data_urls_and_links() -> None:
    out = translate(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                ],
            }
        ]
    )
    assert out["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
    ]


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        ({"type": "function", "function": {"name": "f"}}, None, {"type": "tool", "name": "f"}),
        ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ],
)
def test_tool_choice(choice: Any, parallel: Any, expected: dict[str, Any]) -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    body: dict[str, Any] = {"tools": tools}
    if choice is not None:
        body["tool_choice"] = choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    out = translate(**body)
    assert out["tool_choice"] == expected
    assert out["tools"] == [{"name": "f", "input_schema": {"type": "object", "properties": {}}}]


def test_limits_and_unsupported_options() -> None:
    out = translate(max_completion_tokens=77, max_tokens=5, stop="END", temperature=1.7, seed=None)
    assert (out["max_tokens"], out["stop_sequences"], out["temperature"]) == (77, ["END"], 1.0)
    assert "seed" not in out
    # Never dropped: what Anthropic cannot honour is a 400 naming it (defaults pass).
    assert "logprobs" not in translate(logprobs=False, frequency_penalty=0, logit_bias={})
    for name, value in (
        ("seed", 3),
        ("logprobs", True),
        ("top_logprobs", 2),
        ("frequency_penalty", 0.5),
        ("presence_penalty", -1),
        ("logit_bias", {"50256": -100}),
    ):
        with pytest.raises(UpstreamError) as refused:
            translate(**{name: value})
        assert (refused.value.status, refused.value.param) == (400, name)
    with pytest.raises(UpstreamError) as info:
        translate(n=2)
    assert (info.value.kind, info.value.status, info.value.param) == ("client", 400, "n")
    with pytest.raises(UpstreamError, match="not valid JSON"):
        translate(
            messages=[
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{"}}
                    ],
                }
            ]
        )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("modalities", ["text", "audio"]),
        ("audio", {"voice": "alloy", "format": "wav"}),
        ("prediction", {"type": "content", "content": "def f(): ..."}),
        ("reasoning_effort", "high"),
        ("web_search_options", {}),
        ("service_tier", "flex"),
        ("service_tier", "default"),
        ("functions", [{"name": "f", "parameters": {"type": "object"}}]),
        ("function_call", "auto"),
        ("store", True),
        ("metadata", {"feature": "search"}),
        ("verbosity", "low"),
        ("prompt_cache_key", "user-42"),
        ("prompt_cache_retention", "24h"),
        ("a_field_from_next_year", 1),  # unknown: refused too, never dropped
    ],
)
def test_output_modes_and_tools_claude_lacks_are_400s_naming_them(name: str, value: Any) -> None:
    """Never dropped: each is refused in OpenAI's shape (a client error naming it)."""
    with pytest.raises(UpstreamError) as refused:
        translate(**{name: value})
    assert (refused.value.kind, refused.value.status, refused.value.param) == (
        "client",
        400,
        name,
    )
    assert name in refused.value.message


def test_values_that_ask_nothing_of_claude_pass() -> None:
    out = translate(modalities=["text"], reasoning_effort="none", audio=None, prediction=None)
    assert not {"modalities", "reasoning_effort", "audio", "prediction"} & out.keys()
    for tier in ("auto", "standard_only"):
        assert translate(service_tier=tier)["service_tier"] == tier  # Anthropic's own values
    with pytest.raises(UpstreamError, match="'thinking' instead"):
        translate(reasoning_effort="low")
    quiet = translate(store=False, metadata={}, verbosity="medium", functions=[])
    assert not {"store", "verbosity", "functions"} & quiet.keys()
    assert "metadata" not in quiet


def test_the_end_user_is_metadata_user_id_whichever_field_names_it() -> None:
    assert translate(user="u1")["metadata"] == {"user_id": "u1"}
    assert translate(safety_identifier="u2")["metadata"] == {"user_id": "u2"}
    assert translate(user="u3", safety_identifier="u3")["metadata"] == {"user_id": "u3"}
    with pytest.raises(UpstreamError) as two:
        translate(user="u1", safety_identifier="u2")
    assert two.value.param == "safety_identifier"


def test_a_system_prompt_alone_is_a_400_naming_messages() -> None:
    """Not ``messages: []`` sent upstream, for Anthropic to refuse in its own words."""
    for role in ("system", "developer"):
        with pytest.raises(UpstreamError) as info:
            translate(messages=[{"role": role, "content": "You are terse."}])
        assert (info.value.kind, info.value.status, info.value.param) == (
            "client",
            400,
            "messages",
        )


def test_the_forced_json_tool_is_one_call_and_one_answer() -> None:
    out = translate(response_format={"type": "json_object"})
    assert out["tool_choice"] == {
        "type": "tool",
        "name": "json_output",
        "disable_parallel_tool_use": True,
    }
    # Should a model still give two, the answer is the first, not '{..}{..}'.
    message = {
        "id": "msg_1",
        "content": [
            {"type": "tool_use", "id": "a", "name": "json_output", "input": {"n": 1}},
            {"type": "tool_use", "id": "b", "name": "json_output", "input": {"n": 2}},
        ],
        "stop_reason": "tool_use",
        "usage": {},
    }
    answer = completion(message, json_mode=True)
    assert answer["choices"][0]["message"]["content"] == '{"n":1}'
    assert answer["id"] == "chatcmpl-msg_1"


def test_refusal_and_unknown_stop_reasons() -> None:
    message = {"content": [{"type": "text", "text": "no"}], "stop_reason": "refusal", "usage": {}}
    assert completion(message, json_mode=False)["choices"][0]["finish_reason"] == "content_filter"
    message["stop_reason"] = "something_new"
    assert completion(message, json_mode=False)["choices"][0]["finish_reason"] == "stop"


def test_stream_error_event_is_retryable_by_kind() -> None:
    translator = StreamTranslator(json_mode=False, include_usage=False)
    with pytest.raises(UpstreamError) as info:
        translator.feed(
            "error", {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}
        )
    assert info.value.kind == "rate_limited"
    assert translator.feed("ping", {"type": "ping"}) == []
    thinking = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "thinking_delta", "thinking": "hm"},
    }
    assert translator.feed("content_block_delta", thinking) == []
