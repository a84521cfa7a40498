"""Export of spans to any OpenTelemetry collector: OTLP over HTTP with the JSON encoding
(``POST {endpoint}`` with ``resourceSpans``), in batches, from a background task. A collector
that is down costs spans (counted in ``stackyard_otlp_spans_failed_total``), never requests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

import aiohttp
import orjson

from stackyard import __version__
from stackyard.config.schema import OTLPConfig
from stackyard.observability.metrics import GatewayMetrics
from stackyard.observability.spans import Span
from stackyard.observability.writer import Finished

log = logging.getLogger("stackyard.otlp")

STATUS = {"ok": 1, "error": 2}  # OTLP StatusCode: OK, ERROR


def any_value(value: Any) -> dict[str, Any]:
    """A Python value as an OTLP ``AnyValue``."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": key_values(value)}}
    return {"stringValue": str(value)}


def key_values(attributes: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": any_value(v)} for k, v in attributes.items() if v is not None]


def otlp_span(span: Span, trace_id: str) -> dict[str, Any]:
    encoded: dict[str, Any] = {
        "traceId": trace_id,
        "spanId": span.span_id,
        "name": span.name,
        "kind": span.kind,
        "startTimeUnixNano": str(span.start_ns),
        "endTimeUnixNano": str(span.end_ns),
        "attributes": key_values(span.attributes),
        "status": {"code": STATUS.get(span.status, 0)},
    }
    if span.parent_id:
        encoded["parentSpanId"] = span.parent_id
    if span.status_message:
        encoded["status"]["message"] = span.status_message
    if span.events:
        encoded["events"] = [
            {"timeUnixNano": str(t), "name": n, "attributes": key_values(a)}
            for n, t, a in span.events
        ]
    return encoded


def payload(traces: list[Finished], service_name: str) -> dict[str, Any]:
    spans = [otlp_span(s, f.trace.trace_id) for f in traces for s in f.trace.all_spans()]
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": key_values(
                        {"service.name": service_name, "service.version": __version__}
                    )
                },
                "scopeSpans": [
                    {"scope": {"name": "stackyard", "version": __version__}, "spans": spans}
                ],
            }
        ]
    }


class OTLPExporter:
    def __init__(
        self,
        config: OTLPConfig,
        metrics: GatewayMetrics,
        *,
        max_queue: int = 20_000,
        batch_size: int = 512,
        interval: float = 1.0,
    ) -> None:
        assert config.endpoint, "an exporter needs an endpoint"
        self.endpoint = config.endpoint
        self.config = config
        self.metrics = metrics
        self.batch_size = batch_size
        self.interval = interval
        self.pending: deque[Finished] = deque()
        self.max_queue = max_queue
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._stopping = False

    def offer(self, row: Finished) -> bool:
        if len(self.pending) >= self.max_queue:
            self.metrics.spans_export_failed.inc(by=1 + len(row.trace.spans))
            return False
        self.pending.append(row)
        if len(self.pending) >= self.batch_size:
            self._wake.set()
        return True

    def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.timeout)
        )
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        while self.pending:
            batch = [self.pending.popleft() for _ in range(min(self.batch_size, len(self.pending)))]
            await self._send(batch)

    async def _send(self, batch: list[Finished]) -> None:
        count = sum(1 + len(f.trace.spans) for f in batch)
        body = orjson.dumps(payload(batch, self.config.service_name))
        headers = {"content-type": "application/json", **self.config.headers}
        assert self._session is not None
        for attempt in range(3):
            try:
                async with self._session.post(self.endpoint, data=body, headers=headers) as reply:
                    if reply.status < 300:
                        self.metrics.spans_exported.inc(by=count)
                        return
                    retryable = reply.status in (429, 502, 503, 504)
                    log.warning("OTLP collector answered %d: %s", reply.status, await reply.text())
            except (aiohttp.ClientError, TimeoutError) as exc:
                retryable = True
                log.warning("OTLP export to %s failed: %s", self.endpoint, exc)
            if not retryable:
                break
            await asyncio.sleep(0.2 * 2**attempt)
        self.metrics.spans_export_failed.inc(by=count)

    async def close(self) -> None:
        """Send what is pending, then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        try:
            await self.flush()
        finally:
            if self._session is not None:
                await self._session.close()
