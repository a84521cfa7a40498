"""RAG collections: their embedding model, chunking, sources and which index serves them.

A collection's name is unique within its team (``team_id``); the master key's own collections
(no team) are a namespace too. Two teams may each have a collection of one name."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from stackyard.store.tables.base import Base, Timestamped

#: The master key's namespace: NULL team ids are never equal in a unique constraint (on SQLite
#: and PostgreSQL alike), so its names are unique through this partial index.
MASTER_NAMES = text("team_id IS NULL")


class CollectionRecord(Timestamped, Base):
    __tablename__ = "rag_collections"
    __table_args__ = (
        UniqueConstraint("team_id", "name", name="uq_rag_collections_team_id_name"),
        Index(
            "uq_rag_collections_master_name",
            "name",
            unique=True,
            sqlite_where=MASTER_NAMES,
            postgresql_where=MASTER_NAMES,
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    #: The team whose keys may use and change it (None: the master key's only).
    team_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: CollectionSettings: embedding model, chunking, vector store, sources.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: The index that queries read (None until the first sync finishes).
    active_index: Mapped[str | None] = mapped_column(String(300), nullable=True)
    #: A shadow index being built for a new embedding model (swapped in when complete).
    building_index: Mapped[str | None] = mapped_column(String(300), nullable=True)
    #: The last sync's report.
    last_sync: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
