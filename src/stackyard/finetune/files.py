"""Files for fine-tuning (``/v1/files``), kept in the database so that every instance (and
every job worker) reads the same bytes."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import defer

from stackyard.store.db import Database
from stackyard.store.tables.finetune import FileRecord

PURPOSES = frozenset({"fine-tune", "fine-tune-results", "batch", "user_data", "assistants"})


class FileNotFound(LookupError):
    pass


def public(record: FileRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "object": "file",
        "bytes": record.bytes,
        "created_at": int(record.created_at.timestamp()),
        "filename": record.filename,
        "purpose": record.purpose,
        "status": "processed",
        "expires_at": None,
        "status_details": None,
    }


class Files:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self, filename: str, purpose: str, content: bytes, team_id: str | None = None
    ) -> dict[str, Any]:
        record = FileRecord(
            id="file-" + uuid.uuid4().hex[:24],
            filename=filename[:300],
            purpose=purpose,
            bytes=len(content),
            content=content,
            team_id=team_id,
            created_at=dt.datetime.now(dt.UTC),
        )
        with self.db.session() as session:
            session.add(record)
            session.flush()
            return public(record)

    def _get(self, session: Any, file_id: str, team_id: str | None, admin: bool) -> FileRecord:
        record = session.get(FileRecord, file_id)
        if record is None or not (admin or record.team_id == team_id):
            raise FileNotFound(file_id)
        return record  # type: ignore[no-any-return]

    def get(
        self, file_id: str, *, team_id: str | None = None, admin: bool = True
    ) -> dict[str, Any]:
        with self.db.session() as session:
            return public(self._get(session, file_id, team_id, admin))

    def content(self, file_id: str, *, team_id: str | None = None, admin: bool = True) -> bytes:
        with self.db.session() as session:
            return self._get(session, file_id, team_id, admin).content

    def all(
        self, *, team_id: str | None = None, admin: bool = True, purpose: str | None = None
    ) -> list[dict[str, Any]]:
        with self.db.session() as session:
            query = (
                select(FileRecord)
                .options(defer(FileRecord.content))
                .order_by(FileRecord.created_at.desc())
            )
            if not admin:
                query = query.where(FileRecord.team_id == team_id)
            if purpose:
                query = query.where(FileRecord.purpose == purpose)
            return [public(r) for r in session.scalars(query)]

    def delete(self, file_id: str, *, team_id: str | None = None, admin: bool = True) -> None:
        with self.db.session() as session:
            self._get(session, file_id, team_id, admin)
            session.execute(delete(FileRecord).where(FileRecord.id == file_id))
