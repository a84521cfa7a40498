"""The console's sessions, kept on the server: the browser's cookie holds an opaque random
token, the store holds its sha256, who logged in (the master key, or the sha256 of a virtual
key: never a key), an anti-forgery token for the session's forms, and when it ends.

A session ends at logout, after ``lifetime`` whatever happens, after ``idle`` without a page,
and as soon as its key is revoked or expires (the pages check the key on every request). The
store is the database, so every worker and instance knows every session; each keeps what it
read for a few seconds, so that a page costs no query (a logout reaches other workers within
that time).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets
import time

from sqlalchemy import delete, select, update

from stackyard.store.db import Database
from stackyard.store.tables import ConsoleSession
from stackyard.store.tables.base import aware, utcnow

#: Seconds a worker trusts what it read of a session before reading it again.
CACHE_SECONDS = 5.0
#: A session's last-seen time is written at most this often (seconds).
TOUCH_SECONDS = 60.0


@dataclasses.dataclass(frozen=True, slots=True)
class Session:
    id: str
    subject: str
    csrf: str
    expires_at: float
    last_seen_at: float


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    def __init__(
        self,
        db: Database,
        *,
        lifetime: dt.timedelta = dt.timedelta(hours=12),
        idle: dt.timedelta = dt.timedelta(hours=1),
    ) -> None:
        self.db = db
        self.lifetime = lifetime
        self.idle = idle
        self._cache: dict[str, tuple[float, Session]] = {}

    def create(self, subject: str) -> tuple[str, Session]:
        """A new session for ``subject``: the cookie's token (shown once) and the session."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        record = ConsoleSession(
            id=_digest(token),
            subject=subject,
            csrf=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.lifetime,
        )
        with self.db.session() as session:
            session.add(record)
        self._purge_expired()
        found = _session(record)
        self._cache[found.id] = (time.monotonic(), found)
        return token, found

    def get(self, token: str) -> Session | None:
        """The live session of a cookie's token, or None (unknown, ended, idle too long)."""
        if not token or len(token) > 200:
            return None
        key = _digest(token)
        cached = self._cache.get(key)
        found: Session | None
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            found = cached[1]
        else:
            with self.db.session() as session:
                record = session.get(ConsoleSession, key)
                found = _session(record) if record is not None else None
            if found is None:
                self._cache.pop(key, None)
                return None
            self._cache[key] = (time.monotonic(), found)
        now = time.time()
        if now >= found.expires_at or now - found.last_seen_at >= self.idle.total_seconds():
            self.end(token)
            return None
        if now - found.last_seen_at >= TOUCH_SECONDS:
            with self.db.session() as session:
                session.execute(
                    update(ConsoleSession)
                    .where(ConsoleSession.id == key)
                    .values(last_seen_at=utcnow())
                )
            found = dataclasses.replace(found, last_seen_at=now)
            self._cache[key] = (time.monotonic(), found)
        return found

    def end(self, token: str) -> None:
        key = _digest(token)
        self._cache.pop(key, None)
        with self.db.session() as session:
            session.execute(delete(ConsoleSession).where(ConsoleSession.id == key))

    def _purge_expired(self) -> None:
        with self.db.session() as session:
            session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < utcnow()))

    def subjects(self) -> list[str]:
        """Who has a session now (for tests and the operator)."""
        with self.db.session() as session:
            return list(session.scalars(select(ConsoleSession.subject)))


def _session(record: ConsoleSession) -> Session:
    return Session(
        id=record.id,
        subject=record.subject,
        csrf=record.csrf,
        expires_at=aware(record.expires_at).timestamp(),
        last_seen_at=aware(record.last_seen_at).timestamp(),
    )
