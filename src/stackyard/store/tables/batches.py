"""Batches (``/v1/batches``): a file of requests run by the gateway in the background, and the
result of each line, so that a batch resumed after a restart never runs a finished line
twice."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from stackyard.store.tables.base import Base, utcnow


class BatchRecord(Base):
    __tablename__ = "batches"
    __table_args__ = (Index("ix_batches_status", "status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(60))
    input_file_id: Mapped[str] = mapped_column(String(40))
    completion_window: Mapped[str] = mapped_column(String(10))
    #: validating, in_progress, finalizing, completed, failed, expired, cancelling, cancelled
    status: Mapped[str] = mapped_column(String(20))
    #: Who runs the lines: the key's id (its limits and budgets apply), or "master", "open".
    key_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    team_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    output_file_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    error_file_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    errors: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)
    #: Which path ran it: "gateway" (each line through the pipeline).
    ran_by: Mapped[str] = mapped_column(String(20), default="gateway")
    #: The instance running it, and until when its lease holds (a lapsed lease: another
    #: instance takes the batch over and resumes it).
    runner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    #: When each status was reached: {"in_progress_at": epoch seconds, ...}.
    times: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class BatchLineRecord(Base):
    """One finished line: its answer (or error), in the output file's shape."""

    __tablename__ = "batch_lines"

    batch_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    ok: Mapped[int] = mapped_column(Integer)
    #: The output (or error) file's line, as JSON.
    result: Mapped[str] = mapped_column(Text)
