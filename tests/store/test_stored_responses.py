"""Stored responses against a real database (SQLite and PostgreSQL): a response put on one
instance is found by another once written, a delete wins over a write still queued, each
owner sees only its own, what is stored is redacted, and retention purges it."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from stackyard.auth.principal import Principal
from stackyard.gateway.stored_responses import MISS_SECONDS, ResponseStore, Stored
from stackyard.observability.redact import Redactor
from stackyard.store.db import Database

TEAM = Principal(key_id="k1", team_id="team-a")
OTHER = Principal(key_id="k2", team_id="team-b")
MASTER = Principal(master=True)
#: Ids as the gateway makes them (``resp_`` and 48 hex digits).
R1, R2, R3, R4, R5 = (f"resp_{n:048x}" for n in range(1, 6))


def stored(response_id: str, text: str = "Hello", created: float | None = None) -> Stored:
    return Stored(
        id=response_id,
        owner="team-a",
        team_id="team-a",
        created_at=created if created is not None else dt.datetime.now(dt.UTC).timestamp(),
        model="gpt-4o",
        response={"id": response_id, "object": "response", "output": []},
        items=[{"id": "msg_1", "type": "message", "role": "user", "content": text}],
        messages=[{"role": "user", "content": text}],
    )


async def written(store: ResponseStore) -> None:
    store.start()
    await store.close()  # flushes what is queued


def test_another_instance_finds_it_once_written(db: Database) -> None:
    async def run() -> None:
        first = ResponseStore(db)
        first.put(stored(R1))
        await written(first)
        second = ResponseStore(db)
        found = await second.get(R1, TEAM)
        assert found is not None
        assert found.messages == [{"role": "user", "content": "Hello"}]
        assert await second.get(R1, OTHER) is None
        assert (await second.get(R1, MASTER)) is not None
        assert await second.get("resp_nope", TEAM) is None

    asyncio.run(run())


def test_a_miss_is_remembered_briefly_and_a_foreign_id_never_looked_for(
    db: Database, monkeypatch: Any
) -> None:
    async def run() -> None:
        store = ResponseStore(db)
        loads: list[str] = []
        load = store._load

        def counted(rid: str) -> Any:
            loads.append(rid)
            return load(rid)

        monkeypatch.setattr(store, "_load", counted)
        unknown = f"resp_{99:048x}"
        assert await store.get(unknown, TEAM) is None
        assert await store.get(unknown, TEAM) is None  # remembered: not looked for again
        assert await store.get("resp_../../etc", TEAM) is None  # not an id of ours
        assert loads == [unknown]
        # Written meanwhile by another instance: found once the miss is forgotten.
        other = ResponseStore(db)
        other.put(stored(unknown))
        await written(other)
        clock = time.monotonic()
        monkeypatch.setattr(time, "monotonic", lambda: clock + MISS_SECONDS + 0.1)
        assert await store.get(unknown, TEAM) is not None
        assert loads == [unknown, unknown]

    asyncio.run(run())


def test_a_delete_wins_over_a_queued_write(db: Database) -> None:
    async def run() -> None:
        store = ResponseStore(db)
        store.put(stored(R2))
        found = await store.get(R2, TEAM)
        assert found is not None
        await store.delete(found)  # before the writer has written it
        assert await store.get(R2, TEAM) is None
        await written(store)
        assert await ResponseStore(db).get(R2, TEAM) is None

    asyncio.run(run())


def test_what_is_stored_is_redacted(db: Database) -> None:
    async def run() -> None:
        store = ResponseStore(db, redactor=Redactor(pii=True))
        store.put(stored(R3, text="Mail me at ada@example.com"))
        await written(store)
        found = await ResponseStore(db).get(R3, TEAM)
        assert found is not None
        assert "ada@example.com" not in str(found.messages)
        assert "ada@example.com" not in str(found.items)

    asyncio.run(run())


def test_retention_purges_old_responses(db: Database) -> None:
    async def run() -> None:
        store = ResponseStore(db)
        old = dt.datetime.now(dt.UTC).timestamp() - 3 * 86400
        store.put(stored(R4, created=old))
        store.put(stored(R5))
        await written(store)
        assert store.purge(default_days=30, team_days={"team-a": 2}) == 1
        store.forget_old(default_days=30, team_days={"team-a": 2})
        assert await store.get(R4, TEAM) is None
        assert await store.get(R5, TEAM) is not None

    asyncio.run(run())
