"""Anthropic end to end: cross-provider fallback with tools, the Messages door's errors and
token counting, with the official SDKs as clients."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.conformance.cases import TOOLS_Q
from tests.conformance.recordings import (
    AN_TOOL_USES,
    ANTHROPIC_TOOLS,
    OA_TOOL_CALLS,
    OPENAI_TOOLS,
    an_block_start,
    an_message,
    an_start,
    an_text,
    oa_chunk,
    oa_completion,
    oa_stream,
)
from tests.conftest import GatewayProcess
from tests.fakes.replay_upstream import ReplayUpstream, Reply

pytestmark = pytest.mark.e2e

OVERLOADED = Reply(
    status=529,
    json={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
)
OPENAI_DOWN = Reply(
    status=503,
    json={
        "error": {
            "message": "The engine is overloaded",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    },
)


@pytest.fixture(scope="module")
def gateway(replay: ReplayUpstream, gateway_factory: Any) -> GatewayProcess:
    gw: GatewayProcess = gateway_factory(
        {
            "models": [
                {
                    "name": "gpt-4o",
                    "provider": "openai",
                    "api_base": replay.base_url("gpt"),
                    "api_key": "sk-openai",
                },
                {
                    "name": "claude",
                    "provider": "anthropic",
                    "model": "claude-sonnet-4-5",
                    "api_base": replay.base_url("claude"),
                    "api_key": "sk-ant",
                },
            ],
            "router": {
                "retries": 0,
                "fallbacks": {"gpt-4o": ["claude"], "claude": ["gpt-4o"]},
            },
        }
    )
    return gw


@pytest.fixture
def oa(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=gateway.base_url, api_key="unused", max_retries=0, _strict_response_validation=True
    ) as client:
        yield client


@pytest.fixture
def an(gateway: GatewayProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=gateway.url, api_key="unused", max_retries=0, _strict_response_validation=True
    ) as client:
        yield client


def test_openai_primary_falls_back_to_claude_with_tools(
    oa: openai.OpenAI, replay: ReplayUpstream
) -> None:
    replay.script("gpt", OPENAI_DOWN)
    replay.script(
        "claude", an_message(AN_TOOL_USES, "tool_use", {"input_tokens": 40, "output_tokens": 30})
    )
    raw = oa.chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": TOOLS_Q}],
        tools=OPENAI_TOOLS,  # type: ignore[arg-type]
    )
    completion = raw.parse()
    assert raw.headers["x-stackyard-model-deployment"] == "claude#1"
    assert raw.headers["x-stackyard-attempts"] == "2"
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = [
        (c.function.name, json.loads(c.function.arguments))
        for c in choice.message.tool_calls or []
        if c.type == "function"
    ]
    assert calls == [("get_weather", {"city": "Paris"}), ("get_time", {"timezone": "Asia/Tokyo"})]
    [sent] = replay.take("claude")
    assert sent.body["tools"] == ANTHROPIC_TOOLS
    assert replay.take("gpt")[0].body["tools"] == OPENAI_TOOLS


def test_claude_primary_falls_back_to_openai_with_tool_results(
    oa: openai.OpenAI, replay: ReplayUpstream
) -> None:
    replay.script("claude", OVERLOADED)
    replay.script("gpt", oa_completion({"content": "Sunny in Paris, noon in Tokyo."}, "stop"))
    messages: Any = [
        {"role": "user", "content": TOOLS_Q},
        {"role": "assistant", "content": None, "tool_calls": OA_TOOL_CALLS},
        {"role": "tool", "tool_call_id": "call_rec1", "content": "Sunny"},
        {"role": "tool", "tool_call_id": "call_rec2", "content": "12:00"},
    ]
    raw = oa.chat.completions.with_raw_response.create(
        model="claude",
        messages=messages,
        tools=OPENAI_TOOLS,  # type: ignore[arg-type]
    )
    assert raw.parse().choices[0].message.content == "Sunny in Paris, noon in Tokyo."
    assert raw.headers["x-stackyard-model-deployment"] == "gpt-4o#0"
    [tried] = replay.take("claude")
    assert [b["type"] for b in tried.body["messages"][2]["content"]] == [
        "tool_result",
        "tool_result",
    ]
    assert replay.take("gpt")[0].body["messages"] == messages


def test_messages_door_falls_back_from_claude_to_openai_streaming(
    an: anthropic.Anthropic, replay: ReplayUpstream
) -> None:
    replay.script("claude", OVERLOADED)
    replay.script(
        "gpt",
        Reply(
            sse=[
                (
                    None,
                    {
                        "id": "c",
                        "object": "chat.completion.chunk",
                        "created": 1,
                        "model": "m",
                        "choices": [
                            {
                                "index": 0,
                                "delta": {"role": "assistant", "content": ""},
                                "finish_reason": None,
                            }
                        ],
                    },
                ),
                (
                    None,
                    {
                        "id": "c",
                        "object": "chat.completion.chunk",
                        "created": 1,
                        "model": "m",
                        "choices": [
                            {"index": 0, "delta": {"content": "Bonjour"}, "finish_reason": None}
                        ],
                    },
                ),
                (
                    None,
                    {
                        "id": "c",
                        "object": "chat.completion.chunk",
                        "created": 1,
                        "model": "m",
                        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    },
                ),
                (
                    None,
                    {
                        "id": "c",
                        "object": "chat.completion.chunk",
                        "created": 1,
                        "model": "m",
                        "choices": [],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
                    },
                ),
                (None, "[DONE]"),
            ]
        ),
    )
    with an.messages.stream(
        model="claude", max_tokens=32, messages=[{"role": "user", "content": "Say hello in French"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Bonjour"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (3, 1)
    replay.forget("claude")
    replay.forget("gpt")


def test_messages_door_errors_have_anthropic_shape(an: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        an.messages.create(model="nope", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    body: Any = missing.value.body
    assert body["type"] == "error"
    assert body["error"]["type"] == "not_found_error"
    assert "Known models: gpt-4o, claude" in body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as bad:
        an.messages.create(
            model="claude",
            max_tokens=0,
            messages=[{"role": "user", "content": "hi"}],
        )
    body = bad.value.body
    assert body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]


def test_messages_door_passes_claude_requests_through(
    an: anthropic.Anthropic, replay: ReplayUpstream
) -> None:
    replay.script("claude", an_message([{"type": "text", "text": "Hi"}], "end_turn"))
    request: Any = {
        "model": "claude",
        "max_tokens": 16,
        "system": [{"type": "text", "text": "Be brief", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Hello"}],
        "extra_body": {"output_config": {"effort": "low"}},
    }
    message = an.messages.create(**request)
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hi"
    [sent] = replay.take("claude")
    assert sent.body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 16,
        "system": request["system"],
        "messages": request["messages"],
        "output_config": {"effort": "low"},
    }
    assert sent.headers["x-api-key"] == "sk-ant"


def test_count_tokens(an: anthropic.Anthropic, replay: ReplayUpstream) -> None:
    replay.script("claude", Reply(json={"input_tokens": 14}))
    counted = an.messages.count_tokens(model="claude", messages=[{"role": "user", "content": "Hi"}])
    assert counted.input_tokens == 14
    [sent] = replay.take("claude")
    assert sent.path == "/v1/messages/count_tokens"
    with pytest.raises(anthropic.BadRequestError) as info:
        an.messages.count_tokens(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    assert "does not support token counting" in str(info.value)


# The stream invariant: a stream whose upstream ends without its terminal event (Anthropic's
# message_stop, a chat completion's finish reason) ends in the door's error event, which the
# official SDK raises; never a clean end with partial text.
CUT_CLAUDE = Reply(
    sse=[an_start(), an_block_start(0, {"type": "text", "text": ""}), an_text(0, "Bonj")]
)
CUT_CHAT = oa_stream(oa_chunk({"role": "assistant", "content": ""}), oa_chunk({"content": "Bonj"}))


def test_a_claude_stream_cut_before_message_stop_is_an_error_on_the_messages_door(
    an: anthropic.Anthropic, replay: ReplayUpstream
) -> None:
    replay.script("claude", CUT_CLAUDE)
    received: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        an.messages.stream(
            model="claude", max_tokens=32, messages=[{"role": "user", "content": "Hello"}]
        ) as stream,
    ):
        received.extend(stream.text_stream)
    assert received == ["Bonj"]
    assert "ended the stream before its end" in str(info.value)
    replay.forget("claude")


def test_a_claude_stream_cut_before_message_stop_is_an_error_on_chat_completions(
    oa: openai.OpenAI, replay: ReplayUpstream
) -> None:
    replay.script("claude", CUT_CLAUDE)
    with pytest.raises(openai.APIError) as info:
        list(
            oa.chat.completions.create(
                model="claude", messages=[{"role": "user", "content": "Hello"}], stream=True
            )
        )
    assert "message_stop" in info.value.message
    replay.forget("claude")


def test_a_chat_stream_without_a_finish_reason_is_an_error_on_both_doors(
    oa: openai.OpenAI, an: anthropic.Anthropic, replay: ReplayUpstream
) -> None:
    """The upstream sends [DONE], but no chunk ever said why the answer ended."""
    replay.script("gpt", CUT_CHAT, CUT_CHAT)
    with pytest.raises(openai.APIError) as info:
        list(
            oa.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "Hello"}], stream=True
            )
        )
    assert "ended the stream before its end" in info.value.message
    with (
        pytest.raises(anthropic.APIStatusError),
        an.messages.stream(
            model="gpt-4o", max_tokens=32, messages=[{"role": "user", "content": "Hello"}]
        ) as stream,
    ):
        stream.get_final_message()
    replay.forget("gpt")
