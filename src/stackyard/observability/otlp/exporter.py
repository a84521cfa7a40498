"""The exporter: finished traces wait on a bounded queue and go to the collector in batches,
from a background task. Offering a trace only appends it to the queue; building the export
request, serialising and compressing it happen later, in a worker thread. A collector that is
down costs spans (counted in ``stackyard_otlp_spans_failed_total``), never requests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import pickle
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import orjson

from stackyard.observability.metrics import GatewayMetrics
from stackyard.observability.otlp.encode import export_request, export_spans
from stackyard.observability.otlp.settings import OTLPSettings
from stackyard.observability.otlp.transport import ExportFailed, Transport, transport
from stackyard.observability.spans import Span
from stackyard.observability.writer import Finished

log = logging.getLogger("stackyard.otlp")

TRIES = 3


class OTLPExporter:
    def __init__(
        self,
        settings: OTLPSettings,
        metrics: GatewayMetrics,
        *,
        max_queue: int = 20_000,
        batch_size: int = 512,
        interval: float = 1.0,
    ) -> None:
        self.settings = settings
        self.transport = transport(settings)
        self.metrics = metrics
        self.batch_size = batch_size
        self.interval = interval
        self.pending: deque[Finished] = deque()
        self.max_queue = max_queue
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        #: ``encoder: process``: batches are encoded in a process of their own (spawned, so
        #: that it inherits none of the server's threads).
        self._pool: ProcessPoolExecutor | None = None
        if settings.encoder == "process":
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(1, mp_context=context)

    def offer(self, row: Finished) -> bool:
        """Queue a trace for export (the request path: no encoding, no I/O)."""
        if len(self.pending) >= self.max_queue:
            self.metrics.spans_export_failed.inc(by=1 + len(row.trace.spans))
            return False
        self.pending.append(row)
        if len(self.pending) >= self.batch_size:
            self._wake.set()
        return True

    def start(self) -> None:
        self.transport.start()
        if self._pool is not None:  # started now, so that the first batch need not wait
            self._pool.submit(encode_elsewhere, self.settings, hand_off([]))
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

    def _encode(self, batch: list[Finished]) -> object:
        return self.transport.encode(export_request(batch, self.settings.resource))

    async def _encoded(self, batch: list[Finished]) -> object:
        if self._pool is None:
            return await asyncio.to_thread(self._encode, batch)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, encode_elsewhere, self.settings, hand_off(batch)
        )

    async def _send(self, batch: list[Finished]) -> None:
        count = sum(1 + len(f.trace.spans) for f in batch)
        try:
            payload = await self._encoded(batch)
        except Exception:  # a span we cannot encode must not stop the exporter
            log.exception("OTLP: could not encode %d spans", count)
            self.metrics.spans_export_failed.inc(by=count)
            return
        for attempt in range(TRIES):
            try:
                rejected = await self.transport.send(payload)
            except ExportFailed as exc:
                log.warning("OTLP export failed: %s", exc)
                if not exc.retryable or attempt == TRIES - 1:
                    break
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            if rejected:
                log.warning("OTLP collector rejected %d of %d spans", rejected, count)
                self.metrics.spans_export_failed.inc(by=rejected)
            self.metrics.spans_exported.inc(by=count - rejected)
            return
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
            await self.transport.close()
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)


#: The encoding process's transport (built once, from the first batch's settings).
_transport: Transport | None = None


def hand_off(batch: list[Finished]) -> bytes:
    """What the encoding process reads of a batch: each trace's id and its spans' fields, as
    plain values in one JSON document. The pool would otherwise pickle the spans, slotted
    dataclasses, in its feeder thread, which holds the server's interpreter lock 7 times as
    long as orjson does here (measured by ``benchmarks.otlp``); JSON cannot hold bytes or a
    64-bit-overflowing int in an attribute, and those rare batches go pickled."""
    plain = [
        (
            f.trace.trace_id,
            [
                (s.name, s.span_id, s.parent_id, s.start_ns, s.end_ns, s.kind, s.status,
                 s.status_message, s.attributes, s.events)
                for s in f.trace.all_spans()
            ],
        )
        for f in batch
    ]  # fmt: skip
    try:
        return b"j" + orjson.dumps(plain)
    except TypeError:
        return b"p" + pickle.dumps(plain, protocol=pickle.HIGHEST_PROTOCOL)


def handed(data: bytes) -> list[tuple[str, list[Span]]]:
    """:func:`hand_off`'s spans, read back in the encoding process."""
    plain = orjson.loads(data[1:]) if data[:1] == b"j" else pickle.loads(data[1:])
    return [(trace_id, [Span(*fields) for fields in spans]) for trace_id, spans in plain]


def encode_elsewhere(settings: OTLPSettings, data: bytes) -> Any:
    """In the encoding process: a batch's spans as the transport sends them."""
    global _transport
    if _transport is None:
        _transport = transport(settings)
    return _transport.encode(export_spans(handed(data), settings.resource))
