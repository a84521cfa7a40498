"""Finished traces as OTLP messages: an ``ExportTraceServiceRequest`` from the
OpenTelemetry project's own protobuf classes (``opentelemetry-proto``), serialised as binary
protobuf, or as OTLP/JSON, which differs from protobuf's JSON mapping in one place: trace and
span ids are hex strings, not base64.

https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import json_format  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Status
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OTLPSpan

from stackyard import __version__
from stackyard.observability.spans import Span
from stackyard.observability.writer import Finished

STATUS = {"ok": Status.STATUS_CODE_OK, "error": Status.STATUS_CODE_ERROR}
INT64 = range(-(2**63), 2**63)
#: The fields OTLP/JSON writes as hex (protobuf's JSON mapping would write base64).
ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def any_value(value: Any) -> AnyValue:
    """A Python value as an OTLP ``AnyValue`` (an int beyond int64 becomes its string)."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value) if value in INT64 else AnyValue(string_value=str(value))
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list | tuple):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=key_values(value)))
    return AnyValue(string_value=str(value))


def key_values(attributes: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attributes.items() if v is not None]


def otlp_span(span: Span, trace_id: bytes) -> OTLPSpan:
    encoded = OTLPSpan(
        trace_id=trace_id,
        span_id=bytes.fromhex(span.span_id),
        name=span.name,
        kind=span.kind,  # type: ignore[arg-type]  # spans.py's ints are OTLP's SpanKind
        start_time_unix_nano=span.start_ns,
        end_time_unix_nano=span.end_ns,
        attributes=key_values(span.attributes),
        status=Status(code=STATUS.get(span.status, Status.STATUS_CODE_UNSET)),
    )
    if span.parent_id:
        encoded.parent_span_id = bytes.fromhex(span.parent_id)
    if span.status_message:
        encoded.status.message = span.status_message
    for name, time_ns, attributes in span.events:
        encoded.events.add(name=name, time_unix_nano=time_ns, attributes=key_values(attributes))
    return encoded


def export_request(
    traces: Iterable[Finished], resource: Mapping[str, str]
) -> ExportTraceServiceRequest:
    """One request for the batch: one resource (the gateway), one scope (stackyard)."""
    return export_spans(((d.trace.trace_id, d.trace.all_spans()) for d in traces), resource)


def export_spans(
    traces: Iterable[tuple[str, list[Span]]], resource: Mapping[str, str]
) -> ExportTraceServiceRequest:
    """The same from each trace's id (hex) and spans: what an encoding process is sent."""
    spans = [
        otlp_span(span, trace_id)
        for hex_id, found in traces
        for trace_id in (bytes.fromhex(hex_id),)
        for span in found
    ]
    scope = InstrumentationScope(name="stackyard", version=__version__)
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=key_values(resource)),
                scope_spans=[ScopeSpans(scope=scope, spans=spans)],
            )
        ]
    )


def span_count(request: ExportTraceServiceRequest) -> int:
    return sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)


def to_json(request: ExportTraceServiceRequest) -> dict[str, Any]:
    """OTLP/JSON: protobuf's JSON mapping (lowerCamelCase keys, enums as integers, 64-bit
    integers as decimal strings), with trace and span ids as hex."""
    message: dict[str, Any] = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource in message.get("resourceSpans", ()):
        for scope in resource.get("scopeSpans", ()):
            for span in scope.get("spans", ()):
                _hex_ids(span)
                for link in span.get("links", ()):
                    _hex_ids(link)
    return message


def _hex_ids(fields: dict[str, Any]) -> None:
    for key in ID_FIELDS:
        if key in fields:
            fields[key] = base64.b64decode(fields[key]).hex()


def payload(traces: list[Finished], service_name: str) -> dict[str, Any]:
    """The traces as one OTLP/JSON request (what ``http/json`` sends)."""
    resource = {"service.name": service_name, "service.version": __version__}
    return to_json(export_request(traces, resource))
