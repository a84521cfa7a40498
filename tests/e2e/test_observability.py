"""Traces, request logs, metrics, OTLP export and scores through a real gateway, on SQLite and on
PostgreSQL, with the official SDK as the client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import openai
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from sqlalchemy import create_engine, text

from stackyard.store.db import normalise_url
from tests.conftest import GatewayProcess, eventually, openai_sdk, postgres_database, team_key
from tests.e2e import doors
from tests.fakes.openai_upstream import FakeOpenAI, Fault
from tests.fakes.otlp_receiver import OTLPReceiver
from tests.fakes.otlp_receiver import attributes as otlp_attributes

pytestmark = pytest.mark.e2e

MASTER = "sk-master-observability-0123"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None: the default SQLite file next to the config; else a PostgreSQL URL."""
    if request.param == "sqlite":
        yield None
        return
    yield from postgres_database()


@pytest.fixture(scope="module")
def otlp() -> Iterator[OTLPReceiver]:
    receiver = OTLPReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


def _models(fake: FakeOpenAI, prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "name": "primary",
            "provider": "openai-compatible",
            "model": "fake-large",
            "api_base": fake.base_url(f"{prefix}-primary"),
            "input_cost_per_mtok": 1.0,
            "output_cost_per_mtok": 2.0,
        },
        {
            "name": "backup",
            "provider": "openai-compatible",
            "api_base": fake.base_url(f"{prefix}-backup"),
        },
        {
            "name": "vectors",
            "provider": "openai-compatible",
            "api_base": fake.base_url(f"{prefix}-vectors"),
        },
    ]


def _config(
    fake: FakeOpenAI, database: str | None, prefix: str, **observability: Any
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "models": _models(fake, prefix),
        "router": {"retries": 0, "fallbacks": {"primary": ["backup"]}},
        "auth": {"master_key": MASTER, "refresh_seconds": 0.2},
        "observability": observability,
    }
    if database is not None:
        config["database_url"] = database
    return config


@pytest.fixture(scope="module")
def gateway(
    database: str | None, fake_openai: FakeOpenAI, otlp: OTLPReceiver, gateway_factory: Any
) -> Iterator[GatewayProcess]:
    gw: GatewayProcess = gateway_factory(
        _config(
            fake_openai,
            database,
            prefix(database),
            otlp={"endpoint": otlp.endpoint, "headers": {"x-collector-key": "secret"}},
            redact_patterns=[r"ACME-\d{6}"],
            teams={"quiet": {"bodies": "off"}, "terse": {"bodies": "metadata"}},
        )
    )
    yield gw
    gw.stop()  # before its database is dropped


def prefix(database: str | None) -> str:
    """The fake upstream's deployments of this backend's gateway (faults are per deployment)."""
    return "obs-sqlite" if database is None else "obs-postgresql"


def master(gateway: GatewayProcess) -> dict[str, str]:
    return {"authorization": f"Bearer {MASTER}"}


def sdk(gateway: GatewayProcess, key: str = MASTER) -> openai.OpenAI:
    return openai_sdk(gateway, key)


def fetch_trace(gateway: GatewayProcess, identifier: str, key: str = MASTER) -> dict[str, Any]:
    """The trace, once written (the writer flushes every half second)."""
    deadline = time.monotonic() + 60
    while True:
        response = httpx.get(
            f"{gateway.url}/api/traces/{identifier}", headers={"authorization": f"Bearer {key}"}
        )
        if response.status_code == 200 or time.monotonic() > deadline:
            assert response.status_code == 200, response.text
            trace: dict[str, Any] = response.json()
            return trace
        time.sleep(0.1)


def spans_by_name(trace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in trace["spans"]["data"]}


def test_a_chat_request_is_a_trace_with_genai_spans(gateway: GatewayProcess) -> None:
    with sdk(gateway) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="primary",
            messages=[{"role": "user", "content": "Hello traces"}],
            temperature=0.5,
            max_tokens=50,
            extra_headers={
                "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01",
                "x-stackyard-session-id": "session-42",
                "x-stackyard-metadata": '{"feature": "greeter", "user_tier": "gold"}',
                "x-stackyard-tags": "greeting, beta",
            },
        )
    completion = raw.parse()
    request_id = raw.headers["x-request-id"]
    trace = fetch_trace(gateway, request_id)
    [record] = [r for r in trace["requests"] if r["request_id"] == request_id]
    assert record["trace_id"] == TRACE_ID
    assert record["session_id"] == "session-42"
    assert record["tags"] == ["greeting", "beta"]
    assert record["metadata"] == {"feature": "greeter", "user_tier": "gold"}
    assert record["model"] == "primary"
    assert record["deployment"] == "primary#0"
    assert record["status"] == 200
    assert record["input_tokens"] == completion.usage.prompt_tokens  # type: ignore[union-attr]
    assert record["output_tokens"] == completion.usage.completion_tokens  # type: ignore[union-attr]
    assert record["cost_usd"] > 0
    assert record["request_body"]["messages"] == [{"role": "user", "content": "Hello traces"}]
    answer = record["response_body"]["choices"][0]["message"]["content"]
    assert answer == completion.choices[0].message.content
    spans = spans_by_name(trace)
    root = spans["chat primary"]
    assert root["parent_id"] == PARENT_ID  # the client's span
    attributes = root["attributes"]
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "primary"
    assert attributes["gen_ai.request.temperature"] == 0.5
    assert attributes["gen_ai.request.max_tokens"] == 50
    assert attributes["gen_ai.response.model"] == completion.model
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert attributes["gen_ai.usage.input_tokens"] == record["input_tokens"]
    assert attributes["gen_ai.usage.output_tokens"] == record["output_tokens"]
    assert attributes["stackyard.cost_usd"] == pytest.approx(record["cost_usd"])
    assert attributes["stackyard.deployment"] == "primary#0"
    assert attributes["stackyard.cache.hit"] is False
    assert attributes["session.id"] == "session-42"
    attempt = spans["chat fake-large"]
    assert attempt["parent_id"] == root["span_id"]
    assert attempt["attributes"]["gen_ai.provider.name"] == "openai-compatible"
    assert attempt["attributes"]["stackyard.attempt"] == 1
    assert spans["gateway.admission"]["parent_id"] == root["span_id"]
    assert root["start_ns"] <= attempt["start_ns"] <= attempt["end_ns"] <= root["end_ns"]

    # The list finds it by tag, session, metadata text and trace id.
    for query in ("tag=beta", "session=session-42", "q=greeter", f"trace_id={TRACE_ID}"):
        listed = httpx.get(f"{gateway.url}/api/traces?{query}", headers=master(gateway)).json()
        assert request_id in [t["request_id"] for t in listed["data"]], query
        assert all("request_body" not in t for t in listed["data"])


@pytest.mark.parametrize("door", list(doors.CALLS))
def test_every_door_is_a_trace_with_its_spans(gateway: GatewayProcess, door: str) -> None:
    """Tracing is the pipeline's, whatever the door: the request row with its usage and cost,
    the stored bodies, and the root, admission and attempt spans."""
    session = "door" + door.replace("/", "-")
    raw = doors.call(door, gateway, MASTER, "primary", {"x-stackyard-session-id": session})
    request_id = raw.headers["x-request-id"]
    trace = fetch_trace(gateway, request_id)
    [record] = [r for r in trace["requests"] if r["request_id"] == request_id]
    assert (record["model"], record["status"], record["session_id"]) == ("primary", 200, session)
    assert record["input_tokens"] == 2  # "Hello there", as the fake upstream counts words
    assert record["cost_usd"] > 0
    assert doors.TEXT in str(record["request_body"])
    assert record["response_body"]
    spans = trace["spans"]["data"]
    [root] = [s for s in spans if s["parent_id"] is None]
    assert root["attributes"]["gen_ai.request.model"] == "primary"
    assert root["attributes"]["gen_ai.usage.input_tokens"] == 2
    assert root["attributes"]["stackyard.cost_usd"] == pytest.approx(record["cost_usd"])
    children = {s["name"]: s for s in spans if s["parent_id"] == root["span_id"]}
    assert "gateway.admission" in children
    [attempt] = [s for s in children.values() if s["name"].endswith(" fake-large")]
    assert attempt["attributes"]["stackyard.attempt"] == 1


def test_a_stream_records_its_time_to_first_token_and_its_text(gateway: GatewayProcess) -> None:
    with sdk(gateway) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="primary", messages=[{"role": "user", "content": "Stream me"}], stream=True
        )
        text_parts = [
            chunk.choices[0].delta.content or ""
            for chunk in raw.parse()
            if chunk.choices  # a usage-only chunk has none
        ]
    trace = fetch_trace(gateway, raw.headers["x-request-id"])
    [record] = trace["requests"]
    assert record["stream"] is True
    assert record["ttft_ms"] is not None
    assert 0 < record["ttft_ms"] <= record["duration_ms"]
    assert record["output_tokens"] > 0  # usage learnt from the stream, hidden from the client
    assert record["response_body"]["choices"][0]["message"]["content"] == "".join(text_parts)
    root = spans_by_name(trace)["chat primary"]
    assert [e["name"] for e in root["events"]] == ["stackyard.first_chunk"]
    assert 0 < root["attributes"]["gen_ai.response.time_to_first_chunk"] < 60
    assert root["attributes"]["gen_ai.request.stream"] is True
    assert root["attributes"]["gen_ai.response.finish_reasons"] == ["stop"]


def test_a_fallback_shows_both_attempts(
    gateway: GatewayProcess, fake_openai: FakeOpenAI, database: str | None
) -> None:
    fake_openai.enqueue(f"{prefix(database)}-primary", Fault.status(500, message="primary is down"))
    with sdk(gateway) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="primary", messages=[{"role": "user", "content": "Fall back"}]
        )
    assert raw.headers["x-stackyard-model-deployment"] == "backup#1"
    trace = fetch_trace(gateway, raw.headers["x-request-id"])
    [record] = trace["requests"]
    assert record["attempts"] == 2
    assert record["deployment"] == "backup#1"
    attempts = sorted(
        (s for s in trace["spans"]["data"] if "stackyard.attempt" in s["attributes"]),
        key=lambda s: s["attributes"]["stackyard.attempt"],
    )
    assert [s["attributes"]["stackyard.deployment"] for s in attempts] == ["primary#0", "backup#1"]
    assert attempts[0]["status"] == "error"
    assert "primary is down" in attempts[0]["status_message"]
    assert attempts[1]["status"] == "ok"
    assert attempts[1]["attributes"]["stackyard.fallback"] is True


def test_spans_reach_the_otlp_collector(gateway: GatewayProcess, otlp: OTLPReceiver) -> None:
    """The default: binary protobuf, gzipped, to a receiver that takes nothing else."""
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    with sdk(gateway) as client:
        client.chat.completions.create(
            model="primary",
            messages=[{"role": "user", "content": "Export me"}],
            extra_headers={"x-stackyard-trace-id": trace_id},
        )
    spans = otlp.wait_for(trace_id, 3)
    names = sorted(s.name for s in spans)
    assert names == ["chat fake-large", "chat primary", "gateway.admission"]
    root = next(s for s in spans if s.name == "chat primary")
    assert root.kind == Span.SPAN_KIND_SERVER
    assert root.parent_span_id == b""
    attributes = otlp_attributes(root)
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "primary"
    assert attributes["gen_ai.response.model"]
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert attributes["gen_ai.usage.input_tokens"] == 2
    assert attributes["gen_ai.usage.output_tokens"] > 0
    assert attributes["gen_ai.provider.name"] == "openai-compatible"
    attempt = next(s for s in spans if s.name == "chat fake-large")
    assert attempt.kind == Span.SPAN_KIND_CLIENT
    assert attempt.parent_span_id == root.span_id
    assert otlp_attributes(attempt)["gen_ai.request.model"] == "fake-large"
    assert root.status.code == Status.STATUS_CODE_OK
    assert root.end_time_unix_nano >= root.start_time_unix_nano
    assert otlp.errors == []
    assert set(otlp.content_types) == {"application/x-protobuf"}
    assert set(otlp.content_encodings) == {"gzip"}
    assert otlp.headers[-1].get("x-collector-key") == "secret"
    assert otlp.resources()[-1]["service.name"] == "stackyard"


def test_stored_bodies_are_redacted(gateway: GatewayProcess) -> None:
    planted = (
        "Mail jane.doe@example.com, card 4111 1111 1111 1111, call +1 415 555 2671, "
        "key sk-proj-abcdefghijklmnop1234 and order ACME-123456"
    )
    with sdk(gateway) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="primary",
            messages=[{"role": "user", "content": planted}],
            extra_headers={"x-stackyard-metadata": '{"contact": "jane.doe@example.com"}'},
        )
    assert "jane.doe@example.com" in (raw.parse().choices[0].message.content or "")
    [record] = fetch_trace(gateway, raw.headers["x-request-id"])["requests"]
    stored = str(record["request_body"]) + str(record["response_body"]) + str(record["metadata"])
    for secret in ("jane.doe", "4111", "555 2671", "sk-proj-abcdef", "ACME-123456"):
        assert secret not in stored
    for placeholder in ("[EMAIL]", "[CARD]", "[PHONE]", "[API_KEY]", "[REDACTED]"):
        assert placeholder in stored


def test_per_team_modes_metadata_only_and_off(gateway: GatewayProcess) -> None:
    terse, quiet = team_key(gateway, "terse", MASTER), team_key(gateway, "quiet", MASTER)
    time.sleep(0.5)  # the key snapshot refreshes every 0.2 s
    with sdk(gateway, terse) as client:
        terse_id = client.chat.completions.with_raw_response.create(
            model="primary", messages=[{"role": "user", "content": "metadata only"}]
        ).headers["x-request-id"]
    with sdk(gateway, quiet) as client:
        quiet_id = client.chat.completions.with_raw_response.create(
            model="primary", messages=[{"role": "user", "content": "metrics only"}]
        ).headers["x-request-id"]
    [record] = fetch_trace(gateway, terse_id)["requests"]
    assert record["bodies"] == "metadata"
    assert record["request_body"] is None
    assert record["response_body"] is None
    assert record["input_tokens"] > 0
    time.sleep(1.0)  # two flushes: had it been queued, it would be written by now
    missing = httpx.get(f"{gateway.url}/api/traces/{quiet_id}", headers=master(gateway))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "trace_not_found"
    # A team's key sees its own team's traces, and no one else's.
    mine = httpx.get(f"{gateway.url}/api/traces", headers={"authorization": f"Bearer {terse}"})
    assert [t["request_id"] for t in mine.json()["data"]] == [terse_id]
    other = httpx.get(
        f"{gateway.url}/api/traces/{terse_id}", headers={"authorization": f"Bearer {quiet}"}
    )
    assert other.status_code == 404


def test_metrics_count_requests_errors_and_tokens(
    gateway: GatewayProcess, fake_openai: FakeOpenAI, database: str | None
) -> None:
    fake_openai.enqueue(f"{prefix(database)}-primary", Fault.status(500, message="primary is down"))
    with sdk(gateway) as client:
        client.chat.completions.create(model="primary", messages=[{"role": "user", "content": "m"}])
        client.chat.completions.create(model="primary", messages=[{"role": "user", "content": "m"}])
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(
                model="nope", messages=[{"role": "user", "content": "m"}]
            )
        client.embeddings.create(model="vectors", input="metrics", encoding_format="float")
    response = httpx.get(f"{gateway.url}/metrics", headers=master(gateway))
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse_prometheus(response.text)
    ok = samples[
        'stackyard_requests_total{endpoint="chat",model="primary",deployment="primary#0",team="",status="200"}'
    ]
    assert ok >= 1
    assert samples['stackyard_errors_total{model="nope",code="model_not_found"}'] >= 1
    assert samples['stackyard_tokens_total{model="primary",team="",direction="input"}'] > 0
    assert samples['stackyard_cost_usd_total{model="primary",team=""}'] > 0
    assert (
        samples[
            'stackyard_request_duration_seconds_count{endpoint="embeddings",model="vectors",team=""}'
        ]
        >= 1
    )
    assert samples['stackyard_fallbacks_total{model="primary",fallback="backup"}'] >= 1
    assert samples["stackyard_traces_dropped_total"] == 0
    assert "stackyard_trace_queue_depth" in samples


def parse_prometheus(exposition: str) -> dict[str, float]:
    samples = {}
    for line in exposition.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def test_scores_attach_to_a_trace_and_are_summarised(gateway: GatewayProcess) -> None:
    with sdk(gateway) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="primary", messages=[{"role": "user", "content": "Rate me"}]
        )
    request_id = raw.headers["x-request-id"]
    url = f"{gateway.url}/api/traces/{request_id}/scores"
    headers = master(gateway)
    # Posted at once: the score waits for the trace to be written.
    for body in (
        {"name": "helpful", "value": True, "source": "user"},
        {"name": "quality", "value": 0.75, "comment": "good", "source": "evaluator"},
        {"name": "tone", "value": "friendly"},
    ):
        created = httpx.post(url, json=body, headers=headers)
        assert created.status_code == 200, created.text
    bad = httpx.post(
        url, json={"name": "quality", "value": "x", "data_type": "numeric"}, headers=headers
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "value"
    scores = fetch_trace(gateway, request_id)["scores"]
    assert {(s["name"], s["value"]) for s in scores} == {
        ("helpful", 1.0),
        ("quality", 0.75),
        ("tone", "friendly"),
    }
    summary = httpx.get(f"{gateway.url}/api/scores", headers=headers).json()["data"]
    by_name = {s["name"]: s for s in summary}
    assert by_name["tone"]["categories"] == {"friendly": 1}
    assert by_name["helpful"]["mean"] == 1.0


def test_stats_aggregate_latency_tokens_and_cost(gateway: GatewayProcess) -> None:
    with sdk(gateway) as client:
        client.chat.completions.create(model="primary", messages=[{"role": "user", "content": "s"}])
    stats = f"{gateway.url}/api/stats?group_by=model&bucket=hour"
    assert eventually(  # the trace is written in the background
        lambda: any(
            r["group"] == "primary"
            for r in httpx.get(stats, headers=master(gateway)).json()["data"]
        )
    )
    response = httpx.get(stats, headers=master(gateway))
    assert response.status_code == 200, response.text
    rows = {r["group"]: r for r in response.json()["data"]}
    primary = rows["primary"]
    assert primary["requests"] >= 1
    assert primary["latency_p50_ms"] <= primary["latency_p99_ms"]
    assert primary["cost_usd"] > 0
    bad = httpx.get(f"{gateway.url}/api/stats?group_by=colour", headers=master(gateway))
    assert bad.status_code == 400


def test_bad_tracing_headers_are_a_400(gateway: GatewayProcess) -> None:
    with sdk(gateway) as client, pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="primary",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-stackyard-metadata": "[1, 2]"},
        )
    assert "x-stackyard-metadata must be a JSON object" in info.value.message


def _count_traces(database: str | None, gateway: GatewayProcess, model: str) -> int:
    url = database or f"sqlite:///{gateway.config_path.parent / 'stackyard.db'}"
    engine = create_engine(normalise_url(url))
    with engine.connect() as connection:
        count = connection.execute(
            text("select count(*) from traces where model = :m"), {"m": model}
        ).scalar_one()
    engine.dispose()
    return int(count)


async def _burst(gateway: GatewayProcess, n: int, model: str = "primary") -> list[int]:
    """``n`` concurrent requests (aiohttp: httpx's pool is slow with hundreds in flight)."""
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> int:
            async with session.post(
                f"{gateway.base_url}/chat/completions",
                json={"model": model, "messages": [{"role": "user", "content": f"n{i}"}]},
                headers=master(gateway),
            ) as response:
                await response.read()
                return response.status

        return list(await asyncio.gather(*(one(i) for i in range(n))))


def test_a_thousand_requests_then_shutdown_store_a_thousand_traces(
    database: str | None, fake_openai: FakeOpenAI, gateway_factory: Any
) -> None:
    config = _config(fake_openai, database, "obs-burst")
    config["models"][1]["name"] = "burst"  # counted apart from the other tests' traces
    config["router"]["fallbacks"] = {}
    gw = gateway_factory(config)
    statuses = asyncio.run(_burst(gw, 1000, model="burst"))
    assert statuses == [200] * 1000
    gw.stop()  # graceful: the queue is flushed
    assert _count_traces(database, gw, "burst") == 1000


def test_a_full_queue_sheds_traces_never_requests(
    database: str | None, fake_openai: FakeOpenAI, gateway_factory: Any
) -> None:
    config = _config(fake_openai, database, "obs-full", queue_size=1, flush_interval=30)
    gw = gateway_factory(config)
    statuses = asyncio.run(_burst(gw, 50))
    assert statuses == [200] * 50
    samples = parse_prometheus(httpx.get(f"{gw.url}/metrics", headers=master(gw)).text)
    gw.stop()  # before its database is dropped
    assert samples["stackyard_traces_dropped_total"] >= 40
    assert (
        samples[
            'stackyard_requests_total{endpoint="chat",model="primary",deployment="primary#0",team="",status="200"}'
        ]
        == 50
    )
