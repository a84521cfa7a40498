"""The OTLP exporter against real receivers: binary protobuf (the default), OTLP/JSON and
gRPC, gzip, partial success, and a collector that is down."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OTLPSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from stackyard import __version__
from stackyard.observability.metrics import GatewayMetrics
from stackyard.observability.otlp import OTLPExporter, OTLPSettings, any_value, payload
from stackyard.observability.otlp.encode import export_request, export_spans
from stackyard.observability.otlp.exporter import hand_off, handed
from stackyard.observability.spans import SERVER, RequestTrace, Span
from stackyard.observability.writer import Finished, span_dict
from tests.conftest import free_port
from tests.fakes.otlp_receiver import GRPCReceiver, OTLPReceiver, attributes, from_otlp_json

TRACE_ID = "ab" * 16
RESOURCE = {"service.name": "svc", "service.version": __version__}


def finished(trace_id: str = TRACE_ID) -> Finished:
    now = time.time_ns()
    root = Span("chat m", "1" * 16, None, now, now + 1000, kind=SERVER, attributes={"a": 1})
    root.attributes.update({"big": 2**70, "ratio": 0.5, "tags": ["x", "y"], "none": None})
    trace = RequestTrace("req_1", trace_id, root, "chat", "m", {"model": "m"})
    child = trace.child("gateway.admission", now, now + 10)
    child.fail("refused", "rate_limit_exceeded")
    root.events.append(("stackyard.first_chunk", now + 500, {}))
    return Finished(trace, None, None, None, 200, None, None, None, 1, 2, 0.0, False, 1, "full")


def settings(endpoint: str, **overrides: Any) -> OTLPSettings:
    return OTLPSettings(endpoint=endpoint, resource=RESOURCE, **overrides)


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    running = OTLPReceiver()
    running.start()
    yield running
    running.stop()


@pytest.fixture
def json_receiver() -> Iterator[OTLPReceiver]:
    running = OTLPReceiver("json")
    running.start()
    yield running
    running.stop()


def test_any_value_encodings() -> None:
    assert any_value(True).bool_value is True
    assert any_value(3).int_value == 3
    assert any_value(2**64).string_value == str(2**64)  # beyond int64
    assert any_value(0.5).double_value == 0.5
    assert any_value("x").string_value == "x"
    assert [v.WhichOneof("value") for v in any_value(["a", 1]).array_value.values] == [
        "string_value",
        "int_value",
    ]
    assert any_value({"k": "v"}).kvlist_value.values[0].key == "k"


def test_the_export_request_is_otlps_own_message() -> None:
    request = export_request([finished()], RESOURCE)
    decoded = ExportTraceServiceRequest.FromString(request.SerializeToString())
    [resource] = decoded.resource_spans
    assert {kv.key: kv.value.string_value for kv in resource.resource.attributes} == RESOURCE
    [scope] = resource.scope_spans
    assert (scope.scope.name, scope.scope.version) == ("stackyard", __version__)
    root, child = scope.spans
    assert root.trace_id == bytes.fromhex(TRACE_ID)
    assert root.span_id == bytes.fromhex("1" * 16)
    assert root.kind == OTLPSpan.SPAN_KIND_SERVER
    assert root.parent_span_id == b""
    assert attributes(root) == {"a": 1, "big": str(2**70), "ratio": 0.5, "tags": ["x", "y"]}
    assert root.events[0].name == "stackyard.first_chunk"
    assert root.status.code == Status.STATUS_CODE_OK
    assert child.parent_span_id == root.span_id
    assert (child.status.code, child.status.message) == (Status.STATUS_CODE_ERROR, "refused")
    assert attributes(child)["error.type"] == "rate_limit_exceeded"


def test_the_encoding_process_gets_the_same_spans_however_they_are_handed_off() -> None:
    """Plain JSON when it can hold every attribute, pickled when it cannot (an int beyond 64
    bits); either way the process encodes exactly what the thread would have."""
    plain = finished()
    plain.trace.root.attributes.pop("big")
    for done, way in ((plain, b"j"), (finished(), b"p")):
        data = hand_off([done])
        assert data[:1] == way
        [(trace_id, spans)] = handed(data)
        assert trace_id == TRACE_ID
        assert [span_dict(s) for s in spans] == [span_dict(s) for s in done.trace.all_spans()]
        elsewhere = export_spans([(trace_id, spans)], RESOURCE).SerializeToString()
        assert elsewhere == export_request([done], RESOURCE).SerializeToString()


def test_payload_follows_the_otlp_json_encoding() -> None:
    done = finished()
    body = payload([done], "svc")
    [resource] = body["resourceSpans"]
    assert {"key": "service.name", "value": {"stringValue": "svc"}} in resource["resource"][
        "attributes"
    ]
    root, child = resource["scopeSpans"][0]["spans"]
    assert root["traceId"] == TRACE_ID  # hex, not protobuf's base64, in OTLP/JSON
    assert root["spanId"] == "1" * 16
    assert root["kind"] == 2  # enums as integers
    assert "parentSpanId" not in root
    assert root["events"][0]["name"] == "stackyard.first_chunk"
    assert child["parentSpanId"] == "1" * 16
    assert child["status"] == {"code": 2, "message": "refused"}
    assert isinstance(child["startTimeUnixNano"], str)  # 64-bit integers as strings
    assert {"key": "a", "value": {"intValue": "1"}} in root["attributes"]
    # and a collector's parser reads it back as the same message
    assert from_otlp_json(json.loads(json.dumps(body))) == export_request([done], RESOURCE)


async def test_spans_go_as_gzipped_protobuf_by_default(receiver: OTLPReceiver) -> None:
    metrics = GatewayMetrics()
    exporter = OTLPExporter(
        settings(receiver.endpoint, headers={"api-key": "k"}), metrics, interval=0.05
    )
    exporter.start()
    for _ in range(3):
        assert exporter.offer(finished())
    await exporter.close()
    assert receiver.errors == []
    assert len(receiver.spans()) == 6
    assert set(receiver.content_types) == {"application/x-protobuf"}
    assert set(receiver.content_encodings) == {"gzip"}
    assert receiver.headers[0]["api-key"] == "k"
    assert receiver.resources()[0] == RESOURCE
    assert metrics.spans_exported.get() == 6


async def test_uncompressed_protobuf(receiver: OTLPReceiver) -> None:
    exporter = OTLPExporter(settings(receiver.endpoint, compression="none"), GatewayMetrics())
    exporter.start()
    exporter.offer(finished())
    await exporter.close()
    assert receiver.content_encodings == [""]
    assert len(receiver.spans()) == 2


async def test_a_protobuf_only_receiver_refuses_json(receiver: OTLPReceiver) -> None:
    metrics = GatewayMetrics()
    exporter = OTLPExporter(settings(receiver.endpoint, protocol="http/json"), metrics)
    exporter.start()
    exporter.offer(finished())
    await exporter.close()
    assert receiver.errors == [(415, "application/json")]  # not retried: a 415 is final
    assert metrics.spans_export_failed.get() == 2


async def test_http_json_sends_otlp_json(json_receiver: OTLPReceiver) -> None:
    metrics = GatewayMetrics()
    exporter = OTLPExporter(settings(json_receiver.endpoint, protocol="http/json"), metrics)
    exporter.start()
    exporter.offer(finished())
    await exporter.close()
    assert json_receiver.errors == []
    assert json_receiver.content_types == ["application/json"]
    [document] = json_receiver.documents
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert [s["traceId"] for s in spans] == [TRACE_ID, TRACE_ID]
    assert metrics.spans_exported.get() == 2


async def test_grpc_export() -> None:
    receiver = GRPCReceiver()
    receiver.start()
    try:
        metrics = GatewayMetrics()
        exporter = OTLPExporter(
            settings(receiver.endpoint, protocol="grpc", insecure=True, headers={"API-Key": "k"}),
            metrics,
        )
        exporter.start()
        exporter.offer(finished())
        await exporter.close()
        spans = receiver.wait_for(TRACE_ID, 2)
        assert sorted(s.name for s in spans) == ["chat m", "gateway.admission"]
        assert receiver.headers[0]["api-key"] == "k"  # gRPC metadata keys are lower case
        assert receiver.resources()[0]["service.name"] == "svc"
        assert metrics.spans_exported.get() == 2
    finally:
        receiver.stop()


async def test_a_grpc_collector_that_is_down_costs_spans() -> None:
    metrics = GatewayMetrics()
    endpoint = f"http://127.0.0.1:{free_port()}"
    exporter = OTLPExporter(
        settings(endpoint, protocol="grpc", insecure=True, timeout=1), metrics, interval=0.05
    )
    exporter.start()
    exporter.offer(finished())
    await exporter.close()
    assert metrics.spans_export_failed.get() == 2


class _PartialCollector:
    """Takes every export, rejecting one span of each, as a partial success."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                collector.bodies.append(self.rfile.read(int(self.headers["content-length"])))
                reply = ExportTraceServiceResponse()
                reply.partial_success.rejected_spans = 1
                reply.partial_success.error_message = "one span too many"
                body = reply.SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        Thread(target=self.server.serve_forever, daemon=True).start()


async def test_a_partial_success_counts_the_rejected_spans_as_failed() -> None:
    collector = _PartialCollector()
    try:
        metrics = GatewayMetrics()
        port = collector.server.server_address[1]
        exporter = OTLPExporter(settings(f"http://127.0.0.1:{port}/v1/traces"), metrics)
        exporter.start()
        exporter.offer(finished())
        await exporter.close()
        [body] = collector.bodies
        assert len(ExportTraceServiceRequest.FromString(gzip.decompress(body)).resource_spans)
        assert (metrics.spans_exported.get(), metrics.spans_export_failed.get()) == (1, 1)
    finally:
        collector.server.shutdown()
        collector.server.server_close()


async def test_a_collector_that_is_down_costs_spans_not_errors() -> None:
    metrics = GatewayMetrics()
    endpoint = f"http://127.0.0.1:{free_port()}/v1/traces"  # nothing listens
    exporter = OTLPExporter(settings(endpoint, timeout=1), metrics, interval=0.05)
    exporter.start()
    exporter.offer(finished())
    await exporter.close()
    assert metrics.spans_export_failed.get() == 2
    assert metrics.spans_exported.get() == 0


def test_a_full_export_queue_drops_and_counts() -> None:
    metrics = GatewayMetrics()
    exporter = OTLPExporter(settings("http://127.0.0.1:9/v1/traces"), metrics, max_queue=1)
    assert exporter.offer(finished())
    assert not exporter.offer(finished())
    assert metrics.spans_export_failed.get() == 2
