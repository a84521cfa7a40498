"""Structured output, tool calls and log probabilities from the embedded SmolLM2, in process,
through the official OpenAI SDK (strict about the responses' shape)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.conftest import GatewayProcess, require_local_models

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 24},
                "unit": {"enum": ["C", "F"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
ASK_WEATHER: Any = [{"role": "user", "content": "What is the weather in Paris?"}]


class Person(BaseModel):
    name: str
    age: int


@pytest.fixture(scope="module")
def gateway(gateway_factory: Any) -> GatewayProcess:
    require_local_models()
    gw: GatewayProcess = gateway_factory(None, ready_timeout=240)
    return gw


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=gateway.base_url, api_key="unused", max_retries=0, _strict_response_validation=True
    ) as sdk:
        yield sdk


def test_parse_with_a_pydantic_model(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(
        model="smollm2",
        messages=[{"role": "user", "content": "Ada is 36. Give her name and age."}],
        response_format=Person,
        max_tokens=60,
    )
    person = completion.choices[0].message.parsed
    assert isinstance(person, Person)


def test_a_json_schema_answer_validates(client: openai.OpenAI) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 24},
            "country": {"type": "string", "maxLength": 24},
            "population": {"type": "integer", "minimum": 0, "maximum": 100_000_000},
        },
        "required": ["city", "country", "population"],
        "additionalProperties": False,
    }
    completion = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Describe Paris."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "city", "schema": schema, "strict": True},
        },
        max_tokens=120,
    )
    assert completion.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(completion.choices[0].message.content or ""), schema)
    plain = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Describe Paris in JSON."}],
        response_format={"type": "json_object"},
        max_tokens=80,
    )
    # Without a schema a 135M model may write keys until max_tokens ("length"): a JSON
    # object cut short, as OpenAI's would be; one that ends is whole.
    content = plain.choices[0].message.content or ""
    assert content.startswith("{")
    if plain.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(content), dict)


def test_a_required_tool_call_validates_streamed_and_not(client: openai.OpenAI) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    parameters = WEATHER["function"]["parameters"]
    completion = client.chat.completions.create(
        model="smollm2",
        messages=ASK_WEATHER,
        tools=[WEATHER],
        tool_choice="required",
        parallel_tool_calls=False,
        max_tokens=60,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), parameters)

    stream = client.chat.completions.create(
        model="smollm2",
        messages=ASK_WEATHER,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=60,
        stream=True,
    )
    chunks = [c for c in stream if c.choices]
    deltas = [t for c in chunks for t in c.choices[0].delta.tool_calls or []]
    assert deltas[0].id
    assert deltas[0].id.startswith("call_")
    assert deltas[0].function
    assert deltas[0].function.name == "get_weather"
    fragments = [d.function.arguments for d in deltas if d.function and d.function.arguments]
    assert len(fragments) > 1  # the arguments stream as they are decoded
    jsonschema.validate(json.loads("".join(fragments)), parameters)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_auto_tool_choice_calls_a_tool_or_answers_in_prose(client: openai.OpenAI) -> None:
    """Under ``auto`` the grammar allows a call or text. SmolLM2 calls when an earlier turn
    of the conversation did (asked cold, it answers in prose), so that prompt makes the call
    branch happen every time (greedy); a question the tool does not fit is answered."""
    jsonschema = pytest.importorskip("jsonschema")
    parameters = WEATHER["function"]["parameters"]
    earlier = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Rome", "unit": "C"}'},
            }
        ],
    }
    asked: Any = [
        {"role": "user", "content": "What is the weather in Rome?"},
        earlier,
        *ASK_WEATHER,
    ]
    for parallel in (True, False):
        completion = client.chat.completions.create(
            model="smollm2",
            messages=asked,
            tools=[WEATHER],
            tool_choice="auto",
            parallel_tool_calls=parallel,
            max_tokens=60,
        )
        choice = completion.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert choice.message.content is None
        [call] = choice.message.tool_calls or []
        assert call.type == "function"
        assert call.function.name == "get_weather"
        jsonschema.validate(json.loads(call.function.arguments), parameters)
    with client.chat.completions.stream(
        model="smollm2", messages=asked, tools=[WEATHER], tool_choice="auto", max_tokens=60
    ) as stream:
        events = list(stream)
        final = stream.get_final_completion()
    assert final.choices[0].finish_reason == "tool_calls"
    [streamed] = final.choices[0].message.tool_calls or []
    jsonschema.validate(json.loads(streamed.function.arguments), parameters)
    pieces = [e for e in events if e.type == "tool_calls.function.arguments.delta"]
    assert len([e for e in pieces if e.arguments_delta]) > 1
    prose = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        tools=[WEATHER],
        tool_choice="auto",
        max_tokens=30,
    )
    assert prose.choices[0].finish_reason == "stop"
    assert prose.choices[0].message.tool_calls is None
    assert "Paris" in (prose.choices[0].message.content or "")


def test_logprobs_are_present_and_at_most_zero(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=12,
        logprobs=True,
        top_logprobs=3,
    )
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.content
    assert completion.usage is not None
    used = completion.usage.completion_tokens
    assert len(logprobs.content) in (used, used - 1)  # the end-of-sequence token has none
    text = "".join(t.token for t in logprobs.content)
    assert text == completion.choices[0].message.content
    for entry in logprobs.content:
        assert entry.logprob <= 0
        assert len(entry.top_logprobs) == 3
        assert entry.top_logprobs[0].logprob >= entry.logprob  # greedy: the likeliest first
    streamed = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=12,
        logprobs=True,
        stream=True,
    )
    tokens = [
        t.token
        for c in streamed
        if c.choices and c.choices[0].logprobs
        for t in c.choices[0].logprobs.content or []
    ]
    assert "".join(tokens) == text


def test_the_completions_door_gives_legacy_logprobs(client: openai.OpenAI) -> None:
    completion = client.completions.create(
        model="smollm2", prompt="What is the capital of France?", max_tokens=12, logprobs=2
    )
    [choice] = completion.choices
    logprobs = choice.logprobs
    assert logprobs is not None
    tokens = logprobs.tokens or []
    assert tokens
    assert "".join(tokens) == choice.text
    assert logprobs.text_offset == [len("".join(tokens[:i])) for i in range(len(tokens))]
    for token, logprob, top in zip(
        tokens, logprobs.token_logprobs or [], logprobs.top_logprobs or [], strict=True
    ):
        assert logprob <= 0
        assert top[token] == pytest.approx(logprob)
        assert 1 <= len(top) <= 3


def test_an_unsupported_parameter_is_a_400_naming_it(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="smollm2",
            messages=ASK_WEATHER,
            max_tokens=5,
            presence_penalty=0.5,
        )
    assert refused.value.body["param"] == "presence_penalty"  # type: ignore[index]


def test_the_messages_door_gets_tool_use_and_structured_output(gateway: GatewayProcess) -> None:
    """The same engine behind Anthropic's Messages API (translated to chat for an in-process
    model): a forced tool is a ``tool_use`` block whose input validates, and
    ``output_config.format`` (what the SDK's ``parse()`` sends) gives JSON of the schema."""
    import anthropic
    import jsonschema

    schema = WEATHER["function"]["parameters"]
    with anthropic.Anthropic(
        base_url=gateway.url, api_key="unused", max_retries=0, _strict_response_validation=True
    ) as an:
        called = an.messages.create(
            model="smollm2",
            max_tokens=60,
            messages=ASK_WEATHER,
            tools=[{"name": "get_weather", "description": "The weather.", "input_schema": schema}],
            tool_choice={"type": "tool", "name": "get_weather"},
        )
        parsed = an.messages.parse(
            model="smollm2",
            max_tokens=60,
            messages=[{"role": "user", "content": "Ada is 36. Give her name and age."}],
            output_format=Person,
        )
    [block] = [b for b in called.content if b.type == "tool_use"]
    assert block.name == "get_weather"
    jsonschema.validate(block.input, schema)
    assert called.stop_reason == "tool_use"
    assert isinstance(parsed.parsed_output, Person)


def test_the_responses_door_gets_a_function_call_and_structured_output(
    client: openai.OpenAI,
) -> None:
    import jsonschema

    function = WEATHER["function"]
    tools: Any = [{"type": "function", "strict": True, **function}]
    called = client.responses.create(
        model="smollm2",
        input="What is the weather in Paris?",
        tools=tools,
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=60,
    )
    [call] = [item for item in called.output if item.type == "function_call"]
    assert call.name == "get_weather"
    jsonschema.validate(json.loads(call.arguments), function["parameters"])
    parsed = client.responses.parse(
        model="smollm2",
        input="Ada is 36. Give her name and age.",
        text_format=Person,
        max_output_tokens=60,
    )
    assert isinstance(parsed.output_parsed, Person)
