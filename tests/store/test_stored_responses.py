"""Stored responses against a real database (SQLite and PostgreSQL): a response put on one
instance is found by another once written, a delete wins over a write still queued, each
owner sees only its own, what is stored is redacted, and retention purges it."""

from __future__ import annotations

import asyncio
import datetime as dt

from stackyard.auth.principal import Principal
from stackyard.gateway.stored_responses import ResponseStore, Stored
from stackyard.observability.redact import Redactor
from stackyard.store.db import Database

TEAM = Principal(key_id="k1", team_id="team-a")
OTHER = Principal(key_id="k2", team_id="team-b")
MASTER = Principal(master=True)


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
        first.put(stored("resp_1"))
        await written(first)
        second = ResponseStore(db)
        found = await second.get("resp_1", TEAM)
        assert found is not None
        assert found.messages == [{"role": "user", "content": "Hello"}]
        assert await second.get("resp_1", OTHER) is None
        assert (await second.get("resp_1", MASTER)) is not None
        assert await second.get("resp_nope", TEAM) is None

    asyncio.run(run())


def test_a_delete_wins_over_a_queued_write(db: Database) -> None:
    async def run() -> None:
        store = ResponseStore(db)
        store.put(stored("resp_2"))
        found = await store.get("resp_2", TEAM)
        assert found is not None
        await store.delete(found)  # before the writer has written it
        assert await store.get("resp_2", TEAM) is None
        await written(store)
        assert await ResponseStore(db).get("resp_2", TEAM) is None

    asyncio.run(run())


def test_what_is_stored_is_redacted(db: Database) -> None:
    async def run() -> None:
        store = ResponseStore(db, redactor=Redactor(pii=True))
        store.put(stored("resp_3", text="Mail me at ada@example.com"))
        await written(store)
        found = await ResponseStore(db).get("resp_3", TEAM)
        assert found is not None
        assert "ada@example.com" not in str(found.messages)
        assert "ada@example.com" not in str(found.items)

    asyncio.run(run())


def test_retention_purges_old_responses(db: Database) -> None:
    async def run() -> None:
        store = ResponseStore(db)
        old = dt.datetime.now(dt.UTC).timestamp() - 3 * 86400
        store.put(stored("resp_old", created=old))
        store.put(stored("resp_new"))
        await written(store)
        assert store.purge(default_days=30, team_days={"team-a": 2}) == 1
        store.forget_old(default_days=30, team_days={"team-a": 2})
        assert await store.get("resp_old", TEAM) is None
        assert await store.get("resp_new", TEAM) is not None

    asyncio.run(run())
