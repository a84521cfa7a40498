"""Prompts, their immutable versions, the labels that release them, and the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from stackyard.store.tables.base import Base, Timestamped


class Prompt(Timestamped, Base):
    __tablename__ = "prompts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    #: The team whose keys may change it (None: the master key's, changed by it alone).
    team_id: Mapped[str | None] = mapped_column(String(40), nullable=True)


class PromptVersion(Base):
    """Never updated once written."""

    __tablename__ = "prompt_versions"
    __table_args__ = (
        UniqueConstraint("prompt_id", "version", name="uq_prompt_versions_prompt_version"),
        UniqueConstraint("prompt_id", "content_hash", name="uq_prompt_versions_prompt_hash"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    prompt_id: Mapped[str] = mapped_column(ForeignKey("prompts.id"))
    version: Mapped[int] = mapped_column(Integer)
    #: The content: type, template or messages, variables, engine, config (PromptContent).
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    author: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class PromptLabel(Base):
    """A label points at one version, or splits traffic between several by weight."""

    __tablename__ = "prompt_labels"

    prompt_id: Mapped[str] = mapped_column(ForeignKey("prompts.id"), primary_key=True)
    label: Mapped[str] = mapped_column(String(100), primary_key=True)
    #: [{"version": 3, "weight": 90}, {"version": 4, "weight": 10}]
    targets: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    #: What a split is sticky on: "user" or "session" (None: random per request).
    sticky: Mapped[str | None] = mapped_column(String(20), nullable=True)
    #: An evaluation that must pass before the label moves (see the evaluation pillar).
    required_eval: Mapped[str | None] = mapped_column(String(200), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(200))


class PromptAudit(Base):
    __tablename__ = "prompt_audit"
    __table_args__ = (Index("ix_prompt_audit_prompt_time", "prompt_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    prompt_id: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(40))  # "push", "label", "rollback", "unlabel"
    label: Mapped[str | None] = mapped_column(String(100), nullable=True)
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
