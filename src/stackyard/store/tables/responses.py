"""Stored responses of OpenAI's Responses API (``store: true``): what a later request's
``previous_response_id`` continues, and what ``GET /v1/responses/{id}`` returns, per owner (a
team, or a key without one)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from stackyard.store.tables.base import Base


class StoredResponseRecord(Base):
    __tablename__ = "responses"
    __table_args__ = (Index("ix_responses_owner_created", "owner", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The team id, or the key id of a key without a team, or "" (the master key, an open
    #: gateway).
    owner: Mapped[str] = mapped_column(String(40))
    team_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    model: Mapped[str] = mapped_column(String(200))
    #: JSON: ``{"response", "items", "messages"}`` (the Response, this turn's input items,
    #: the conversation so far as chat messages), redacted as traces are.
    body: Mapped[str] = mapped_column(Text)
