"""The console's sessions: an opaque id in the browser's cookie, everything else here."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from stackyard.store.tables.base import Base


class ConsoleSession(Base):
    __tablename__ = "console_sessions"

    #: The sha256 of the cookie's token (the token itself is never stored).
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: Who logged in: "master", or "key:" and the sha256 of the key (as virtual_keys stores
    #: it); never the key.
    subject: Mapped[str] = mapped_column(String(80))
    #: The anti-forgery token every form of this session carries.
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_console_sessions_expires_at", "expires_at"),)
