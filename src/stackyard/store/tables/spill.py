"""The spill files' replay: how far each file moved aside at start-up has been written back
(see :mod:`stackyard.store.spill_replay`), updated in the transactions that write its rows."""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from stackyard.store.tables.base import Base


class SpillReplay(Base):
    __tablename__ = "spill_replays"

    #: The file's name (``stackyard-audit-unwritten.<time>-<random>.replaying``): its own.
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    #: Its lines done with, from the first: written, found in the store, or set aside.
    lines: Mapped[int] = mapped_column(Integer)
