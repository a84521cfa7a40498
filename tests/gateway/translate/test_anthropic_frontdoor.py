"""Edge cases of Anthropic -> OpenAI translation (the conformance suite covers the main paths)."""

from typing import Any

import pytest

from stackyard.gateway.providers.base import UpstreamError
from stackyard.gateway.translate.anthropic_frontdoor import EventTranslator, message, request


def test_tool_results_come_before_the_users_text() -> None:
    out = request(
        {
            "model": "m",
            "max_tokens": 10,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": [{"type": "text", "text": "42"}],
                        },
                        {"type": "text", "text": "and now?"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "AA"},
                        },
                    ],
                }
            ],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        }
    )
    assert out["messages"] == [
        {"role": "tool", "tool_call_id": "t1", "content": "42"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "and now?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
            ],
        },
    ]
    assert out["tool_choice"] == "required"
    assert out["parallel_tool_calls"] is False


def test_unsupported_blocks_are_a_clear_client_error() -> None:
    with pytest.raises(UpstreamError) as info:
        request(
            {
                "model": "m",
                "max_tokens": 1,
                "messages": [{"role": "user", "content": [{"type": "document"}]}],
            }
        )
    assert info.value.kind == "client"
    assert "document" in info.value.message


SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}}
ASK = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    "given",
    [
        {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}},
        {"output_format": {"type": "json_schema", "schema": SCHEMA}},  # the beta's name
    ],
)
def test_structured_output_becomes_a_json_schema_response_format(given: dict[str, Any]) -> None:
    out = request({**ASK, **given})
    assert out["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": SCHEMA, "strict": True},
    }


def test_an_output_setting_without_a_chat_equivalent_is_named() -> None:
    with pytest.raises(UpstreamError) as info:
        request({**ASK, "output_config": {"effort": "high"}})
    assert (info.value.status, info.value.param) == (400, "output_config.effort")


def test_message_maps_cached_tokens_and_finish_reasons() -> None:
    reply = message(
        {
            "choices": [{"message": {"content": "hi"}, "finish_reason": "length"}],
            "usage": {
                "prompt_tokens": 10,
                "completion_tokens": 2,
                "prompt_tokens_details": {"cached_tokens": 4},
            },
        },
        model="alias",
    )
    assert reply["stop_reason"] == "max_tokens"
    assert reply["usage"] == {
        "input_tokens": 6,
        "output_tokens": 2,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 4,
    }


def test_an_empty_stream_still_makes_a_whole_message() -> None:
    events = [name for name, _ in EventTranslator(model="m").finish()]
    assert events == ["message_start", "message_delta", "message_stop"]
