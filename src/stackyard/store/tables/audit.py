"""The guardrails' audit log: one row per decision a rail took on a request (what it found and
did, never the values it found), per team."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from stackyard.store.tables.base import Base


class GuardrailDecision(Base):
    __tablename__ = "guardrail_audit"
    __table_args__ = (Index("ix_guardrail_audit_team_time", "team_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    team_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    model: Mapped[str] = mapped_column(String(200))
    endpoint: Mapped[str] = mapped_column(String(40))
    rail: Mapped[str] = mapped_column(String(40))  # pii, secrets, secrets_output, injection, json
    action: Mapped[str] = mapped_column(String(40))  # block, redact, warn, log, repaired, ...
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
