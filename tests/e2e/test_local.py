"""Real models, real tokens: the embedded default (SmolLM2-135M-Instruct and all-MiniLM-L6-v2,
in process) through the official OpenAI SDK."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import GatewayProcess, require_local_models

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

QUESTIONS = [
    "What is the capital of France?",
    "Name a primary colour.",
    "What is 2 + 2?",
    "Say hello.",
    "What is the largest planet?",
    "Name a fruit.",
    "What do bees make?",
    "What is ice?",
]


@pytest.fixture(scope="module")
def gateway(gateway_factory: Any) -> GatewayProcess:
    require_local_models()
    gw: GatewayProcess = gateway_factory(None, ready_timeout=240)  # no config: the default
    return gw


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=gateway.base_url, api_key="unused", max_retries=0, _strict_response_validation=True
    ) as sdk:
        yield sdk


def ask(client: openai.OpenAI, question: str, **extra: Any) -> Any:
    return client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": question}],
        temperature=0,
        max_tokens=40,
        **extra,
    )


def test_the_embedded_default_lists_its_models(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list().data] == ["smollm2", "all-minilm-l6-v2"]


def test_a_real_answer(client: openai.OpenAI) -> None:
    completion = ask(client, "What is the capital of France?")
    assert "Paris" in (completion.choices[0].message.content or "")
    usage = completion.usage
    assert usage is not None
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.completion_tokens > 2


def test_greedy_stream_equals_the_whole_answer(client: openai.OpenAI) -> None:
    whole = ask(client, "Describe the sea in two sentences.")
    chunks = list(
        ask(
            client,
            "Describe the sea in two sentences.",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) > 3
    assert "".join(pieces) == whole.choices[0].message.content
    assert chunks[-1].usage is not None
    assert whole.usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_paraphrases_are_closer_than_unrelated_sentences(client: openai.OpenAI) -> None:
    with openai.OpenAI(base_url=client.base_url, api_key="unused", max_retries=0) as default:
        result = default.embeddings.create(
            model="all-minilm-l6-v2",
            input=[
                "How do I reset my password?",
                "What are the steps to change my password?",
                "The cat sat on the warm windowsill.",
            ],
        )
    a, b, c = (d.embedding for d in result.data)
    assert len(a) == 384

    def cosine(x: list[float], y: list[float]) -> float:
        dot = sum(p * q for p, q in zip(x, y, strict=True))
        return dot / (math.sqrt(sum(p * p for p in x)) * math.sqrt(sum(q * q for q in y)))

    assert cosine(a, b) > cosine(a, c) + 0.3
    assert result.usage.prompt_tokens > 10


def test_concurrent_requests_are_batched_without_changing_answers(
    client: openai.OpenAI, gateway: GatewayProcess
) -> None:
    alone = [ask(client, q).choices[0].message.content for q in QUESTIONS[:3]]

    async def together() -> list[Any]:
        async with openai.AsyncOpenAI(
            base_url=gateway.base_url, api_key="unused", max_retries=0
        ) as sdk:
            return await asyncio.gather(
                *(
                    sdk.chat.completions.create(
                        model="smollm2",
                        messages=[{"role": "user", "content": q}],
                        temperature=0,
                        max_tokens=40,
                    )
                    for q in QUESTIONS
                )
            )

    results = asyncio.run(together())
    assert [r.choices[0].message.content for r in results[:3]] == alone
    for result in results:
        usage = result.usage
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        finish = result.choices[0].finish_reason
        assert (usage.completion_tokens == 40) == (finish == "length")


def test_a_full_engine_answers_429_with_retry_after(gateway_factory: Any) -> None:
    require_local_models()
    tight: GatewayProcess = gateway_factory(
        {
            "models": [
                {
                    "name": "tight",
                    "provider": "local",
                    "model": "smollm2",
                    "options": {"max_batch": 1, "max_queue": 1},
                }
            ],
            "router": {"retries": 0},
        },
        ready_timeout=240,
    )

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=tight.base_url, timeout=120) as http:
            body = {
                "model": "tight",
                "messages": [{"role": "user", "content": "Count to twenty."}],
                "max_tokens": 30,
            }
            return await asyncio.gather(
                *(http.post("/chat/completions", json=body) for _ in range(5))
            )

    for _ in range(2):  # a full queue does not cool the deployment down: it stays available
        responses = asyncio.run(burst())
        assert 200 in [r.status_code for r in responses]
        refused = [r for r in responses if r.status_code == 429]
        assert refused
        assert {r.headers["retry-after"] for r in refused} == {"1"}
        assert refused[0].json()["error"]["code"] == "engine_overloaded"
