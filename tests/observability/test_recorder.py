"""The recorder: spans from the router's attempts, metrics, per-team policies, sampling, and
shedding when the writer is full."""

from __future__ import annotations

import random

from stackyard.auth.principal import Principal
from stackyard.config.schema import ObservabilityConfig
from stackyard.errors import APIError
from stackyard.gateway.providers.base import UpstreamError
from stackyard.gateway.router import RouteStats
from stackyard.observability.recorder import Recorder
from stackyard.observability.writer import Finished
from stackyard.server.http import Request
from tests.gateway.test_router import make_router

TEAM = Principal(key_id="key_1", team_id="team_1", user_id=None)


class Sink:
    def __init__(self, room: int = 1000) -> None:
        self.rows: list[Finished] = []
        self.room = room

    def offer(self, row: Finished) -> bool:
        if len(self.rows) >= self.room:
            return False
        self.rows.append(row)
        return True


def request() -> Request:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}
    return Request(scope, receive, max_body_bytes=1 << 20)


def recorder(sink: Sink, **config: object) -> Recorder:
    return Recorder(
        ObservabilityConfig.model_validate(config),
        writer=sink,
        rng=random.Random(3),
        team_names=lambda: {"team_1": "search"},
    )


async def test_each_attempt_is_a_span_and_a_fallback_is_counted() -> None:
    router, providers = make_router([("a", "a1"), ("b", "b1")], retries=0, fallbacks={"a": ["b"]})
    providers["a1"].enqueue(UpstreamError("server", "a1 is down"))
    stats = RouteStats()
    routed = await router.run("a", lambda d: d.provider.chat({}), stats=stats)
    sink = Sink()
    rec = recorder(sink)
    trace = rec.start(request(), {"model": "a", "messages": []}, "chat")
    usage = {"prompt_tokens": 3, "completion_tokens": 4}
    rec.finish(trace, TEAM, status=200, usage=usage, deployment=routed.deployment, stats=stats)
    [row] = sink.rows
    assert row.attempts == 2
    failed, served = row.trace.spans
    assert failed.status == "error"
    assert failed.status_message == "a1 is down"
    assert failed.attributes["stackyard.deployment"] == "a1"
    assert served.attributes["stackyard.fallback"] is True
    assert rec.metrics.fallbacks.get("a", "b") == 1
    assert rec.metrics.retries.get("a") == 1
    assert rec.metrics.requests.get("chat", "a", "b1", "team_1", "200") == 1
    assert rec.metrics.tokens.get("a", "team_1", "output") == 4


def test_a_rejection_is_counted_and_its_span_failed() -> None:
    sink = Sink()
    rec = recorder(sink)
    trace = rec.start(request(), {"model": "m"}, "chat")
    refusal = APIError(429, "slow down", code="rate_limit_exceeded")
    rec.finish(trace, TEAM, status=429, error=refusal)
    assert rec.metrics.rejections.get("team_1", "rate_limit_exceeded") == 1
    assert rec.metrics.errors.get("m", "rate_limit_exceeded") == 1
    assert sink.rows[0].trace.root.status == "error"
    assert sink.rows[0].error_type == "rate_limit_exceeded"


def test_team_policies_by_name_and_sampling() -> None:
    sink = Sink()
    rec = recorder(sink, teams={"search": {"sample_rate": 0.25}})
    for _ in range(400):
        rec.finish(rec.start(request(), {"model": "m"}, "chat"), TEAM, status=200)
    stored = sum(row.bodies == "full" for row in sink.rows)
    assert len(sink.rows) == 400  # every trace is kept; only bodies are sampled
    assert 60 <= stored <= 140
    assert {row.bodies for row in sink.rows} == {"full", "sampled-out"}


def test_off_stores_nothing_but_metrics_count() -> None:
    sink = Sink()
    rec = recorder(sink, teams={"team_1": {"bodies": "off"}})
    rec.finish(rec.start(request(), {"model": "m"}, "chat"), TEAM, status=200)
    assert sink.rows == []
    assert rec.metrics.requests.get("chat", "m", "", "team_1", "200") == 1


def test_a_full_writer_sheds_traces_and_counts_them() -> None:
    sink = Sink(room=2)
    rec = recorder(sink)
    for _ in range(5):
        rec.finish(rec.start(request(), {"model": "m"}, "chat"), None, status=200)
    assert len(sink.rows) == 2
    assert rec.metrics.traces_dropped.get() == 3
    assert rec.metrics.requests.get("chat", "m", "", "", "200") == 5
