"""The chat-to-Responses translation (a deployment with ``options: {api: responses}``), in the
cases the end-to-end tests do not reach."""

from __future__ import annotations

from typing import Any

import pytest

from stackyard.gateway.providers.base import UpstreamError
from stackyard.gateway.translate import responses_backend as rb


def test_images_reasoning_and_a_named_tool_choice() -> None:
    body: dict[str, Any] = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
                ],
            }
        ],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "reasoning_effort": "high",
        "response_format": {"type": "json_object"},
    }
    out = rb.request(body, model="o3-pro")
    assert out["input"][0]["content"][1] == {
        "type": "input_image",
        "image_url": "https://x/y.png",
        "detail": "low",
    }
    assert out["tools"] == [
        {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}
    ]
    assert out["tool_choice"] == {"type": "function", "name": "f"}
    assert out["reasoning"] == {"effort": "high"}
    assert out["text"] == {"format": {"type": "json_object"}}
    assert out["store"] is False


@pytest.mark.parametrize(
    ("extra", "named"),
    [({"store": True}, "store"), ({"logit_bias": {"1": 2}}, "logit_bias"), ({"guess": 1}, "guess")],
)
def test_a_parameter_without_a_counterpart_is_refused_by_name(
    extra: dict[str, Any], named: str
) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}
    with pytest.raises(UpstreamError) as caught:
        rb.request(body, model="m")
    assert caught.value.kind == "client"
    assert caught.value.param == named


def test_a_stream_cut_short_by_max_tokens_and_a_rate_limit_event() -> None:
    translator = rb.StreamTranslator(include_usage=True, upstream="up")
    [first] = translator.feed({"type": "response.created", "response": {"id": "resp_1"}})
    assert first["id"] == "chatcmpl-resp_1"
    usage = {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}
    incomplete = {
        "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
        "usage": usage,
    }
    finish, last = translator.feed({"type": "response.incomplete", "response": incomplete})
    assert finish["choices"][0]["finish_reason"] == "length"
    assert last["usage"]["total_tokens"] == 5
    assert translator.finished
    with pytest.raises(UpstreamError) as caught:
        rb.StreamTranslator(include_usage=False, upstream="up").feed(
            {"type": "error", "code": "rate_limit_exceeded", "message": "slow down"}
        )
    assert caught.value.kind == "rate_limited"


def test_a_failed_response_is_a_retryable_error() -> None:
    failed = {"status": "failed", "error": {"code": "server_error", "message": "boom"}}
    with pytest.raises(UpstreamError) as caught:
        rb.completion(failed, upstream="up")
    assert caught.value.retryable
