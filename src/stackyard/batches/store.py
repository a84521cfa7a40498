"""Batches in the store: created, claimed by one instance at a time (a lease it renews), each
finished line recorded with its result in the same transaction as the batch's counts, so that
a batch resumed after a restart or on another instance never runs a finished line twice."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import orjson
from sqlalchemy import and_, or_, select, update
from sqlalchemy import delete as sa_delete

from stackyard.store.db import Database
from stackyard.store.tables.batches import BatchLineRecord, BatchRecord

#: The endpoints an OpenAI batch (``/v1/batches``) may run, by the path a line names.
OPENAI_ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings", "/v1/responses", "/v1/completions")
#: The endpoint of an Anthropic Message Batch (``/v1/messages/batches``).
MESSAGES = "/v1/messages"
#: Every endpoint a batch's lines may run.
ENDPOINTS = (*OPENAI_ENDPOINTS, MESSAGES)
#: The one completion window offered, as OpenAI's.
WINDOW = "24h"
WINDOW_SECONDS = 24 * 3600
#: Statuses a runner still has work in.
ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
#: Statuses with a time the Batch object reports (``in_progress_at``...).
TIMED = (
    "in_progress",
    "finalizing",
    "completed",
    "failed",
    "expired",
    "cancelling",
    "cancelled",
)


def epoch(value: dt.datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp())


def public(record: BatchRecord) -> dict[str, Any]:
    """OpenAI's Batch object."""
    out: dict[str, Any] = {
        "id": record.id,
        "object": "batch",
        "endpoint": record.endpoint,
        "errors": record.errors,
        "input_file_id": record.input_file_id,
        "completion_window": record.completion_window,
        "status": record.status,
        "output_file_id": record.output_file_id,
        "error_file_id": record.error_file_id,
        "created_at": epoch(record.created_at),
        "expires_at": epoch(record.expires_at),
        "request_counts": {
            "total": record.total,
            "completed": record.completed,
            "failed": record.failed,
        },
        "metadata": record.metadata_,
    }
    times = record.times or {}
    for status in TIMED:
        at = times.get(f"{status}_at")
        out[f"{status}_at"] = int(at) if at is not None else None
    return out


class BatchNotFound(LookupError):
    pass


class BatchStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        *,
        endpoint: str,
        input_file_id: str,
        key_id: str | None,
        team_id: str | None,
        total: int,
        metadata: dict[str, Any] | None,
        prefix: str = "batch_",
    ) -> BatchRecord:
        now = dt.datetime.now(dt.UTC)
        record = BatchRecord(
            id=f"{prefix}{secrets.token_hex(12)}",
            endpoint=endpoint,
            input_file_id=input_file_id,
            completion_window=WINDOW,
            status="validating",
            key_id=key_id,
            team_id=team_id,
            total=total,
            completed=0,
            failed=0,
            metadata_=metadata,
            ran_by="gateway",
            created_at=now,
            expires_at=now + dt.timedelta(seconds=WINDOW_SECONDS),
            times={},
        )
        with self.db.session() as session:
            session.add(record)
            session.commit()
            session.expunge(record)
            return record

    def _find(
        self,
        session: Any,
        batch_id: str,
        team_id: str | None,
        admin: bool,
        endpoints: tuple[str, ...],
    ) -> BatchRecord:
        record = session.get(BatchRecord, batch_id)
        if (
            record is None
            or (not admin and record.team_id != team_id)
            or record.endpoint not in endpoints
        ):
            raise BatchNotFound(batch_id)
        return record  # type: ignore[no-any-return]

    def get(
        self,
        batch_id: str,
        *,
        team_id: str | None = None,
        admin: bool = True,
        endpoints: tuple[str, ...],
    ) -> BatchRecord:
        with self.db.session() as session:
            record = self._find(session, batch_id, team_id, admin, endpoints)
            session.expunge(record)
            return record

    def delete(
        self, batch_id: str, *, team_id: str | None, admin: bool, endpoints: tuple[str, ...]
    ) -> None:
        """Forget a batch and its lines' results (the caller checks that it has ended)."""
        with self.db.session() as session:
            record = self._find(session, batch_id, team_id, admin, endpoints)
            session.execute(sa_delete(BatchLineRecord).where(BatchLineRecord.batch_id == batch_id))
            session.delete(record)
            session.commit()

    def record(self, batch_id: str) -> BatchRecord:
        with self.db.session() as session:
            record = session.get(BatchRecord, batch_id)
            if record is None:
                raise BatchNotFound(batch_id)
            session.expunge(record)
            return record

    def page(
        self,
        *,
        team_id: str | None = None,
        admin: bool = True,
        after: str | None = None,
        before: str | None = None,
        limit: int = 20,
        endpoints: tuple[str, ...],
    ) -> tuple[list[BatchRecord], bool]:
        """Newest first, ``limit`` of them after the batch ``after`` (older than it) or before
        the batch ``before`` (newer, the ``limit`` nearest it); and whether more follow."""
        with self.db.session() as session:
            newest = (BatchRecord.created_at.desc(), BatchRecord.id.desc())
            query = select(BatchRecord).where(BatchRecord.endpoint.in_(endpoints))
            if not admin:
                query = query.where(BatchRecord.team_id == team_id)
            if after is not None:
                anchor = self._find(session, after, team_id, admin, endpoints)
                query = query.where(
                    or_(
                        BatchRecord.created_at < anchor.created_at,
                        and_(
                            BatchRecord.created_at == anchor.created_at,
                            BatchRecord.id < anchor.id,
                        ),
                    )
                ).order_by(*newest)
            elif before is not None:
                anchor = self._find(session, before, team_id, admin, endpoints)
                query = query.where(
                    or_(
                        BatchRecord.created_at > anchor.created_at,
                        and_(
                            BatchRecord.created_at == anchor.created_at,
                            BatchRecord.id > anchor.id,
                        ),
                    )
                ).order_by(BatchRecord.created_at, BatchRecord.id)
            else:
                query = query.order_by(*newest)
            rows = list(session.scalars(query.limit(limit + 1)))
            for row in rows:
                session.expunge(row)
            page = rows[:limit]
            if before is not None:
                page.reverse()
            return page, len(rows) > limit

    def cancel(
        self,
        batch_id: str,
        *,
        team_id: str | None,
        admin: bool,
        endpoints: tuple[str, ...],
    ) -> BatchRecord:
        """Ask a batch to stop: ``cancelling`` until its runner has stopped its lines."""
        with self.db.session() as session:
            record = self._find(session, batch_id, team_id, admin, endpoints)
            if record.status in ("validating", "in_progress"):
                self._move(record, "cancelling")
                session.commit()
            session.expunge(record)
            return record

    @staticmethod
    def _move(record: BatchRecord, status: str) -> None:
        record.status = status
        if status in TIMED:
            record.times = {
                **(record.times or {}),
                f"{status}_at": dt.datetime.now(dt.UTC).timestamp(),
            }

    def move(self, batch_id: str, status: str, **fields: Any) -> None:
        with self.db.session() as session:
            record = session.get(BatchRecord, batch_id)
            if record is None:
                raise BatchNotFound(batch_id)
            self._move(record, status)
            for name, value in fields.items():
                setattr(record, name, value)
            session.commit()

    def claim(self, runner: str, lease: float) -> str | None:
        """Take one unfinished batch whose lease has lapsed (or that is this runner's)."""
        now = dt.datetime.now(dt.UTC)
        with self.db.session() as session:
            candidates = session.scalars(
                select(BatchRecord.id)
                .where(BatchRecord.status.in_(ACTIVE))
                .where(
                    or_(
                        BatchRecord.runner.is_(None),
                        BatchRecord.runner == runner,
                        BatchRecord.lease_until < now,
                    )
                )
                .order_by(BatchRecord.created_at)
                .limit(5)
            ).all()
            # One transaction, committed as the block ends: a commit inside it would close it,
            # and the next candidate's update would then fail.
            for batch_id in candidates:
                taken = session.execute(
                    update(BatchRecord)
                    .where(BatchRecord.id == batch_id)
                    .where(
                        or_(
                            BatchRecord.runner.is_(None),
                            BatchRecord.runner == runner,
                            BatchRecord.lease_until < now,
                        )
                    )
                    .values(runner=runner, lease_until=now + dt.timedelta(seconds=lease))
                )
                if taken.rowcount:  # type: ignore[attr-defined]
                    return str(batch_id)
        return None

    def renew(self, batch_id: str, runner: str, lease: float) -> str | None:
        """Hold the lease a while longer; the batch's status, or None if it is no longer ours."""
        until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lease)
        with self.db.session() as session:  # one transaction, committed as the block ends
            done = session.execute(
                update(BatchRecord)
                .where(BatchRecord.id == batch_id, BatchRecord.runner == runner)
                .values(lease_until=until)
            )
            if not done.rowcount:  # type: ignore[attr-defined]
                return None
            status = session.scalar(select(BatchRecord.status).where(BatchRecord.id == batch_id))
            return str(status) if status is not None else None

    def release(self, batch_id: str, runner: str) -> None:
        with self.db.session() as session:
            session.execute(
                update(BatchRecord)
                .where(BatchRecord.id == batch_id, BatchRecord.runner == runner)
                .values(runner=None, lease_until=None)
            )
            session.commit()

    def done_lines(self, batch_id: str) -> set[int]:
        with self.db.session() as session:
            return set(
                session.scalars(
                    select(BatchLineRecord.line).where(BatchLineRecord.batch_id == batch_id)
                )
            )

    def finish_line(self, batch_id: str, line: int, ok: bool, result: dict[str, Any]) -> None:
        """Record a line's result and count it, in one transaction (a line recorded twice, by
        a runner that lost its lease, is counted once: the primary key refuses the second)."""
        with self.db.session() as session:
            if session.get(BatchLineRecord, (batch_id, line)) is not None:
                return
            session.add(
                BatchLineRecord(
                    batch_id=batch_id, line=line, ok=int(ok), result=orjson.dumps(result).decode()
                )
            )
            column = BatchRecord.completed if ok else BatchRecord.failed
            session.execute(
                update(BatchRecord)
                .where(BatchRecord.id == batch_id)
                .values({column.key: column + 1})
            )
            session.commit()

    def results(self, batch_id: str) -> list[tuple[int, bool, str]]:
        with self.db.session() as session:
            rows = session.execute(
                select(BatchLineRecord.line, BatchLineRecord.ok, BatchLineRecord.result)
                .where(BatchLineRecord.batch_id == batch_id)
                .order_by(BatchLineRecord.line)
            ).all()
            return [(int(line), bool(ok), str(result)) for line, ok, result in rows]
