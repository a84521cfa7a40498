"""RAG collections: their embedding model, chunking, sources and which index serves them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from stackyard.store.tables.base import Base, Timestamped


class CollectionRecord(Timestamped, Base):
    __tablename__ = "rag_collections"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
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
