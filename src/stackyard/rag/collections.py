"""Collections: named sets of documents with their own embedding model, chunking, vector
store and sources. The registry lives in the main database; the server serves it from a
snapshot reloaded on change notifications.

Names are per namespace: each team has its own, and so has the master key (collections with
no team). Two teams may each have a "docs"; neither can learn of the other's."""

from __future__ import annotations

import datetime as dt
import re
import threading
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from stackyard.errors import describe_validation
from stackyard.rag.rerank import RerankSpec
from stackyard.store.db import Database
from stackyard.store.tables.base import new_id
from stackyard.store.tables.rag import CollectionRecord

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class RagError(Exception):
    def __init__(self, status: int, message: str, *, code: str, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.param = param


class SourceSpec(BaseModel):
    """A folder (or one file) whose files are the collection's documents."""

    model_config = ConfigDict(extra="forbid")

    path: Annotated[str, Field(min_length=1)]
    glob: str = Field(default="**/*", description="Which files under the folder.")
    text_field: str = Field(default="text", description="CSV and JSONL: the text's field.")
    id_field: str | None = Field(default=None, description="CSV and JSONL: a row's id field.")


class CollectionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    embedding_model: Annotated[str, Field(min_length=1)]
    chunk_size: Annotated[int, Field(ge=16, le=8192)] = 200
    chunk_overlap: Annotated[int, Field(ge=0)] = 40
    store: str = "default"
    rerank: RerankSpec | None = Field(
        default=None, description="Rerank every query's candidates with this model."
    )
    sync_every: Annotated[int, Field(ge=60)] | None = Field(
        default=None,
        description="Seconds between the server's scheduled syncs (none: no schedule).",
    )
    sources: list[SourceSpec] = Field(default_factory=list)
    description: str = ""

    @model_validator(mode="after")
    def _overlap(self) -> CollectionSettings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        return self


@dataclass(frozen=True, slots=True)
class Collection:
    id: str
    name: str
    team_id: str | None
    settings: CollectionSettings
    active_index: str | None
    building_index: str | None
    last_sync: dict[str, Any] | None
    created_at: dt.datetime
    updated_at: dt.datetime

    def public(self) -> dict[str, Any]:
        return {
            "object": "collection",
            "id": self.id,
            "name": self.name,
            "team_id": self.team_id,
            **self.settings.model_dump(),
            "active_index": self.active_index,
            "building_index": self.building_index,
            "last_sync": self.last_sync,
            "created_at": int(self.created_at.timestamp()),
            "updated_at": int(self.updated_at.timestamp()),
        }


def settings_from(
    body: dict[str, Any], base: CollectionSettings | None = None
) -> CollectionSettings:
    merged = {**(base.model_dump() if base else {}), **body}
    try:
        return CollectionSettings.model_validate(merged)
    except ValidationError as exc:
        message, where = describe_validation(exc)
        raise RagError(400, message, code="invalid_collection", param=where) from None


def _collection(record: CollectionRecord) -> Collection:
    return Collection(
        record.id,
        record.name,
        record.team_id,
        CollectionSettings.model_validate(record.settings),
        record.active_index,
        record.building_index,
        record.last_sync,
        record.created_at,
        record.updated_at,
    )


#: A collection's place: its team (None: the master key's own namespace) and its name.
CollectionKey = tuple[str | None, str]


def _in_namespace(team_id: str | None) -> Any:
    return (
        CollectionRecord.team_id.is_(None)
        if team_id is None
        else (CollectionRecord.team_id == team_id)
    )


class Collections:
    """The registry. A name is unique within a namespace: a team's, or the master key's own
    (``team_id`` None). Lookups by name always say which namespace; nothing here searches
    across them."""

    def __init__(self, db: Database) -> None:
        self.db = db
        #: The snapshot the hot path reads (no database I/O), by (team_id, name).
        self.by_team_name: dict[CollectionKey, Collection] = {}
        self._version: tuple[object, ...] | None = None
        self._lock = threading.Lock()

    def load(self) -> bool:
        """Reload the snapshot if anything changed; return whether it did."""
        with self._lock, self.db.session() as session:
            version = tuple(
                session.execute(select(func.count(), func.max(CollectionRecord.updated_at))).one()
            )
            if version == self._version:
                return False
            records = session.scalars(select(CollectionRecord)).all()
            self.by_team_name = {(r.team_id, r.name): _collection(r) for r in records}
            self._version = version
            return True

    def find(self, name: str, team_id: str | None = None) -> Collection | None:
        """From the snapshot: ``name`` in ``team_id``'s namespace (None: the master key's)."""
        return self.by_team_name.get((team_id, name))

    def get(self, name: str, team_id: str | None = None) -> Collection:
        """From the database (for writers, which must not act on a stale snapshot): ``name``
        in ``team_id``'s namespace (None: the master key's)."""
        with self.db.session() as session:
            record = session.scalar(
                select(CollectionRecord).where(
                    CollectionRecord.name == name, _in_namespace(team_id)
                )
            )
            if record is None:
                raise RagError(404, f"no collection named '{name}'", code="collection_not_found")
            return _collection(record)

    def current(self, collection: Collection) -> Collection:
        """``collection`` as the database has it now (404 once deleted)."""
        with self.db.session() as session:
            return _collection(self._record(session, collection))

    def create(
        self, name: str, settings: CollectionSettings, team_id: str | None = None
    ) -> Collection:
        """A new collection in ``team_id``'s namespace (None: the master key's). A name taken
        there is a 409; a name another namespace has is none of the caller's business."""
        if not NAME.match(name):
            raise RagError(
                400,
                f"'{name}' is not a collection name (letters, digits, '_', '-', '.')",
                code="invalid_collection",
                param="name",
            )
        taken = RagError(409, f"a collection named '{name}' exists", code="collection_exists")
        try:
            with self.db.session() as session:
                exists = session.scalar(
                    select(CollectionRecord.id).where(
                        CollectionRecord.name == name, _in_namespace(team_id)
                    )
                )
                if exists is not None:
                    raise taken
                record = CollectionRecord(
                    id=new_id("col"),
                    name=name,
                    team_id=team_id,
                    settings=settings.model_dump(),
                )
                session.add(record)
                session.flush()
                created = _collection(record)
        except IntegrityError:  # created at the same moment by another request
            raise taken from None
        self.load()
        return created

    def update(self, collection: Collection, **fields: Any) -> Collection:
        """Change columns (``settings`` as a CollectionSettings)."""
        with self.db.session() as session:
            record = self._record(session, collection)
            for field, value in fields.items():
                if isinstance(value, CollectionSettings):
                    value = value.model_dump()
                setattr(record, field, value)
            record.updated_at = dt.datetime.now(dt.UTC)
            session.flush()
            updated = _collection(record)
        self.load()
        return updated

    def delete(self, collection: Collection) -> Collection:
        with self.db.session() as session:
            record = self._record(session, collection)
            gone = _collection(record)
            session.delete(record)
        self.load()
        return gone

    @staticmethod
    def _record(session: Any, collection: Collection) -> CollectionRecord:
        """The row of ``collection``, by its id (never by name: names repeat across teams)."""
        record = session.get(CollectionRecord, collection.id)
        if record is None:
            raise RagError(
                404, f"no collection named '{collection.name}'", code="collection_not_found"
            )
        return record  # type: ignore[no-any-return]
