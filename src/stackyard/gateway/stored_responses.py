"""Stored responses (``store: true`` on ``/v1/responses``): kept in memory for the requests that
continue them at once, and written to the store in batches off the request path, so that
another instance, or this one after a restart, finds them there.

What is stored is redacted as traces are (``observability.redact_pii`` and
``redact_patterns``), before it is kept anywhere, so that a conversation continues the same
way from memory and from the store; it is purged after the traces' retention, per team. A team
whose traces store no bodies (``observability.bodies`` ``off`` or ``metadata``) has no
responses stored."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import orjson
from sqlalchemy import Connection, Table, delete, select

from stackyard.observability.query import retention_rules
from stackyard.store.spend_writer import TupleWriter
from stackyard.store.tables import StoredResponseRecord

if TYPE_CHECKING:
    from stackyard.auth.principal import Principal
    from stackyard.observability.redact import Redactor
    from stackyard.store.db import Database

Body = dict[str, Any]
#: The ids this gateway gives responses (``resp_`` and 48 hex digits).
ID = re.compile(r"resp_[0-9a-f]{48}")
#: How long an id looked for in vain is not looked for again.
MISS_SECONDS = 2.0
COLUMNS = [c.name for c in StoredResponseRecord.__table__.columns]
BODY = COLUMNS.index("body")


def owner_of(principal: Principal) -> str:
    """Whose a stored response is: the team's, or a key's without a team ("" for the master
    key and an open gateway)."""
    return principal.team_id or principal.key_id or ""


@dataclass(slots=True)
class Stored:
    id: str
    owner: str
    team_id: str | None
    created_at: float
    model: str
    #: The Response object.
    response: Body
    #: This turn's input items (with ids).
    items: list[Body]
    #: The conversation after this response, as chat messages (no instructions).
    messages: list[Body]

    def row(self) -> tuple[Any, ...]:
        body = {"response": self.response, "items": self.items, "messages": self.messages}
        values = {
            "id": self.id,
            "owner": self.owner,
            "team_id": self.team_id,
            "created_at": self.created_at,
            "model": self.model,
            "body": body,
        }
        return tuple(values[name] for name in COLUMNS)


class ResponseWriter(TupleWriter):
    what = "stored responses"
    spill_name = "responses"
    table = "responses"
    columns = COLUMNS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Ids deleted while perhaps still queued: deleted again as they are written.
        self.deleted: set[str] = set()

    def prepare(self, record: list[Any]) -> None:
        record[BODY] = orjson.dumps(record[BODY]).decode()

    def also(self, connection: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        gone = [row[0] for row in rows if row[0] in self.deleted]
        if gone:
            table = cast(Table, StoredResponseRecord.__table__)
            connection.execute(delete(table).where(table.c.id.in_(gone)))


class ResponseStore:
    def __init__(
        self,
        db: Database,
        *,
        redactor: Redactor | None = None,
        keep: int = 10_000,
        writer: ResponseWriter | None = None,
    ) -> None:
        self.db = db
        self.redactor = redactor
        self.keep = keep
        self.writer = writer or ResponseWriter(db, batch_size=200, interval=0.2)
        self._recent: OrderedDict[str, Stored] = OrderedDict()
        #: Ids looked for in the store in vain, and when (monotonic seconds).
        self._missed: OrderedDict[str, float] = OrderedDict()
        self._waiting: set[asyncio.Future[None]] = set()

    def start(self) -> None:
        self.writer.start()

    async def close(self) -> None:
        if self._waiting:
            await asyncio.gather(*self._waiting)
        await self.writer.close()

    def redact(self, value: Any) -> Any:
        if self.redactor is None or not self.redactor.active:
            return value
        return self.redactor.value(value)

    def put(self, stored: Stored) -> None:
        """Keep a response (redacted), for this instance at once and for the others once the
        writer has written it (never dropped: a full queue is waited on in a task)."""
        stored.response = self.redact(stored.response)
        stored.items = self.redact(stored.items)
        stored.messages = self.redact(stored.messages)
        self._remember(stored)
        row = stored.row()
        if not self.writer.offer(row):
            task = asyncio.ensure_future(self.writer.put(row))
            self._waiting.add(task)
            task.add_done_callback(self._waiting.discard)

    def _remember(self, stored: Stored) -> None:
        self._missed.pop(stored.id, None)
        self._recent[stored.id] = stored
        self._recent.move_to_end(stored.id)
        while len(self._recent) > self.keep:
            self._recent.popitem(last=False)

    async def get(self, response_id: str, principal: Principal) -> Stored | None:
        """The stored response, if ``principal`` may see it (else None, as if it did not
        exist). An id this gateway never makes is not looked for, and one just looked for in
        vain is not looked for again for :data:`MISS_SECONDS` (a client repeating a wrong id
        costs the store nothing; another instance's response is written within a fraction of
        that)."""
        if response_id in self.writer.deleted or not ID.fullmatch(response_id):
            return None
        stored = self._recent.get(response_id)
        if stored is None:
            missed = self._missed.get(response_id)
            if missed is not None and time.monotonic() - missed < MISS_SECONDS:
                return None
            stored = await asyncio.to_thread(self._load, response_id)
            if stored is None:
                self._missed[response_id] = time.monotonic()
                self._missed.move_to_end(response_id)
                while len(self._missed) > self.keep:
                    self._missed.popitem(last=False)
                return None
            self._missed.pop(response_id, None)
            self._remember(stored)
        if not principal.master and stored.owner != owner_of(principal):
            return None
        return stored

    def _load(self, response_id: str) -> Stored | None:
        table = cast(Table, StoredResponseRecord.__table__)
        with self.db.engine.connect() as connection:
            row = connection.execute(select(table).where(table.c.id == response_id)).first()
        if row is None:
            return None
        values = row._mapping
        body = orjson.loads(values["body"])
        created: dt.datetime = values["created_at"]
        if created.tzinfo is None:
            created = created.replace(tzinfo=dt.UTC)
        return Stored(
            id=values["id"],
            owner=values["owner"],
            team_id=values["team_id"],
            created_at=created.timestamp(),
            model=values["model"],
            response=body["response"],
            items=body["items"],
            messages=body["messages"],
        )

    async def delete(self, stored: Stored) -> None:
        self._recent.pop(stored.id, None)
        self.writer.deleted.add(stored.id)  # in case it is still queued
        await asyncio.to_thread(self._delete, stored.id)

    def _delete(self, response_id: str) -> None:
        table = cast(Table, StoredResponseRecord.__table__)
        with self.db.engine.begin() as connection:
            connection.execute(delete(table).where(table.c.id == response_id))

    def purge(self, *, default_days: float, team_days: dict[str, float]) -> int:
        """Delete stored responses older than their team's trace retention (in a thread)."""
        r = StoredResponseRecord
        rules = retention_rules(
            r.team_id, r.created_at, default_days=default_days, team_days=team_days
        )
        total = 0
        with self.db.engine.begin() as connection:
            for rule in rules:
                total += connection.execute(delete(r).where(rule)).rowcount or 0
        return total

    def forget_old(self, *, default_days: float, team_days: dict[str, float]) -> None:
        """Drop what is past its retention from memory too (on the event loop)."""
        now = dt.datetime.now(dt.UTC).timestamp()
        for key, stored in list(self._recent.items()):
            days = team_days.get(stored.team_id or "", default_days)
            if stored.created_at < now - days * 86400:
                del self._recent[key]
