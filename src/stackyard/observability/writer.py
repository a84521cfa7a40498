"""The trace writer: finished traces go on a bounded queue and are written in batches, one
row per request with its spans, off the request path. Bodies are redacted and encoded here,
in the worker thread. A full queue drops the trace (counted), never the request. A trace the
database refused is spilled as its row, and read back at the next start as a
:class:`SpilledTrace` (that row, already redacted and encoded)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection

from stackyard.observability.metrics import GatewayMetrics
from stackyard.observability.redact import Redactor, known, strings
from stackyard.observability.spans import RequestTrace, Span
from stackyard.store.batch_writer import BatchWriter
from stackyard.store.spend_writer import SQLITE_TIME, db_time, insert_rows

TRACE_COLUMNS = (
    "id",
    "request_id",
    "trace_id",
    "session_id",
    "started_at",
    "duration_ms",
    "ttft_ms",
    "endpoint",
    "model",
    "deployment",
    "provider",
    "response_model",
    "key_id",
    "team_id",
    "user_id",
    "status",
    "error_type",
    "stream",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cache_hit",
    "cache_tier",
    "saved_usd",
    "attempts",
    "prompt_name",
    "prompt_version",
    "finish_reasons",
    "tags",
    "metadata_json",
    "bodies",
    "request_body",
    "response_body",
    "span_count",
    "spans",
)


#: Columns added since spill files were first written, with the value an older spill's row
#: takes (a spill written before an upgrade is replayed after it).
ADDED_COLUMNS: dict[str, Any] = {"cache_tier": None, "saved_usd": 0.0}


@dataclass(slots=True)
class Finished:
    """A request's trace with what was learnt at its end."""

    trace: RequestTrace
    key_id: str | None
    team_id: str | None
    user_id: str | None
    status: int
    error_type: str | None
    deployment: str | None
    provider: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cache_hit: bool
    attempts: int
    #: "full", "metadata" or "sampled-out"
    bodies: str

    @property
    def duration_ms(self) -> float:
        root = self.trace.root
        return (root.end_ns - root.start_ns) / 1e6

    @property
    def ttft_ms(self) -> float | None:
        first = self.trace.first_chunk_ns
        return None if first is None else (first - self.trace.root.start_ns) / 1e6


#: Where ``started_at`` is in a trace's row.
STARTED_AT = TRACE_COLUMNS.index("started_at")


@dataclass(slots=True)
class SpilledTrace:
    """A trace's row read back from the spill file: its values in ``TRACE_COLUMNS`` order, as
    they were written there (redacted and encoded), ``started_at`` a UTC datetime."""

    values: tuple[Any, ...]

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> SpilledTrace:
        missing = [n for n in TRACE_COLUMNS if n not in record and n not in ADDED_COLUMNS]
        if missing:
            raise ValueError(f"no {', '.join(missing)}")
        values = [record.get(name, ADDED_COLUMNS.get(name)) for name in TRACE_COLUMNS]
        started = values[STARTED_AT]
        if not isinstance(started, str):
            raise ValueError("started_at is not a time")
        values[STARTED_AT] = dt.datetime.strptime(started, SQLITE_TIME).replace(tzinfo=dt.UTC)
        return cls(tuple(values))

    def row(self, sqlite: bool) -> tuple[Any, ...]:
        values = list(self.values)
        started: dt.datetime = values[STARTED_AT]
        values[STARTED_AT] = started.strftime(SQLITE_TIME) if sqlite else started
        return tuple(values)


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, default=str).decode()


def span_dict(span: Span) -> dict[str, Any]:
    encoded: dict[str, Any] = {
        "span_id": span.span_id,
        "parent_id": span.parent_id,
        "name": span.name,
        "kind": span.kind,
        "start_ns": span.start_ns,
        "end_ns": span.end_ns,
        "status": span.status,
        "attributes": span.attributes,
    }
    if span.status_message is not None:
        encoded["status_message"] = span.status_message
    if span.events:
        encoded["events"] = [{"name": n, "time_ns": t, "attributes": a} for n, t, a in span.events]
    return encoded


class TraceWriter(BatchWriter[Finished | SpilledTrace]):
    what = "traces"
    spill_name = "traces"
    table = "traces"
    columns = TRACE_COLUMNS

    def __init__(
        self,
        *args: Any,
        redactor: Redactor | None = None,
        metrics: GatewayMetrics | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.redactor = redactor or Redactor(pii=False)
        self.metrics = metrics

    def written_rows(self, rows: Sequence[Finished | SpilledTrace]) -> None:
        if self.metrics is not None:
            self.metrics.traces_written.inc(by=len(rows))

    def body(self, value: Any, private: Callable[[str], str] | None = None) -> str | None:
        if value is None:
            return None
        # what the PII rail found is redacted even where the patterns are off (redact_pii)
        if private is not None or self.redactor.active:
            value = self.redactor.value(value, private)
        return _json(value)

    def trace_row(self, done: Finished | SpilledTrace, sqlite: bool) -> tuple[Any, ...]:
        if isinstance(done, SpilledTrace):
            return done.row(sqlite)
        trace = done.trace
        full = done.bodies == "full"
        found = trace.private
        if full and trace.find_private is not None:  # the policy's detectors, run here
            texts = strings(trace.body) + strings(trace.response)
            found = {**(found or {}), **trace.find_private(texts)}
        private = known(found) if full and found else None
        metadata = trace.metadata
        if metadata is not None and self.redactor.active:
            metadata = self.redactor.value(metadata)
        return (
            trace.root.span_id,
            trace.request_id,
            trace.trace_id,
            trace.session_id,
            db_time(trace.root.start_ns / 1e9, sqlite),
            done.duration_ms,
            done.ttft_ms,
            trace.endpoint,
            trace.model[:200],
            done.deployment,
            done.provider,
            trace.response_model,
            done.key_id,
            done.team_id,
            done.user_id,
            done.status,
            done.error_type,
            trace.stream,
            done.input_tokens,
            done.output_tokens,
            done.cost_usd,
            done.cache_hit,
            trace.cache_tier,
            trace.cache_saved_usd,
            done.attempts,
            trace.prompt_name,
            trace.prompt_version,
            _json(trace.finish_reasons),
            _json(trace.tags),
            _json(metadata),
            done.bodies,
            self.body(trace.body, private) if full else None,
            self.body(trace.response, private) if full else None,
            1 + len(trace.spans),
            orjson.dumps([span_dict(s) for s in trace.all_spans()], default=str).decode(),
        )

    def insert(self, rows: Sequence[Finished | SpilledTrace]) -> None:
        sqlite = self.db.engine.dialect.name == "sqlite"
        traces = [self.trace_row(done, sqlite) for done in rows]
        with self.db.engine.begin() as connection:
            insert_rows(connection, "traces", TRACE_COLUMNS, traces)

    def write(self, connection: Connection, rows: Sequence[Finished | SpilledTrace]) -> None:
        sqlite = connection.dialect.name == "sqlite"
        traces = [self.trace_row(done, sqlite) for done in rows]
        insert_rows(connection, "traces", TRACE_COLUMNS, traces)

    def spill_record(self, row: Finished | SpilledTrace) -> dict[str, Any]:
        return dict(zip(TRACE_COLUMNS, self.trace_row(row, sqlite=True), strict=True))

    def from_spill_record(self, record: dict[str, Any]) -> SpilledTrace:
        return SpilledTrace.from_record(record)
