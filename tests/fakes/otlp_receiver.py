"""OTLP receivers for tests, strict as collectors are.

- :class:`OTLPReceiver`: OTLP/HTTP, ``POST /v1/traces`` in ONE encoding: binary protobuf
  (``application/x-protobuf``, the spec's default) or JSON; any other content type is a 415.
  It gunzips a ``content-encoding: gzip`` body and parses every export as an
  ``ExportTraceServiceRequest`` (a JSON one after the OTLP/JSON rules: hex ids), so a body the
  real thing would refuse fails here too (a 400, kept in :attr:`errors`).
- :class:`GRPCReceiver`: a real ``grpc.server`` implementing ``TraceService/Export``.

Both keep what they were sent, and answer full success.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from google.protobuf import json_format  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

CONTENT_TYPES = {"protobuf": "application/x-protobuf", "json": "application/json"}


def value(any_value: AnyValue) -> Any:
    """An OTLP ``AnyValue`` as Python."""
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in any_value.kvlist_value.values}
    return getattr(any_value, kind) if kind else None


def attributes(span: Span) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in span.attributes}


def from_otlp_json(message: dict[str, Any]) -> ExportTraceServiceRequest:
    """Parse OTLP/JSON as a collector does: ids must be hex of the right length."""
    message = json.loads(json.dumps(message))  # a copy
    for resource in message.get("resourceSpans", ()):
        for scope in resource.get("scopeSpans", ()):
            for span in scope.get("spans", ()):
                for key, size in (("traceId", 16), ("spanId", 8), ("parentSpanId", 8)):
                    if key in span:
                        raw = bytes.fromhex(span[key])  # ValueError if not hex
                        if len(raw) != size:
                            raise ValueError(f"{key} {span[key]!r} is not {size} bytes")
                        span[key] = base64.b64encode(raw).decode()
    request = ExportTraceServiceRequest()
    json_format.ParseDict(message, request)
    return request


class _Received:
    """What a receiver was sent, and ways to look at it."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()

    def keep(self, request: ExportTraceServiceRequest, headers: dict[str, str]) -> None:
        with self.lock:
            self.requests.append(request)
            self.headers.append(headers)

    def spans(self) -> list[Span]:
        with self.lock:
            requests = list(self.requests)
        return [
            span
            for request in requests
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]

    def resources(self) -> list[dict[str, Any]]:
        with self.lock:
            requests = list(self.requests)
        return [
            {kv.key: value(kv.value) for kv in resource.resource.attributes}
            for request in requests
            for resource in request.resource_spans
        ]

    def wait_for(self, trace_id: str, count: int, timeout: float = 10.0) -> list[Span]:
        """The spans of trace ``trace_id`` (hex), once there are ``count`` (or the time is
        up)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [s for s in self.spans() if s.trace_id.hex() == trace_id]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


class OTLPReceiver(_Received):
    def __init__(self, encoding: Literal["protobuf", "json"] = "protobuf") -> None:
        super().__init__()
        self.encoding = encoding
        self.accepts = CONTENT_TYPES[encoding]
        #: The raw OTLP/JSON documents (json only), to check the encoding itself.
        self.documents: list[dict[str, Any]] = []
        self.content_types: list[str] = []
        self.content_encodings: list[str] = []
        #: (status, reason) of every export refused.
        self.errors: list[tuple[int, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                if self.path != "/v1/traces":
                    self.reply(404, b"")
                    return
                content_type = self.headers.get("content-type", "")
                receiver.content_types.append(content_type)
                if content_type.split(";")[0].strip() != receiver.accepts:
                    receiver.errors.append((415, content_type))
                    self.reply(415, b"")
                    return
                encoding = self.headers.get("content-encoding", "")
                receiver.content_encodings.append(encoding)
                try:
                    if encoding == "gzip":
                        body = gzip.decompress(body)
                    elif encoding:
                        raise ValueError(f"unknown content-encoding {encoding!r}")
                    if receiver.encoding == "protobuf":
                        request = ExportTraceServiceRequest.FromString(body)
                    else:
                        document = json.loads(body)
                        request = from_otlp_json(document)
                        receiver.documents.append(document)
                except Exception as exc:  # any unreadable body is a 400
                    receiver.errors.append((400, repr(exc)))
                    self.reply(400, b"")
                    return
                receiver.keep(request, dict(self.headers.items()))
                if receiver.encoding == "protobuf":
                    self.reply(200, ExportTraceServiceResponse().SerializeToString())
                else:
                    self.reply(200, b"{}")

            def reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", receiver.accepts)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        """What ``OTEL_EXPORTER_OTLP_ENDPOINT`` would say."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def endpoint(self) -> str:
        return f"{self.base}/v1/traces"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class GRPCReceiver(_Received):
    """OTLP/gRPC on a real ``grpc.server``; records each call's metadata and compression."""

    def __init__(self) -> None:
        super().__init__()
        import grpc  # type: ignore[import-untyped]
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

        receiver = self

        class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(  # the service's own name
                self, request: ExportTraceServiceRequest, context: Any
            ) -> ExportTraceServiceResponse:
                receiver.keep(request, dict(context.invocation_metadata()))
                return ExportTraceServiceResponse()

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            TraceService(), self.server
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop(grace=None)
