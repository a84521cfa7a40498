"""Fault injection: what the client sees, and which deployment served it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import GatewayProcess
from tests.fakes.openai_upstream import FakeOpenAI, Fault

pytestmark = pytest.mark.e2e

USER: Any = [{"role": "user", "content": "Hello there"}]


def deployment(fake: FakeOpenAI, name: str, id: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "id": id,
        "provider": "openai-compatible",
        "api_base": fake.base_url(id),
        **extra,
    }


@pytest.fixture(scope="module")
def gateway(fake_openai: FakeOpenAI, gateway_factory: Any) -> GatewayProcess:
    f = fake_openai
    gw: GatewayProcess = gateway_factory(
        {
            "models": [
                deployment(f, "balanced", "f-429a"),
                deployment(f, "balanced", "f-429b"),
                deployment(f, "flaky", "f-500"),
                {
                    "name": "proprietary",
                    "id": "f-prop",
                    "provider": "openai",
                    "api_base": f.base_url("f-prop"),
                    "api_key": "sk-prop",
                },
                deployment(f, "open-source", "f-oss"),
                deployment(f, "resets", "f-reset"),
                deployment(f, "slow", "f-slow", ttft_timeout=0.5),
                deployment(f, "fast", "f-fast"),
                deployment(f, "cut", "f-cut"),
                deployment(f, "midstream", "f-err"),
                deployment(f, "down", "f-down"),
                deployment(f, "sluggish", "f-timeout", timeout=0.3),
                deployment(f, "limited", "f-limited"),
            ],
            "router": {
                "retries": 1,
                "backoff": {"initial": 0.01, "max": 0.05},
                "cooldown": {"allowed_fails": 5, "window": 60, "duration": 30},
                "max_retry_wait": 1,
                "fallbacks": {"proprietary": ["open-source"], "slow": ["fast"]},
            },
        }
    )
    return gw


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=gateway.base_url, api_key="unused", max_retries=0, _strict_response_validation=True
    ) as sdk:
        yield sdk


def chat(client: openai.OpenAI, model: str) -> tuple[str, dict[str, str]]:
    raw = client.chat.completions.with_raw_response.create(model=model, messages=USER)
    return raw.parse().choices[0].message.content or "", dict(raw.headers)


def test_429_with_retry_after_moves_to_another_deployment_and_cools_down(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue("f-429a", Fault.status(429, retry_after=30))
    for _ in range(50):
        _, headers = chat(client, "balanced")
        if fake_openai.requests_for("f-429a"):
            break
    assert headers["x-stackyard-attempts"] == "2"
    assert headers["x-stackyard-model-deployment"] == "f-429b"
    hits = len(fake_openai.requests_for("f-429a"))
    for _ in range(10):
        content, headers = chat(client, "balanced")
        assert content.startswith("[f-429b]")
    assert len(fake_openai.requests_for("f-429a")) == hits  # cooling down for 30 s


def test_500_is_retried_on_the_same_deployment(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue("f-500", Fault.status(500))
    content, headers = chat(client, "flaky")
    assert content == "[f-500] echo: Hello there"
    assert headers["x-stackyard-attempts"] == "2"
    assert headers["x-stackyard-model-deployment"] == "f-500"


def test_503_falls_back_from_proprietary_to_open_source(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue("f-prop", Fault.status(503), Fault.status(503))
    content, headers = chat(client, "proprietary")
    assert content == "[f-oss] echo: Hello there"
    assert headers["x-stackyard-attempts"] == "3"
    assert headers["x-stackyard-model-deployment"] == "f-oss"
    assert fake_openai.requests_for("f-prop")[-1].headers["authorization"] == "Bearer sk-prop"


def test_connection_reset_is_retried(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue("f-reset", Fault.reset())
    content, headers = chat(client, "resets")
    assert content == "[f-reset] echo: Hello there"
    assert headers["x-stackyard-attempts"] == "2"


def test_slow_first_token_falls_back_before_the_first_byte(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue("f-slow", Fault.delay(3), Fault.delay(3))
    raw = client.chat.completions.with_raw_response.create(model="slow", messages=USER, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "[f-fast] echo: Hello there"
    assert raw.headers["x-stackyard-model-deployment"] == "f-fast"
    assert raw.headers["x-stackyard-attempts"] == "3"


def test_stream_failing_before_first_byte_falls_back_transparently(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue("f-prop", Fault.status(500), Fault.reset())
    stream = client.chat.completions.create(model="proprietary", messages=USER, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "[f-oss] echo: Hello there"


def test_stream_cut_in_the_middle_ends_with_an_error_event(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue("f-cut", Fault.cut_stream(after_chunks=2))
    received: list[str] = []

    def read() -> None:
        for chunk in client.chat.completions.create(model="cut", messages=USER, stream=True):
            received.append(chunk.choices[0].delta.content or "")

    with pytest.raises(openai.APIError) as info:
        read()
    assert len(received) == 2
    assert "f-cut" in info.value.message or "closed" in info.value.message


def test_mid_stream_upstream_error_reaches_the_client(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue("f-err", Fault.stream_error(after_chunks=3, message="engine overloaded"))
    with pytest.raises(openai.APIError) as info:
        list(client.chat.completions.create(model="midstream", messages=USER, stream=True))
    assert "engine overloaded" in info.value.message


def test_upstream_down_after_retries_is_502_with_its_message(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue("f-down", Fault.status(500, message="GPU on fire"), Fault.status(500))
    with pytest.raises(openai.InternalServerError) as info:
        chat(client, "down")
    assert info.value.status_code == 502
    body: Any = info.value.body
    assert body["code"] == "upstream_error"
    assert "2 attempt(s) failed for down" in body["message"]
    assert info.value.response.headers["x-stackyard-attempts"] == "2"


def test_upstream_timeout_is_504(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue("f-timeout", Fault.delay(2), Fault.delay(2))
    with pytest.raises(openai.InternalServerError) as info:
        chat(client, "sluggish")
    assert info.value.status_code == 504
    body: Any = info.value.body
    assert body["code"] == "upstream_timeout"


def test_rate_limited_everywhere_is_503_with_retry_after(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue("f-limited", Fault.status(429, retry_after=20))
    with pytest.raises(openai.InternalServerError) as info:
        chat(client, "limited")
    assert info.value.status_code == 503
    assert info.value.response.headers["retry-after"] == "20"
    # Cooling down: refused without calling the upstream again.
    with pytest.raises(openai.InternalServerError) as again:
        chat(client, "limited")
    assert again.value.response.headers["x-stackyard-attempts"] == "0"
    assert len(fake_openai.requests_for("f-limited")) == 1


def test_client_leaving_a_stream_closes_the_upstream_request(
    gateway: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue("f-500", Fault.slow_chunks(0.2))
    before = fake_openai.aborted_streams
    words = " ".join(f"w{i}" for i in range(40))  # 40 chunks at 0.2 s: 8 s if not cancelled
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/chat/completions",
        json={"model": "flaky", "messages": [{"role": "user", "content": words}], "stream": True},
    ) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
    deadline = time.monotonic() + 60
    while fake_openai.aborted_streams == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_openai.aborted_streams == before + 1
