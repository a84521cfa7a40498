"""The semantic cache through real gateways, with the real embedding model and pair
classifier: a paraphrase is answered from the cache (the fake upstream echoes the question, so
the reply shows whose answer it was); a near miss with another number or a negation is not;
nothing crosses a tenant, model, system prompt, tool set or earlier turn; hot sampling stays
exact; a streamed hit replays the original chunks; two instances share it through Redis."""

from __future__ import annotations

import os
import time
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import GatewayProcess, fresh_redis, need_module, team_key
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MASTER = "sk-master-semantic-0123456789"
HEADERS = {"authorization": f"Bearer {MASTER}"}
REDIS = os.environ.get("STACKYARD_TEST_REDIS_SEMANTIC", "redis://127.0.0.1:6379/9")
ASKED = "How can I improve my English speaking skills?"
PARAPHRASE = "How do I get better at speaking English?"


def config(fake: FakeOpenAI, deployment: str, **cache: Any) -> dict[str, Any]:
    model = {
        "provider": "openai-compatible",
        "api_base": fake.base_url(deployment),
        "input_cost_per_mtok": 1000.0,
        "output_cost_per_mtok": 1000.0,
    }
    return {
        "models": [{"name": "cached", **model}, {"name": "other", **model}],
        "auth": {"master_key": MASTER, "refresh_seconds": 0.2},
        # A generous budget: these tests are about the mechanism (partitions, replay,
        # sharing); how well the classifier decides is measured by `make bench-cache`.
        "cache": {"mode": "semantic", "semantic": {"error_budget": 0.1}, **cache},
    }


@pytest.fixture(scope="module")
def gateway(fake_openai: FakeOpenAI, gateway_factory: Any) -> GatewayProcess:
    need_module("torch")
    gw: GatewayProcess = gateway_factory(config(fake_openai, "semantic-one"), ready_timeout=90)
    return gw


def ask(
    gateway: GatewayProcess,
    content: str,
    *,
    key: str = MASTER,
    system: str | None = None,
    earlier: list[dict[str, Any]] | None = None,
    **body: Any,
) -> httpx.Response:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [*(earlier or []), {"role": "user", "content": content}]
    response = httpx.post(
        f"{gateway.base_url}/chat/completions",
        json={"model": "cached", "temperature": 0, "messages": messages, **body},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response


def answer(response: httpx.Response) -> str:
    content: str = response.json()["choices"][0]["message"]["content"]
    return content


def tier(response: httpx.Response) -> str:
    return response.headers["x-stackyard-cache"]


def test_a_paraphrase_is_answered_from_the_cache(
    gateway: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    first = ask(gateway, ASKED)
    assert tier(first) == "miss"
    before = len(fake_openai.requests_for("semantic-one"))
    with openai.OpenAI(
        base_url=gateway.base_url, api_key=MASTER, max_retries=0, _strict_response_validation=True
    ) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="cached", temperature=0, messages=[{"role": "user", "content": PARAPHRASE}]
        )
    assert raw.headers["x-stackyard-cache"] == "semantic"
    assert raw.headers["x-stackyard-cache-id"].startswith("cache_")
    assert 0.5 < float(raw.headers["x-stackyard-cache-similarity"]) < 1
    assert 0.5 < float(raw.headers["x-stackyard-cache-verifier-score"]) <= 1
    assert float(raw.headers["x-stackyard-cost-usd"]) == 0
    assert raw.parse().choices[0].message.content == answer(first)  # the cached answer
    assert len(fake_openai.requests_for("semantic-one")) == before
    metrics = httpx.get(
        f"{gateway.url}/metrics", headers={"authorization": f"Bearer {MASTER}"}
    ).text
    assert 'stackyard_cache_lookups_total{result="semantic"}' in metrics


@pytest.mark.parametrize(
    ("cached", "near_miss"),
    [
        ("How do I convert 5 miles to kilometres?", "How do I convert 6 miles to kilometres?"),
        ("Should I take ibuprofen with food?", "Should I not take ibuprofen with food?"),
        ("What is the capital of Australia?", "What is the capital of Austria?"),
        ("How do I learn Python quickly?", "How do I learn Java quickly?"),
    ],
)
def test_a_near_miss_is_not_a_hit(gateway: GatewayProcess, cached: str, near_miss: str) -> None:
    ask(gateway, cached)
    assert tier(ask(gateway, cached)) == "exact"
    missed = ask(gateway, near_miss)
    assert tier(missed) == "miss"
    assert answer(missed).endswith(near_miss)


def _key(gateway: GatewayProcess, team: str) -> str:
    return team_key(gateway, team, MASTER)


def test_nothing_crosses_a_partition(gateway: GatewayProcess) -> None:
    red, blue = _key(gateway, "red"), _key(gateway, "blue")
    time.sleep(0.5)  # the key snapshot refreshes every 0.2 s
    question = "How can I make my laptop battery last longer?"
    paraphrase = "How do I make my laptop's battery last longer?"
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    earlier = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    ask(gateway, question, key=red, system="Be brief.", earlier=earlier, tools=[tool])
    same: dict[str, Any] = {"key": red, "system": "Be brief.", "earlier": earlier, "tools": [tool]}
    assert tier(ask(gateway, paraphrase, **same)) == "semantic"
    assert tier(ask(gateway, paraphrase, **{**same, "key": blue})) == "miss"
    assert tier(ask(gateway, paraphrase, **{**same, "key": MASTER})) == "miss"
    assert tier(ask(gateway, paraphrase, **{**same, "system": "Be thorough."})) == "miss"
    assert tier(ask(gateway, paraphrase, **{**same, "earlier": None})) == "miss"
    assert tier(ask(gateway, paraphrase, **{**same, "tools": None})) == "miss"
    assert tier(ask(gateway, paraphrase, **same, response_format={"type": "json_object"})) == (
        "miss"
    )
    other_model = httpx.post(
        f"{gateway.base_url}/chat/completions",
        json={"model": "other", "temperature": 0, "messages": [{"role": "user", "content": ASKED}]},
        headers=HEADERS,
    )
    assert other_model.headers["x-stackyard-cache"] == "miss"


def test_hot_sampling_is_served_from_the_exact_tier_only(gateway: GatewayProcess) -> None:
    hot = "What are good habits for a healthy sleep schedule?"
    ask(gateway, hot, temperature=0.8)
    skipped = ask(gateway, "What habits help a healthy sleep schedule?", temperature=0.8)
    assert tier(skipped) == "miss"
    assert "temperature" in skipped.headers["x-stackyard-cache-semantic-skipped"]
    assert tier(ask(gateway, hot, temperature=0.8)) == "exact"


def sse_lines(response: httpx.Response) -> list[str]:
    return [line for line in response.text.splitlines() if line.startswith("data: ")]


def test_a_streamed_hit_replays_the_original_chunks(gateway: GatewayProcess) -> None:
    body: dict[str, Any] = {"stream": True, "stream_options": {"include_usage": True}}
    first = ask(gateway, "What is the best way to start running as a beginner?", **body)
    second = ask(gateway, "What's the best way to begin running as a beginner?", **body)
    assert (tier(first), tier(second)) == ("miss", "semantic")
    assert sse_lines(second) == sse_lines(first)


def test_mode_off_and_exact_never_use_the_semantic_tier(gateway: GatewayProcess) -> None:
    ask(gateway, "How do I bake sourdough bread at home?")
    paraphrase = "How can I bake sourdough bread at home?"
    assert tier(ask(gateway, paraphrase, cache={"mode": "exact"})) == "miss"
    off = ask(gateway, paraphrase, cache={"mode": "off"})
    assert "x-stackyard-cache" not in off.headers


@pytest.mark.parametrize("backend", ["redis", "pgvector"])
def test_two_instances_share_the_semantic_tier(
    fake_openai: FakeOpenAI, gateway_factory: Any, backend: str, request: pytest.FixtureRequest
) -> None:
    need_module("torch")
    shared = config(fake_openai, f"semantic-{backend}", backend=backend)
    if backend == "redis":
        fresh_redis(REDIS)
        shared["redis_url"] = REDIS
    else:
        shared["cache"]["database_url"] = request.getfixturevalue("pgvector_database")
    first = gateway_factory(shared, ready_timeout=90)
    second = gateway_factory(shared, ready_timeout=90)
    assert tier(ask(first, ASKED)) == "miss"
    deadline = time.monotonic() + 60
    while tier(found := ask(second, PARAPHRASE)) != "semantic":
        assert time.monotonic() < deadline  # stored in the background, within moments
        time.sleep(0.1)
    assert answer(found).endswith(ASKED)


def test_an_unavailable_semantic_tier_is_a_clear_400(
    fake_openai: FakeOpenAI, gateway_factory: Any
) -> None:
    broken = config(fake_openai, "semantic-broken", semantic={"embedding_model": "/no/such/model"})
    broken["cache"]["mode"] = "exact"
    gw = gateway_factory(broken)
    refused = httpx.post(
        f"{gw.base_url}/chat/completions",
        json={
            "model": "cached",
            "messages": [{"role": "user", "content": "x"}],
            "cache": {"mode": "semantic"},
        },
        headers=HEADERS,
    )
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["param"] == "cache.mode"
    assert "/no/such/model" in error["message"]
