"""The exact cache through real gateways: a repeat is answered without the upstream, a cached
stream replays the same chunks, tenants never share, ``mode: off`` never touches it, TTL and
eviction, and two instances share the Redis backend."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.conftest import GatewayProcess, fresh_redis, team_key
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = pytest.mark.e2e

MASTER = "sk-master-cache-0123456789"
HEADERS = {"authorization": f"Bearer {MASTER}"}
REDIS = os.environ.get("STACKYARD_TEST_REDIS_CACHE", "redis://127.0.0.1:6379/10")


def config(fake: FakeOpenAI, deployment: str, **cache: Any) -> dict[str, Any]:
    return {
        "models": [
            {
                "name": "cached",
                "provider": "openai-compatible",
                "api_base": fake.base_url(deployment),
                "input_cost_per_mtok": 1000.0,
                "output_cost_per_mtok": 1000.0,
            }
        ],
        "auth": {"master_key": MASTER, "refresh_seconds": 0.2},
        "cache": {"mode": "exact", **cache},
    }


@pytest.fixture(scope="module")
def gateway(fake_openai: FakeOpenAI, gateway_factory: Any) -> GatewayProcess:
    gw: GatewayProcess = gateway_factory(config(fake_openai, "cache-one", ttl=60))
    return gw


def chat(gateway: GatewayProcess, content: str, key: str = MASTER, **body: Any) -> httpx.Response:
    response = httpx.post(
        f"{gateway.base_url}/chat/completions",
        json={"model": "cached", "messages": [{"role": "user", "content": content}], **body},
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    return response


def upstream_calls(fake: FakeOpenAI, deployment: str) -> int:
    return len(fake.requests_for(deployment))


def test_a_repeat_is_answered_from_the_cache_at_no_cost(
    gateway: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    before = upstream_calls(fake_openai, "cache-one")
    first = chat(gateway, "What is the capital of France?")
    assert first.headers["x-stackyard-cache"] == "miss"
    assert float(first.headers["x-stackyard-cost-usd"]) > 0
    second = chat(gateway, "What is the capital of France?")
    assert second.headers["x-stackyard-cache"] == "exact"
    assert second.headers["x-stackyard-cache-id"].startswith("cache_")
    assert float(second.headers["x-stackyard-cost-usd"]) == 0
    assert second.json() == first.json()
    assert upstream_calls(fake_openai, "cache-one") == before + 1
    with openai.OpenAI(
        base_url=gateway.base_url, api_key=MASTER, max_retries=0, _strict_response_validation=True
    ) as client:
        via_sdk = client.chat.completions.create(
            model="cached", messages=[{"role": "user", "content": "What is the capital of France?"}]
        )
    assert via_sdk.choices[0].message.content == first.json()["choices"][0]["message"]["content"]
    assert upstream_calls(fake_openai, "cache-one") == before + 1
    metrics = httpx.get(
        f"{gateway.url}/metrics", headers={"authorization": f"Bearer {MASTER}"}
    ).text
    assert 'stackyard_cache_lookups_total{result="exact"}' in metrics
    assert "stackyard_cache_savings_usd_total" in metrics


def test_the_messages_door_is_cached_too_whole_and_streamed(
    gateway: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    """The same stage on Anthropic's Messages door: a repeat is a hit (whole or streamed, from
    an answer kept whole or streamed), served in the Messages shape, at the price of a hit;
    its entries are its own (the same question on chat completions is a miss)."""
    before = upstream_calls(fake_openai, "cache-one")
    question: Any = [{"role": "user", "content": "Where is the Eiffel Tower?"}]
    with anthropic.Anthropic(
        base_url=gateway.url, api_key=MASTER, max_retries=0, _strict_response_validation=True
    ) as client:
        first = client.messages.with_raw_response.create(
            model="cached", max_tokens=64, messages=question
        )
        second = client.messages.with_raw_response.create(
            model="cached", max_tokens=64, messages=question
        )
        assert (first.headers["x-stackyard-cache"], second.headers["x-stackyard-cache"]) == (
            "miss",
            "exact",
        )
        assert float(second.headers["x-stackyard-cost-usd"]) == 0
        answer = first.parse()
        assert second.parse().content == answer.content
        assert second.parse().stop_reason == answer.stop_reason == "end_turn"
        # A stream of the answer kept whole...
        with client.messages.stream(model="cached", max_tokens=64, messages=question) as stream:
            streamed = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert streamed == answer.content[0].text  # type: ignore[union-attr]
        assert final.stop_reason == "end_turn"
        # ...and the whole answer of a stream kept.
        other: Any = [{"role": "user", "content": "Stream it first, then ask again"}]
        with client.messages.stream(model="cached", max_tokens=64, messages=other) as stream:
            text = "".join(stream.text_stream)
        again = client.messages.with_raw_response.create(
            model="cached", max_tokens=64, messages=other
        )
        assert again.headers["x-stackyard-cache"] == "exact"
        assert again.parse().content[0].text == text  # type: ignore[union-attr]
        with client.messages.stream(model="cached", max_tokens=64, messages=other) as stream:
            assert "".join(stream.text_stream) == text
            assert stream.get_final_message().stop_reason == "end_turn"
    assert upstream_calls(fake_openai, "cache-one") == before + 2
    on_chat = chat(gateway, "Where is the Eiffel Tower?", max_tokens=64)
    assert on_chat.headers["x-stackyard-cache"] == "miss"


def responses_stream(client: openai.OpenAI, question: str) -> tuple[str, str, Any]:
    """A streamed Response: its cache header, its text, and its last event."""
    raw = client.responses.with_raw_response.create(
        model="cached", input=question, max_output_tokens=64, stream=True
    )
    events = list(raw.parse())
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    return raw.headers["x-stackyard-cache"], text, events[-1]


def test_the_responses_door_is_cached_too_whole_and_streamed(
    gateway: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    """The same stage on OpenAI's Responses door: a repeat is a hit (whole or streamed, from
    an answer kept whole or streamed), served as a new Response at the price of a hit."""
    before = upstream_calls(fake_openai, "cache-one")
    question = "Where is the Louvre?"
    with openai.OpenAI(
        base_url=gateway.base_url, api_key=MASTER, max_retries=0, _strict_response_validation=True
    ) as client:
        first = client.responses.with_raw_response.create(
            model="cached", input=question, max_output_tokens=64
        )
        second = client.responses.with_raw_response.create(
            model="cached", input=question, max_output_tokens=64
        )
        assert (first.headers["x-stackyard-cache"], second.headers["x-stackyard-cache"]) == (
            "miss",
            "exact",
        )
        assert float(first.headers["x-stackyard-cost-usd"]) > 0
        assert float(second.headers["x-stackyard-cost-usd"]) == 0
        answer, again = first.parse(), second.parse()
        assert answer.output_text == f"[cache-one] echo: {question}"
        assert again.output_text == answer.output_text
        assert again.status == answer.status == "completed"
        assert again.id != answer.id  # a new Response, not the first one again
        # A stream of the answer kept whole...
        hit, streamed, last = responses_stream(client, question)
        assert (hit, streamed) == ("exact", answer.output_text)
        assert last.type == "response.completed"
        assert last.response.output_text == answer.output_text
        # ...and the whole answer of a stream kept.
        other = "Stream it first, then ask again on the Responses door"
        missed, text, last = responses_stream(client, other)
        assert (missed, last.type) == ("miss", "response.completed")
        whole = client.responses.with_raw_response.create(
            model="cached", input=other, max_output_tokens=64
        )
        assert whole.headers["x-stackyard-cache"] == "exact"
        assert whole.parse().output_text == text == f"[cache-one] echo: {other}"
        hit, replayed, last = responses_stream(client, other)
        assert (hit, replayed, last.type) == ("exact", text, "response.completed")
    assert upstream_calls(fake_openai, "cache-one") == before + 2


def sse_lines(response: httpx.Response) -> list[str]:
    return [line for line in response.text.splitlines() if line.startswith("data: ")]


def test_the_completions_door_is_cached_too(
    gateway: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    """The same stage behind the legacy completions door: a repeat is a hit, at no cost."""
    before = upstream_calls(fake_openai, "cache-one")
    prompt = "The legacy door asks: where is the Prado?"
    with openai.OpenAI(
        base_url=gateway.base_url, api_key=MASTER, max_retries=0, _strict_response_validation=True
    ) as client:
        first, second = (
            client.completions.with_raw_response.create(model="cached", prompt=prompt)
            for _ in range(2)
        )
        assert (first.headers["x-stackyard-cache"], second.headers["x-stackyard-cache"]) == (
            "miss",
            "exact",
        )
        assert float(second.headers["x-stackyard-cost-usd"]) == 0
        assert second.parse().choices[0].text == first.parse().choices[0].text
        assert first.parse().choices[0].text == f"[cache-one] echo: {prompt}"
    assert upstream_calls(fake_openai, "cache-one") == before + 1


def test_a_cached_stream_replays_the_same_chunks(
    gateway: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    body: dict[str, Any] = {"stream": True, "stream_options": {"include_usage": True}}
    first = chat(gateway, "Stream this answer, please", **body)
    second = chat(gateway, "Stream this answer, please", **body)
    assert (first.headers["x-stackyard-cache"], second.headers["x-stackyard-cache"]) == (
        "miss",
        "exact",
    )
    assert sse_lines(second) == sse_lines(first)
    assert sse_lines(second)[-1] == "data: [DONE]"
    # Without include_usage, the replay hides the usage chunk, as a live stream would.
    plain = chat(gateway, "Stream this answer, please", stream=True)
    assert plain.headers["x-stackyard-cache"] == "exact"
    assert all('"usage"' not in line for line in sse_lines(plain))
    # A whole answer cached from a stream, and a stream from a whole answer.
    whole = chat(gateway, "Stream this answer, please")
    assert whole.headers["x-stackyard-cache"] == "exact"
    text = "".join(
        part
        for line in sse_lines(first)[:-1]
        for choice in httpx.Response(200, content=line[6:]).json().get("choices", [])
        for part in [choice["delta"].get("content") or ""]
    )
    assert whole.json()["choices"][0]["message"]["content"] == text
    chat(gateway, "Answer whole, then stream")
    with openai.OpenAI(
        base_url=gateway.base_url, api_key=MASTER, max_retries=0, _strict_response_validation=True
    ) as client:
        streamed = client.chat.completions.create(
            model="cached",
            messages=[{"role": "user", "content": "Answer whole, then stream"}],
            stream=True,
        )
        replayed = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert replayed.endswith("Answer whole, then stream")


def _key(gateway: GatewayProcess, team: str) -> str:
    return team_key(gateway, team, MASTER)


def test_tenants_never_share_entries(gateway: GatewayProcess) -> None:
    red, blue = _key(gateway, "red"), _key(gateway, "blue")
    red_too = _key(gateway, "red")
    time.sleep(0.5)  # the key snapshot refreshes every 0.2 s
    assert chat(gateway, "A team secret?", red).headers["x-stackyard-cache"] == "miss"
    assert chat(gateway, "A team secret?", blue).headers["x-stackyard-cache"] == "miss"
    assert chat(gateway, "A team secret?", red_too).headers["x-stackyard-cache"] == "exact"


def test_what_differs_misses(gateway: GatewayProcess) -> None:
    chat(gateway, "Same question")
    assert chat(gateway, "Same question", temperature=0.9).headers["x-stackyard-cache"] == "miss"
    other_system = httpx.post(
        f"{gateway.base_url}/chat/completions",
        json={
            "model": "cached",
            "messages": [
                {"role": "system", "content": "Answer in French."},
                {"role": "user", "content": "Same question"},
            ],
        },
        headers=HEADERS,
    )
    assert other_system.headers["x-stackyard-cache"] == "miss"


def test_mode_off_never_touches_the_cache(gateway: GatewayProcess, fake_openai: FakeOpenAI) -> None:
    chat(gateway, "Not cached, please")
    before = upstream_calls(fake_openai, "cache-one")
    off = chat(gateway, "Not cached, please", cache={"mode": "off"})
    assert "x-stackyard-cache" not in off.headers
    header_off = httpx.post(
        f"{gateway.base_url}/chat/completions",
        json={"model": "cached", "messages": [{"role": "user", "content": "Not cached, please"}]},
        headers={**HEADERS, "x-stackyard-cache-mode": "off"},
    )
    assert "x-stackyard-cache" not in header_off.headers
    assert upstream_calls(fake_openai, "cache-one") == before + 2
    # The 'cache' field never reaches the upstream.
    assert all("cache" not in r.body for r in fake_openai.requests_for("cache-one"))
    bad = httpx.post(
        f"{gateway.base_url}/chat/completions",
        json={
            "model": "cached",
            "messages": [{"role": "user", "content": "x"}],
            "cache": {"mode": "sometimes"},
        },
        headers=HEADERS,
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "cache.mode"


def test_ttl_namespaces_and_eviction(gateway: GatewayProcess) -> None:
    assert chat(gateway, "Short-lived", cache={"ttl": 1}).headers["x-stackyard-cache"] == "miss"
    time.sleep(1.2)
    assert chat(gateway, "Short-lived").headers["x-stackyard-cache"] == "miss"  # expired
    hit = chat(gateway, "Short-lived")
    assert hit.headers["x-stackyard-cache"] == "exact"
    evicted = httpx.delete(
        f"{gateway.url}/api/cache/entries/{hit.headers['x-stackyard-cache-id']}", headers=HEADERS
    )
    assert evicted.status_code == 200, evicted.text
    assert chat(gateway, "Short-lived").headers["x-stackyard-cache"] == "miss"
    chat(gateway, "In a namespace", cache={"namespace": "faq"})
    assert chat(gateway, "In a namespace").headers["x-stackyard-cache"] == "miss"  # other ns
    gone = httpx.delete(f"{gateway.url}/api/cache/namespaces/faq", headers=HEADERS)
    assert gone.json()["deleted"] == 1
    again = chat(gateway, "In a namespace", cache={"namespace": "faq"})
    assert again.headers["x-stackyard-cache"] == "miss"
    assert httpx.delete(f"{gateway.url}/api/cache/namespaces/faq").status_code == 401


def test_two_instances_share_the_redis_backend(
    fake_openai: FakeOpenAI, gateway_factory: Any
) -> None:
    fresh_redis(REDIS)
    shared = config(fake_openai, "cache-shared", backend="redis")
    shared["redis_url"] = REDIS
    first, second = gateway_factory(shared), gateway_factory(shared)
    assert chat(first, "Shared answer").headers["x-stackyard-cache"] == "miss"
    deadline = time.monotonic() + 60
    while chat(second, "Shared answer").headers["x-stackyard-cache"] != "exact":
        assert time.monotonic() < deadline  # stored in the background, within moments
        time.sleep(0.05)
    assert upstream_calls(fake_openai, "cache-shared") == 1


def test_the_trace_of_a_hit_shows_the_lookup(gateway: GatewayProcess) -> None:
    chat(gateway, "Traced question")
    hit = chat(gateway, "Traced question")
    assert hit.headers["x-stackyard-cache"] == "exact"
    deadline = time.monotonic() + 60
    while True:
        found = httpx.get(
            f"{gateway.url}/api/traces/{hit.headers['x-request-id']}", headers=HEADERS
        )
        if found.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    trace = found.json()
    [record] = trace["requests"]
    assert record["cache_hit"] is True
    assert record["cost_usd"] == 0
    spans = {s["name"]: s for s in trace["spans"]["data"]}
    assert spans["cache.lookup"]["attributes"]["stackyard.cache.hit"] is True
    assert spans["chat cached"]["attributes"]["stackyard.cache.hit"] is True
    assert not any("stackyard.attempt" in s["attributes"] for s in spans.values())


def test_what_the_cache_saved_shows_in_the_stats_and_the_cli(
    fake_openai: FakeOpenAI, gateway_factory: Any
) -> None:
    """A hit's saving (the first answer's cost, less the hit's price of 0) is on its trace, in
    ``/api/stats`` by tier, and in ``stackyard cache stats``."""
    gateway: GatewayProcess = gateway_factory(config(fake_openai, "cache-savings"))
    first = chat(gateway, "How much does shipping to Oslo cost?")
    cost = float(first.headers["x-stackyard-cost-usd"])
    assert cost > 0
    hit = chat(gateway, "How much does shipping to Oslo cost?")
    assert float(hit.headers["x-stackyard-cache-saved-usd"]) == pytest.approx(cost)
    stats = f"{gateway.url}/api/stats"
    deadline = time.monotonic() + 60
    while True:  # the traces are written in the background
        rows = httpx.get(stats, params={"group_by": "model"}, headers=HEADERS).json()["data"]
        if (rows and rows[0]["requests"] == 2) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    [row] = rows
    assert (row["requests"], row["cache_hits"], row["exact_hits"], row["semantic_hits"]) == (
        2,
        1,
        1,
        0,
    )
    assert row["saved_usd"] == pytest.approx(cost)
    assert row["exact_saved_usd"] == pytest.approx(cost)
    assert row["semantic_saved_usd"] == 0
    assert row["saved_tokens"] == first.json()["usage"]["total_tokens"]
    shown = subprocess.run(
        [sys.executable, "-m", "stackyard", "cache", "stats", "--config", str(gateway.config_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "cached" in shown
    assert f"1 of 2 requests from the cache (50.0%), {row['saved_tokens']} tokens" in shown
    assert f"${cost:.6f} saved" in shown
