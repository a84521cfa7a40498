"""Uploaded files (``/v1/files``), fine-tuning jobs and their events."""

from __future__ import annotations

import builtins
import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from stackyard.store.tables.base import Base, utcnow


class FileRecord(Base):
    __tablename__ = "files"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    filename: Mapped[str] = mapped_column(String(300))
    purpose: Mapped[str] = mapped_column(String(40))
    bytes: Mapped[int] = mapped_column(Integer)
    content: Mapped[builtins.bytes] = mapped_column(LargeBinary)
    team_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JobRecord(Base):
    __tablename__ = "finetune_jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: The gateway model tuned (a local chat model's name).
    model: Mapped[str] = mapped_column(String(200))
    training_file: Mapped[str] = mapped_column(String(40))
    validation_file: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: Settings (finetune.settings.Settings), as resolved at creation.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    suffix: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(20))
    #: What the owner asked of a running job: "cancel" or "pause" (None: carry on).
    control: Mapped[str | None] = mapped_column(String(10), nullable=True)
    fine_tuned_model: Mapped[str | None] = mapped_column(String(300), nullable=True)
    #: When ``fine_tuned_model`` was deleted (``DELETE /v1/models/{id}``): no instance serves
    #: it any more. The job keeps its name, as OpenAI's jobs do.
    model_deleted_at: Mapped[dt.datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    adapter_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    trained_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    result_files: Mapped[list[str]] = mapped_column(JSON, default=list)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)
    team_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: The worker running it, and when it last said so (a stale heartbeat: restart it).
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    estimated_finish: Mapped[dt.datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class JobEvent(Base):
    __tablename__ = "finetune_events"
    __table_args__ = (Index("ix_finetune_events_job_seq", "job_id", "seq"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("finetune_jobs.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(Text)
    #: The event as the trainer emitted it (metrics, checkpoint, evaluation...).
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WeightsPart(Base):
    """A tuned model's files (a LoRA adapter, or a whole model), as a tar cut into parts, so
    that every instance can serve it, not only the machine that trained it."""

    __tablename__ = "finetune_weights"

    #: The model id it serves as: the job's model, or one of its checkpoints.
    name: Mapped[str] = mapped_column(String(300), primary_key=True)
    part: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("finetune_jobs.id", ondelete="CASCADE"))
    #: "adapter" (served on its base's engine) or "model" (a model directory of its own).
    kind: Mapped[str] = mapped_column(String(10))
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    content: Mapped[builtins.bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
