"""Traces: one row per gateway request, with its spans, and the scores attached to it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from stackyard.store.tables.base import Base


class TraceRecord(Base):
    """A request as it passed the gateway, keyed by its root span's id. ``trace_id`` is shared
    by the requests a client groups into one trace (``traceparent`` or
    ``x-stackyard-trace-id``); ``request_id`` is the ``x-request-id`` the client saw (a client
    may send its own, so it is not unique)."""

    __tablename__ = "traces"
    __table_args__ = (
        Index("ix_traces_started", "started_at"),
        Index("ix_traces_trace", "trace_id"),
        Index("ix_traces_request", "request_id"),
        Index("ix_traces_session", "session_id"),
        Index("ix_traces_team_started", "team_id", "started_at"),
    )

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(128))
    trace_id: Mapped[str] = mapped_column(String(32))
    session_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[float] = mapped_column(Float)
    ttft_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    endpoint: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(200))
    deployment: Mapped[str | None] = mapped_column(String(200), nullable=True)
    provider: Mapped[str | None] = mapped_column(String(60), nullable=True)
    response_model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    team_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    status: Mapped[int] = mapped_column(Integer)
    error_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    stream: Mapped[bool] = mapped_column(Boolean, default=False)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    cache_hit: Mapped[bool] = mapped_column(Boolean, default=False)
    #: A hit's tier ("exact" or "semantic") and what it saved (USD): see RequestTrace.
    cache_tier: Mapped[str | None] = mapped_column(String(16), nullable=True)
    saved_usd: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    prompt_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    prompt_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    finish_reasons: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    tags: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    #: The client's metadata (``x-stackyard-metadata``), as JSON text: searchable with LIKE.
    metadata_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: "full" (bodies stored), "metadata" (not stored), "sampled-out" (not stored, by sampling)
    #: or "dropped" (shed under load).
    bodies: Mapped[str] = mapped_column(String(20))
    request_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    response_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    span_count: Mapped[int] = mapped_column(Integer, default=1)
    #: The request's spans (the root first), as JSON text: one row per request, not per span
    #: (the inserts of a row per span cost a tenth of the gateway's throughput).
    spans: Mapped[str] = mapped_column(Text)


class ScoreRecord(Base):
    """Feedback on a request: a named score from a user or an evaluator."""

    __tablename__ = "scores"
    __table_args__ = (
        Index("ix_scores_root", "root_id"),
        Index("ix_scores_name_time", "name", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: The request scored (``traces.id``).
    root_id: Mapped[str] = mapped_column(String(16))
    trace_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # "numeric", "boolean" or "categorical"
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    source: Mapped[str] = mapped_column(String(40))  # "user", "evaluator", "api"
    team_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
