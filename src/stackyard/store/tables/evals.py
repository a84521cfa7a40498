"""Evaluation runs (experiments) recorded by ``stackyard eval run`` or through the API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from stackyard.store.tables.base import Base


class EvalRun(Base):
    __tablename__ = "eval_runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: The evaluation's name (the file's ``name``): runs of one name are one experiment.
    name: Mapped[str] = mapped_column(String(200))
    #: What was evaluated, as the runner describes it: ``prompt:label on model``.
    target: Mapped[str] = mapped_column(String(400))
    #: The registry prompt and the version that answered (most items), if a prompt was used.
    prompt: Mapped[str | None] = mapped_column(String(200), nullable=True)
    prompt_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: The gate's verdict; None for a run recorded without one (a baseline).
    passed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    baseline_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    team_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    #: Means per scorer, counts, cost, latency, and the gate's checks.
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: The whole run: every item's output, scores and reasons.
    run: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_eval_runs_name_created", "name", "created_at"),
        Index("ix_eval_runs_prompt", "prompt", "prompt_version"),
    )
