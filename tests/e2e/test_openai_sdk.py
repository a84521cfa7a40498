"""The official ``openai`` SDK against a real ``stackyard serve`` over the fake upstream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import GatewayProcess
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = pytest.mark.e2e

USER: Any = [{"role": "user", "content": "Hello there"}]
WEATHER: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
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
                    "name": "gpt-4o-mini",
                    "provider": "openai",
                    "model": "gpt-4o-mini-2024-07-18",
                    "api_base": fake_openai.base_url("sdk-primary"),
                    "api_key": "${UPSTREAM_KEY}",
                },
                {
                    "name": "text-embedding-3-small",
                    "provider": "openai",
                    "api_base": fake_openai.base_url("sdk-embed"),
                    "api_key": "sk-upstream",
                },
                {
                    "name": "self-hosted-embed",
                    "provider": "openai-compatible",
                    "api_base": fake_openai.base_url("sdk-compat"),
                },
            ],
            "server": {"max_body_bytes": 100_000},
        },
        env={"UPSTREAM_KEY": "sk-upstream"},
    )
    return gw


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=gateway.base_url,
        api_key="unused",
        max_retries=0,
        _strict_response_validation=True,
    ) as sdk:
        yield sdk


@pytest.fixture
async def async_client(gateway: GatewayProcess) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=gateway.base_url,
        api_key="unused",
        max_retries=0,
        _strict_response_validation=True,
    ) as sdk:
        yield sdk


def test_chat_completion(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=USER,
        temperature=0,
        seed=1,
        user="u-1",
        extra_body={"custom_field": {"kept": True}},
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "[sdk-primary] echo: Hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens > 0
    assert raw.headers["x-stackyard-model-deployment"] == "gpt-4o-mini#0"
    assert raw.headers["x-stackyard-attempts"] == "1"
    assert float(raw.headers["x-stackyard-overhead-ms"]) >= 0
    assert len(raw.headers["x-request-id"]) >= 16
    upstream = fake_openai.requests_for("sdk-primary")[-1]
    assert upstream.body["model"] == "gpt-4o-mini-2024-07-18"
    assert upstream.body["custom_field"] == {"kept": True}
    assert upstream.body["user"] == "u-1"
    assert upstream.headers["authorization"] == "Bearer sk-upstream"


def test_request_id_is_taken_from_the_request(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=USER,
        extra_headers={"x-request-id": "my-trace-123"},
    )
    assert raw.headers["x-request-id"] == "my-trace-123"


async def test_async_client(async_client: openai.AsyncOpenAI) -> None:
    completion = await async_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,
    )
    assert completion.choices[0].message.content == "[sdk-primary] echo: Hello there"
    chunks = [
        c
        async for c in await async_client.chat.completions.create(
            model="gpt-4o-mini",
            messages=USER,
            stream=True,
        )
    ]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "[sdk-primary] echo: Hello there"
    )


def test_stream_keeps_the_invariants(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,
        temperature=0,
    )
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=USER,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert len({c.id for c in chunks}) == 1
    with_role = [i for i, c in enumerate(chunks) if c.choices and c.choices[0].delta.role]
    assert with_role == [0]
    assert sum(1 for c in chunks if c.choices and c.choices[0].finish_reason) == 1
    *body, last = chunks
    assert all(c.usage is None for c in body)
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    text = "".join(c.choices[0].delta.content or "" for c in body)
    assert text == whole.choices[0].message.content


def test_stream_without_usage_hides_the_usage_the_gateway_asked_for(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=USER,
            stream=True,
        )
    )
    upstream = fake_openai.requests_for("sdk-primary")[-1]
    assert upstream.body["stream_options"] == {"include_usage": True}
    assert all(c.usage is None and c.choices for c in chunks)


def test_tool_calls(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=WEATHER,
        tools=[WEATHER_TOOL],
        tool_choice="required",
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    json.loads(call.function.arguments)  # type: ignore[union-attr]

    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=WEATHER,
        tools=[WEATHER_TOOL],
        tool_choice="required",
        stream=True,
    )
    arguments = ""
    names = []
    finish = []
    for chunk in stream:
        for choice_delta in chunk.choices:
            for tool_call in choice_delta.delta.tool_calls or []:
                assert tool_call.index == 0
                if tool_call.function and tool_call.function.name:
                    names.append(tool_call.function.name)
                if tool_call.function and tool_call.function.arguments:
                    arguments += tool_call.function.arguments
            if choice_delta.finish_reason:
                finish.append(choice_delta.finish_reason)
    assert names == ["get_weather"]
    assert json.loads(arguments) == json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert finish == ["tool_calls"]


def test_json_schema_response_format_n_and_limits(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    schema: Any = {
        "type": "json_schema",
        "json_schema": {"name": "echo", "schema": {"type": "object"}, "strict": True},
    }
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,
        response_format=schema,
        n=2,
        stop=["never"],
    )
    assert len(completion.choices) == 2
    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)
    assert fake_openai.requests_for("sdk-primary")[-1].body["response_format"] == schema
    limited = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "one two three four five six"}],
        max_completion_tokens=2,
    )
    assert limited.choices[0].finish_reason == "length"


def test_embeddings_base64_by_default_and_float(client: openai.OpenAI) -> None:
    with openai.OpenAI(base_url=client.base_url, api_key="unused", max_retries=0) as default:
        check_embeddings(client, default)


def check_embeddings(client: openai.OpenAI, default: openai.OpenAI) -> None:
    result = default.embeddings.create(
        model="text-embedding-3-small", input=["one", "two"], dimensions=16
    )
    assert [len(d.embedding) for d in result.data] == [16, 16]
    assert result.usage.prompt_tokens > 0
    floats = client.embeddings.create(
        model="text-embedding-3-small", input="one", encoding_format="float", dimensions=16
    )
    assert floats.data[0].embedding == pytest.approx(result.data[0].embedding, rel=1e-6)
    tokens = default.embeddings.create(model="text-embedding-3-small", input=[[1, 2, 3], [4]])
    assert len(tokens.data) == 2


def test_base64_embeddings_from_an_upstream_asked_for_floats(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    with openai.OpenAI(base_url=client.base_url, api_key="unused", max_retries=0) as default:
        ours = default.embeddings.create(model="self-hosted-embed", input="one", dimensions=16)
        reference = default.embeddings.create(
            model="text-embedding-3-small", input="one", dimensions=16
        )
    assert fake_openai.requests_for("sdk-compat")[-1].body["encoding_format"] == "float"
    assert ours.data[0].embedding == pytest.approx(reference.data[0].embedding, rel=1e-6)


def test_models_list(client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == [
        "gpt-4o-mini",
        "text-embedding-3-small",
        "self-hosted-embed",
    ]
    assert [m.owned_by for m in models.data] == ["openai", "openai", "openai-compatible"]


def test_unknown_model_raises_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-5", messages=USER)
    error: Any = info.value.body
    assert error["code"] == "model_not_found"
    assert "gpt-4o-mini, text-embedding-3-small, self-hosted-embed" in error["message"]


def test_bad_field_raises_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=USER,
            extra_body={"temperature": "warm"},
        )
    error: Any = info.value.body
    assert error["param"] == "temperature"
    assert info.value.request_id  # the SDK reads x-request-id


def test_upstream_client_error_is_passed_through(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    from tests.fakes.openai_upstream import Fault

    fake_openai.enqueue("sdk-primary", Fault.status(400, message="context too long"))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert "context too long" in info.value.message
    assert info.value.response.headers["x-stackyard-attempts"] == "1"


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "could not parse the JSON body"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (b"", 400, "body is empty"),
        (b'{"model": "gpt-4o-mini", "messages": "' + b"x" * 200_000 + b'"}', 413, "limit"),
    ],
)
def test_malformed_and_oversized_bodies(
    gateway: GatewayProcess, body: bytes, status: int, fragment: str
) -> None:
    response = httpx.post(
        f"{gateway.base_url}/chat/completions",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert fragment in error["message"]


def test_a_client_that_sends_its_whole_body_first_gets_the_413(gateway: GatewayProcess) -> None:
    """urllib and requests send the body before they read: the gateway reads and drops the
    rest of it before answering, instead of resetting the connection under them."""
    import urllib.error
    import urllib.request

    for size in (150_000, 3_000_000):  # over the limit (100,000) by a little, and by a lot
        request = urllib.request.Request(
            f"{gateway.base_url}/chat/completions",
            data=b'{"model": "gpt-4o-mini", "messages": "' + b"x" * size + b'"}',
            headers={"content-type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=30)
        assert info.value.code == 413
        assert "limit" in json.loads(info.value.read())["error"]["message"]


def test_unknown_route_and_method(gateway: GatewayProcess) -> None:
    missing = httpx.get(f"{gateway.base_url}/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = httpx.get(f"{gateway.base_url}/chat/completions")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"


def test_health_and_ready(gateway: GatewayProcess) -> None:
    assert httpx.get(f"{gateway.url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{gateway.url}/ready").json() == {"status": "ready", "models": 3}
