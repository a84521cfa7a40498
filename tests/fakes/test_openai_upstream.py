"""The fake OpenAI upstream, checked with the official SDK and with raw HTTP clients."""

from __future__ import annotations

import base64
import itertools
import json
import math
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import aiohttp
import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Fault

HELLO: Any = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hello big world"},
]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}
OTHER_TOOL: Any = {"type": "function", "function": {"name": "other"}}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(fake: FakeOpenAI) -> None:
    fake.reset()


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=fake.base_url("d1"),
        api_key="sk-x",
        _strict_response_validation=True,
        max_retries=0,
    ) as sdk:
        yield sdk


def chat_body(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": HELLO, **extra}


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """A raw synchronous POST; returns the status and the decoded JSON body."""
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


async def sse(response: aiohttp.ClientResponse) -> list[tuple[float, bytes]]:
    """Each SSE event's arrival time and data, read until the stream ends."""
    events = []
    buffer = b""
    async for data in response.content.iter_any():
        buffer += data
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            assert event.startswith(b"data: ")
            events.append((time.monotonic(), event.removeprefix(b"data: ")))
    assert buffer == b""
    return events


# -- chat completions ------------------------------------------------------------------------


def test_chat_completion(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=HELLO, user="u-1"
    )
    for name in (
        "x-request-id",
        "openai-processing-ms",
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
    ):
        assert raw.headers[name]
    completion = raw.parse()
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-test"
    assert completion.system_fingerprint
    assert isinstance(completion.created, int)
    [choice] = completion.choices
    assert choice.index == 0
    assert choice.finish_reason == "stop"
    assert choice.logprobs is None
    assert choice.message.role == "assistant"
    assert choice.message.refusal is None
    assert choice.message.content == "[d1] echo: hello big world"
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == 5  # "be brief" + "hello big world"
    assert usage.completion_tokens == 5
    assert usage.total_tokens == 10
    assert usage.prompt_tokens_details is not None
    assert usage.completion_tokens_details is not None

    [recorded] = fake.requests_for("d1")
    assert fake.requests == [recorded]
    assert recorded.deployment == "d1"
    assert recorded.method == "POST"
    assert recorded.path == "/d1/v1/chat/completions"
    assert recorded.headers["authorization"] == "Bearer sk-x"
    assert recorded.body == {"model": "gpt-test", "messages": HELLO, "user": "u-1"}
    assert recorded.received <= time.monotonic()


def test_deployment_names_the_answer(fake: FakeOpenAI) -> None:
    with openai.OpenAI(base_url=fake.base_url("other-dep"), api_key="k", max_retries=0) as sdk:
        completion = sdk.chat.completions.create(model="m", messages=HELLO)
    assert completion.choices[0].message.content == "[other-dep] echo: hello big world"
    assert fake.requests_for("d1") == []
    assert len(fake.requests_for("other-dep")) == 1


def test_n_stop_and_token_limits(client: openai.OpenAI) -> None:
    many = client.chat.completions.create(model="m", messages=HELLO, n=3)
    assert [c.index for c in many.choices] == [0, 1, 2]
    assert many.usage is not None
    assert many.usage.completion_tokens == 15

    stopped = client.chat.completions.create(model="m", messages=HELLO, stop=["big", "nope"])
    assert stopped.choices[0].message.content == "[d1] echo: hello"
    assert stopped.choices[0].finish_reason == "stop"

    for limited in (
        client.chat.completions.create(model="m", messages=HELLO, max_tokens=2),
        client.chat.completions.create(model="m", messages=HELLO, max_completion_tokens=2),
    ):
        assert limited.choices[0].message.content == "[d1] echo:"
        assert limited.choices[0].finish_reason == "length"
        assert limited.usage is not None
        assert limited.usage.completion_tokens == 2


def test_json_response_formats(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(
        model="m", messages=HELLO, response_format={"type": "json_object"}
    )
    assert json.loads(plain.choices[0].message.content or "") == {
        "echo": "[d1] echo: hello big world"
    }
    schema: Any = {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "schema": {
                "type": "object",
                "properties": {
                    "text": {"type": "string"},
                    "score": {"type": "number"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "mood": {"enum": ["happy", "sad"]},
                },
            },
        },
    }
    shaped = client.chat.completions.create(model="m", messages=HELLO, response_format=schema)
    answer = json.loads(shaped.choices[0].message.content or "")
    assert set(answer) == {"text", "score", "tags", "mood"}
    assert isinstance(answer["score"], float)
    assert answer["mood"] == "happy"


def test_streaming_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="m", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert len({c.id for c in chunks}) == 1
    assert len({c.created for c in chunks}) == 1
    assert all(c.object == "chat.completion.chunk" and c.model == "m" for c in chunks)
    assert all(c.system_fingerprint for c in chunks)
    *body, last = chunks
    assert all(c.usage is None for c in body)
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    roles = [c.choices[0].delta.role for c in body]
    assert roles[0] == "assistant"
    assert body[0].choices[0].delta.content == ""
    assert set(roles[1:]) == {None}
    finishes = [c.choices[0].finish_reason for c in body]
    assert finishes[-1] == "stop"
    assert finishes.count("stop") == 1
    assert body[-1].choices[0].delta.model_dump(exclude_none=True) == {}
    words = [c.choices[0].delta.content for c in body[1:-1]]
    assert "".join(w or "" for w in words) == "[d1] echo: hello big world"
    assert last.usage.completion_tokens == len(words) == 5


async def test_stream_wire_format(fake: FakeOpenAI) -> None:
    url = fake.base_url("d1") + "/chat/completions"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=chat_body(stream=True)) as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["x-request-id"]
        events = await sse(response)
    *chunks, (_, done) = events
    assert done == b"[DONE]"
    decoded = [json.loads(data) for _, data in chunks]
    assert all("usage" not in chunk for chunk in decoded)  # only with include_usage
    assert decoded[0]["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "",
        "refusal": None,
    }
    assert decoded[-1]["choices"][0]["delta"] == {}


async def test_stream_is_sent_incrementally(fake: FakeOpenAI) -> None:
    fake.enqueue("d1", Fault.slow_chunks(0.1))
    url = fake.base_url("d1") + "/chat/completions"
    started = time.monotonic()
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=chat_body(stream=True)) as response,
    ):
        events = await sse(response)
    times = [at - started for at, _ in events]
    assert len(events) == 8  # role, 5 words, finish, [DONE]: 7 gaps of 0.1 s
    assert times[0] < 0.09
    assert times[-1] >= 0.6
    assert all(later - earlier >= 0.05 for earlier, later in itertools.pairwise(times))


def test_tool_calls(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="m", messages=HELLO, tools=[WEATHER_TOOL], tool_choice="required"
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.id.startswith("call_")
    assert call.type == "function"
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert arguments == {"city": "hello big world", "days": 1}

    stream = client.chat.completions.create(
        model="m", messages=HELLO, tools=[WEATHER_TOOL], tool_choice="required", stream=True
    )
    chunks = list(stream)
    deltas = [c.choices[0].delta for c in chunks]
    assert deltas[0].role == "assistant"
    head = (deltas[1].tool_calls or [])[0]
    assert head.index == 0
    assert head.id
    assert head.id.startswith("call_")
    assert head.type == "function"
    assert head.function is not None
    assert head.function.name == "get_weather"
    assert head.function.arguments == ""
    fragments = []
    for delta in deltas[2:-1]:
        [part] = delta.tool_calls or []
        assert part.index == 0
        assert part.id is None
        assert part.function is not None
        assert part.function.name is None
        fragments.append(part.function.arguments or "")
    assert len(fragments) > 1
    assert json.loads("".join(fragments)) == arguments
    assert [c.choices[0].finish_reason for c in chunks] == [None] * (len(chunks) - 1) + [
        "tool_calls"
    ]


def test_when_tools_are_called(client: openai.OpenAI) -> None:
    named = client.chat.completions.create(
        model="m",
        messages=HELLO,
        tools=[WEATHER_TOOL, OTHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "other"}},
    )
    [call] = named.choices[0].message.tool_calls or []
    assert call.function.name == "other"  # type: ignore[union-attr]

    asked: Any = [{"role": "user", "content": "please call a tool"}]
    auto = client.chat.completions.create(model="m", messages=asked, tools=[WEATHER_TOOL])
    assert auto.choices[0].finish_reason == "tool_calls"
    refused = client.chat.completions.create(
        model="m", messages=asked, tools=[WEATHER_TOOL], tool_choice="none"
    )
    assert refused.choices[0].message.tool_calls is None
    plain = client.chat.completions.create(model="m", messages=HELLO, tools=[WEATHER_TOOL])
    assert plain.choices[0].finish_reason == "stop"


# -- embeddings and models -------------------------------------------------------------------


def test_embeddings(fake: FakeOpenAI) -> None:
    with openai.OpenAI(base_url=fake.base_url("emb"), api_key="k", max_retries=0) as sdk:
        default = sdk.embeddings.create(model="e", input=["one", "two words"])  # base64 on wire
        floats = sdk.embeddings.create(model="e", input="one", encoding_format="float")
        sized = sdk.embeddings.create(model="e", input="one", dimensions=40)
        tokens = sdk.embeddings.create(model="e", input=[[1, 2, 3], [4]])
        single_tokens = sdk.embeddings.create(model="e", input=[5, 6])
    assert [r.body["encoding_format"] for r in fake.requests_for("emb")[:2]] == [
        "base64",
        "float",
    ]
    assert default.object == "list"
    assert default.model == "e"
    assert [d.index for d in default.data] == [0, 1]
    assert all(d.object == "embedding" and len(d.embedding) == 8 for d in default.data)
    assert default.data[0].embedding == floats.data[0].embedding  # same input, same vector
    assert default.data[0].embedding != default.data[1].embedding
    assert default.usage.prompt_tokens == default.usage.total_tokens == 3
    assert math.isclose(sum(x * x for x in sized.data[0].embedding), 1.0, rel_tol=1e-5)
    assert len(sized.data[0].embedding) == 40
    assert tokens.usage.prompt_tokens == 4
    assert len(tokens.data) == 2
    assert len(single_tokens.data) == 1


def test_embeddings_base64_wire_format(fake: FakeOpenAI) -> None:
    url = fake.base_url("emb") + "/embeddings"
    status, floats = post(url, json.dumps({"model": "e", "input": "x"}).encode())
    assert status == 200
    body = json.dumps({"model": "e", "input": "x", "encoding_format": "base64"}).encode()
    status, packed = post(url, body)
    assert status == 200
    encoded = packed["data"][0]["embedding"]
    assert isinstance(encoded, str)
    assert list(struct.unpack("<8f", base64.b64decode(encoded))) == floats["data"][0]["embedding"]

    with FakeOpenAI(supports_base64=False) as plain:
        status, ignored = post(plain.base_url("emb") + "/embeddings", body)
    assert status == 200
    assert ignored["data"][0]["embedding"] == floats["data"][0]["embedding"]


def test_models_list(client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == ["gpt-4o-mini", "text-embedding-3-small"]
    assert all(m.object == "model" and m.owned_by and m.created for m in models.data)


# -- errors ----------------------------------------------------------------------------------


def test_request_errors(fake: FakeOpenAI) -> None:
    url = fake.base_url("d1") + "/chat/completions"
    status, body = post(url, b"{not json")
    assert status == 400
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error"
    assert fake.requests_for("d1")[0].body is None

    status, body = post(url, json.dumps({"messages": HELLO}).encode())
    assert (status, body["error"]["param"]) == (400, "model")
    status, body = post(url, json.dumps({"model": "m"}).encode())
    assert (status, body["error"]["param"]) == (400, "messages")
    status, body = post(fake.base_url("d1") + "/embeddings", json.dumps({"model": "m"}).encode())
    assert (status, body["error"]["param"]) == (400, "input")
    status, body = post(fake.base_url("d1") + "/nowhere", b"{}")
    assert status == 404
    assert "Invalid URL" in body["error"]["message"]


def test_require_key(fake: FakeOpenAI) -> None:
    fake.require_key("locked", "sk-right")
    with (
        openai.OpenAI(base_url=fake.base_url("locked"), api_key="sk-wrong") as wrong,
        pytest.raises(openai.AuthenticationError) as info,
    ):
        wrong.models.list()
    error: Any = info.value.body
    assert error == {
        "message": error["message"],
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
    assert error["message"].startswith("Incorrect API key provided")
    with openai.OpenAI(base_url=fake.base_url("locked"), api_key="sk-right") as right:
        assert right.chat.completions.create(model="m", messages=HELLO).choices


# -- faults ----------------------------------------------------------------------------------


def test_status_faults(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.enqueue(
        "d1",
        Fault.status(429, retry_after=1.5),
        Fault.status(500, message="GPU on fire"),
        Fault.status(503),
        Fault.status(418, headers={"x-extra": "yes"}),
    )
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="m", messages=HELLO)
    assert limited.value.response.headers["retry-after"] == "2"
    assert limited.value.response.headers["retry-after-ms"] == "1500"
    assert limited.value.response.headers["x-request-id"]
    error: Any = limited.value.body
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")

    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model="m", messages=HELLO)
    error = failed.value.body
    assert (error["type"], error["message"]) == ("server_error", "GPU on fire")

    with pytest.raises(openai.InternalServerError) as overloaded:
        client.chat.completions.create(model="m", messages=HELLO)
    assert overloaded.value.status_code == 503
    error = overloaded.value.body
    assert error["type"] == "service_unavailable"
    assert "overloaded" in error["message"]

    with pytest.raises(openai.APIStatusError) as teapot:
        client.models.list()
    assert teapot.value.status_code == 418
    assert teapot.value.response.headers["x-extra"] == "yes"

    assert client.chat.completions.create(model="m", messages=HELLO).choices  # queue empty
    assert len(fake.requests_for("d1")) == 5


def test_faults_are_per_deployment_and_cleared_by_reset(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake.enqueue("d2", Fault.status(500))
    assert client.models.list().data  # d1 is unaffected
    fake.reset()
    assert fake.requests == []
    with openai.OpenAI(base_url=fake.base_url("d2"), api_key="k", max_retries=0) as sdk:
        assert sdk.models.list().data


async def test_reset_fault(fake: FakeOpenAI) -> None:
    fake.enqueue("d1", Fault.reset(), Fault.reset())
    url = fake.base_url("d1") + "/chat/completions"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.post(url, json=chat_body()) as response:
                await response.read()
    with pytest.raises(ConnectionError):
        post(url, json.dumps(chat_body()).encode())
    assert len(fake.requests_for("d1")) == 2
    assert post(url, json.dumps(chat_body()).encode())[0] == 200


async def test_delay_fault(fake: FakeOpenAI) -> None:
    fake.enqueue("d1", Fault.delay(0.3), Fault.delay(0.3))
    url = fake.base_url("d1") + "/chat/completions"
    async with aiohttp.ClientSession() as session:
        started = time.monotonic()
        async with session.post(url, json=chat_body()) as response:
            assert response.status == 200
            assert (await response.json())["choices"]
        assert time.monotonic() - started >= 0.3

        started = time.monotonic()
        async with session.post(url, json=chat_body(stream=True)) as response:
            assert time.monotonic() - started >= 0.3  # nothing, not even headers, before
            events = await sse(response)
        assert events[-1][1] == b"[DONE]"


async def test_cut_stream_fault(fake: FakeOpenAI) -> None:
    fake.enqueue("d1", Fault.cut_stream(after_chunks=2))
    url = fake.base_url("d1") + "/chat/completions"
    received: list[bytes] = []

    async def drain(response: aiohttp.ClientResponse) -> None:
        async for data in response.content.iter_any():
            received.append(data)

    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=chat_body(stream=True)) as response,
    ):
        assert response.status == 200
        with pytest.raises(aiohttp.ClientError):
            await drain(response)
    events = [e for e in b"".join(received).split(b"\n\n") if e]
    assert len(events) == 2
    assert b"[DONE]" not in b"".join(received)


def test_cut_stream_fault_with_the_sdk(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.enqueue("d1", Fault.cut_stream(after_chunks=3))
    seen: list[Any] = []
    stream = client.chat.completions.create(model="m", messages=HELLO, stream=True)
    with pytest.raises(openai.APIConnectionError):
        seen.extend(stream)
    assert len(seen) == 3


async def test_stream_error_fault(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.enqueue("d1", Fault.stream_error(after_chunks=3, message="engine overloaded"))
    url = fake.base_url("d1") + "/chat/completions"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=chat_body(stream=True)) as response,
    ):
        events = await sse(response)
    assert len(events) == 4
    error = json.loads(events[-1][1])["error"]
    assert error["message"] == "engine overloaded"
    assert set(error) == {"message", "type", "param", "code"}

    fake.enqueue("d1", Fault.stream_error(after_chunks=1, message="boom"))
    stream = client.chat.completions.create(model="m", messages=HELLO, stream=True)
    with pytest.raises(openai.APIError, match="boom"):
        list(stream)


def test_lifecycle() -> None:
    server = FakeOpenAI()
    server.start()
    port = server.port
    server.start()  # idempotent
    assert server.port == port > 0
    assert server.base_url("dep") == f"http://127.0.0.1:{port}/dep/v1"
    server.stop()
    server.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/dep/v1/models", timeout=1)
