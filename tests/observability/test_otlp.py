"""The OTLP exporter: the JSON encoding, delivery to a receiver, and a collector that is down."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from stackyard.config.schema import OTLPConfig
from stackyard.observability.metrics import GatewayMetrics
from stackyard.observability.otlp import OTLPExporter, any_value, payload
from stackyard.observability.spans import SERVER, RequestTrace, Span
from stackyard.observability.writer import Finished
from tests.conftest import free_port
from tests.fakes.otlp_receiver import OTLPReceiver


def finished(trace_id: str = "ab" * 16) -> Finished:
    now = time.time_ns()
    root = Span("chat m", "1" * 16, None, now, now + 1000, kind=SERVER, attributes={"a": 1})
    trace = RequestTrace("req_1", trace_id, root, "chat", "m", {"model": "m"})
    child = trace.child("gateway.admission", now, now + 10)
    child.fail("refused", "rate_limit_exceeded")
    root.events.append(("gen_ai.first_chunk", now + 500, {}))
    return Finished(trace, None, None, None, 200, None, None, None, 1, 2, 0.0, False, 1, "full")


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    running = OTLPReceiver()
    running.start()
    yield running
    running.stop()


def test_any_value_encodings() -> None:
    assert any_value(True) == {"boolValue": True}
    assert any_value(3) == {"intValue": "3"}
    assert any_value(0.5) == {"doubleValue": 0.5}
    assert any_value("x") == {"stringValue": "x"}
    assert any_value(["a", 1]) == {
        "arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"}]}
    }


def test_payload_follows_the_otlp_json_encoding() -> None:
    body = payload([finished()], "svc")
    [resource] = body["resourceSpans"]
    assert {"key": "service.name", "value": {"stringValue": "svc"}} in resource["resource"][
        "attributes"
    ]
    root, child = resource["scopeSpans"][0]["spans"]
    assert root["traceId"] == "ab" * 16  # hex, not base64, in OTLP/JSON
    assert root["kind"] == 2
    assert "parentSpanId" not in root
    assert root["events"][0]["name"] == "gen_ai.first_chunk"
    assert child["parentSpanId"] == "1" * 16
    assert child["status"] == {"code": 2, "message": "refused"}
    assert isinstance(child["startTimeUnixNano"], str)


async def test_spans_are_delivered_in_batches(receiver: OTLPReceiver) -> None:
    metrics = GatewayMetrics()
    exporter = OTLPExporter(
        OTLPConfig(endpoint=receiver.endpoint, headers={"api-key": "k"}), metrics, interval=0.05
    )
    exporter.start()
    for _ in range(3):
        assert exporter.offer(finished())
    await exporter.close()
    assert len(receiver.spans()) == 6
    assert receiver.headers[0]["api-key"] == "k"
    assert metrics.spans_exported.get() == 6


async def test_a_collector_that_is_down_costs_spans_not_errors() -> None:
    metrics = GatewayMetrics()
    endpoint = f"http://127.0.0.1:{free_port()}/v1/traces"  # nothing listens
    exporter = OTLPExporter(OTLPConfig(endpoint=endpoint, timeout=1), metrics, interval=0.05)
    exporter.start()
    exporter.offer(finished())
    await exporter.close()
    assert metrics.spans_export_failed.get() == 2
    assert metrics.spans_exported.get() == 0


def test_a_full_export_queue_drops_and_counts() -> None:
    metrics = GatewayMetrics()
    exporter = OTLPExporter(
        OTLPConfig(endpoint="http://127.0.0.1:9/v1/traces"), metrics, max_queue=1
    )
    assert exporter.offer(finished())
    assert not exporter.offer(finished())
    assert metrics.spans_export_failed.get() == 2
