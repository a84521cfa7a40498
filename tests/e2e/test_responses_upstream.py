"""A model that OpenAI serves through the Responses API only (``options: {api: responses}``):
every door reaches it through its chat call, sent upstream as ``POST /v1/responses``. The
official ``openai`` SDK (strict about every shape) is the client; the fake upstream speaks the
Responses wire, events and all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.conftest import GatewayProcess, openai_sdk
from tests.fakes.openai_upstream import FakeOpenAI, Fault

pytestmark = pytest.mark.e2e
MASTER = "sk-master-responses-upstream"
TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module")
def gateway(fake_openai: FakeOpenAI, gateway_factory: Any) -> GatewayProcess:
    gw: GatewayProcess = gateway_factory(
        {
            "models": [
                {
                    "name": "o-pro",
                    "provider": "openai",
                    "model": "o1-pro",
                    "api_base": fake_openai.base_url("pro"),
                    "api_key": "sk-upstream",
                    "options": {"api": "responses"},
                }
            ],
            "router": {"retries": 0},
            "auth": {"master_key": MASTER},
        }
    )
    return gw


@pytest.fixture
def oa(gateway: GatewayProcess, fake_openai: FakeOpenAI) -> Iterator[openai.OpenAI]:
    fake_openai.reset()
    with openai_sdk(gateway, MASTER) as client:
        yield client


def _sent(fake: FakeOpenAI) -> dict[str, Any]:
    [sent] = fake.requests_for("pro")
    assert sent.path == "/pro/v1/responses"
    assert sent.headers["authorization"] == "Bearer sk-upstream"
    body: dict[str, Any] = sent.body
    return body


def test_a_chat_completion_goes_upstream_as_a_response(
    oa: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    answer = oa.chat.completions.create(
        model="o-pro",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Where is Paris?"},
        ],
        max_tokens=40,
        temperature=0.5,
    )
    assert answer.choices[0].message.content == "[pro] echo: Where is Paris?"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 5
    body = _sent(fake_openai)
    assert body["model"] == "o1-pro"
    assert body["store"] is False
    assert body["max_output_tokens"] == 40
    assert body["temperature"] == 0.5
    assert body["input"] == [
        {
            "type": "message",
            "role": "system",
            "content": [{"type": "input_text", "text": "Be brief."}],
        },
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Where is Paris?"}],
        },
    ]


def test_a_streamed_chat_completion_from_response_events(
    oa: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    stream = oa.chat.completions.create(
        model="o-pro",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[pro] echo: one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5
    assert _sent(fake_openai)["stream"] is True


def test_a_tool_call_whole_and_streamed(oa: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    messages: Any = [{"role": "user", "content": "Weather in Oslo?"}]
    answer = oa.chat.completions.create(
        model="o-pro", messages=messages, tools=[TOOL], tool_choice="required"
    )
    [call] = answer.choices[0].message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Weather in Oslo?"}
    assert answer.choices[0].finish_reason == "tool_calls"
    body = _sent(fake_openai)
    assert body["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "parameters": TOOL["function"]["parameters"],
        }
    ]
    assert body["tool_choice"] == "required"

    fake_openai.reset()
    with oa.chat.completions.stream(
        model="o-pro", messages=messages, tools=[TOOL], tool_choice="required"
    ) as stream:
        final = stream.get_final_completion()
    [streamed] = final.choices[0].message.tool_calls or []
    assert json.loads(streamed.function.arguments) == {"city": "Weather in Oslo?"}
    assert final.choices[0].finish_reason == "tool_calls"

    # The call and its result go back upstream as function_call and function_call_output.
    fake_openai.reset()
    messages += [
        answer.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    oa.chat.completions.create(model="o-pro", messages=messages, tools=[TOOL])
    items = _sent(fake_openai)["input"]
    assert items[1] == {
        "type": "function_call",
        "call_id": call.id,
        "name": "get_weather",
        "arguments": call.function.arguments,
    }
    assert items[2] == {"type": "function_call_output", "call_id": call.id, "output": "sunny"}


class City(BaseModel):
    city: str
    population: int


def test_structured_output_by_parse(oa: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    parsed = oa.chat.completions.parse(
        model="o-pro",
        messages=[{"role": "user", "content": "The biggest city?"}],
        response_format=City,
    )
    city = parsed.choices[0].message.parsed
    assert city is not None
    assert city.population == 1
    text_format = _sent(fake_openai)["text"]["format"]
    assert text_format["type"] == "json_schema"
    assert text_format["name"] == "City"
    assert text_format["strict"] is True
    assert text_format["schema"]["required"] == ["city", "population"]


def test_the_responses_door_over_a_responses_upstream(
    oa: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    response = oa.responses.create(model="o-pro", instructions="Be brief.", input="hello there")
    assert response.output_text == "[pro] echo: hello there"
    with oa.responses.stream(model="o-pro", input="hello again", store=False) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "[pro] echo: hello again"


def test_max_tokens_is_an_incomplete_answer(oa: openai.OpenAI) -> None:
    answer = oa.chat.completions.create(
        model="o-pro", messages=[{"role": "user", "content": "a b c d e f"}], max_tokens=2
    )
    assert answer.choices[0].finish_reason == "length"
    assert answer.choices[0].message.content == "[pro] echo:"


def test_a_failed_stream_is_an_error_not_a_silent_end(
    oa: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue("pro", Fault.stream_error(after_chunks=5, message="model crashed"))
    stream = oa.chat.completions.create(
        model="o-pro", messages=[{"role": "user", "content": "one two three"}], stream=True
    )
    with pytest.raises(openai.APIError, match="model crashed"):
        for _ in stream:
            pass


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"n": 2}, "n"),
        ({"stop": ["x"]}, "stop"),
        ({"seed": 7}, "seed"),
        ({"logprobs": True}, "logprobs"),
    ],
)
def test_what_the_responses_api_lacks_is_refused_by_name(
    oa: openai.OpenAI, fake_openai: FakeOpenAI, params: dict[str, Any], named: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oa.chat.completions.create(
            model="o-pro", messages=[{"role": "user", "content": "hi"}], **params
        )
    assert caught.value.status_code == 400
    assert named in caught.value.message
    assert not fake_openai.requests_for("pro")
