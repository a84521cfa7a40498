"""Every backend passes one suite: get and put, TTL, eviction by id and namespace, questions
found by vector within their partition only; then what is particular to each."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from stackyard.cache.backends import Backend, MemoryBackend, RedisBackend
from stackyard.cache.entry import Entry
from stackyard.cache.pgvector import PgVectorBackend
from tests.conftest import fresh_redis

REDIS = os.environ.get("STACKYARD_TEST_REDIS", "redis://127.0.0.1:6379/11")


def entry(key: str, *, ttl: float = 60, namespace: str = "default") -> Entry:
    now = time.time()
    return Entry(
        id=f"cache_{key}",
        key=key,
        namespace=namespace,
        model="m",
        created=now,
        expires=now + ttl,
        cost_usd=0.01,
        usage={"prompt_tokens": 1, "completion_tokens": 2},
        response={"id": key, "choices": []},
    )


@pytest.fixture(params=["memory", "redis", "pgvector"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if request.param == "memory":
        memory = MemoryBackend(max_entries=3)
        yield memory
        await memory.aclose()
        return
    if request.param == "pgvector":
        url = request.getfixturevalue("pgvector_server")
        with psycopg.connect(url, autocommit=True) as db:
            db.execute("DROP TABLE IF EXISTS stackyard_cache_entries CASCADE")
            for (table,) in db.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'stackyard_cache_vectors%'"
            ).fetchall():
                db.execute(f"DROP TABLE {table}")
        database = PgVectorBackend(url)
        yield database
        await database.aclose()
        return
    fresh_redis(REDIS)
    shared = RedisBackend(REDIS)
    yield shared
    await shared.aclose()


async def test_put_get_and_evict(backend: Backend) -> None:
    assert await backend.get("a") is None
    await backend.put(entry("a"))
    found = await backend.get("a")
    assert found is not None
    assert found.response == {"id": "a", "choices": []}
    assert found.usage == {"prompt_tokens": 1, "completion_tokens": 2}
    assert await backend.evict("cache_a")
    assert await backend.get("a") is None
    assert not await backend.evict("cache_a")


async def test_namespaces_are_evicted_whole(backend: Backend) -> None:
    await backend.put(entry("a", namespace="faq"))
    await backend.put(entry("b", namespace="faq"))
    await backend.put(entry("c", namespace="other"))
    assert await backend.evict_namespace("faq") == 2
    assert await backend.get("a") is None
    assert await backend.get("c") is not None


async def test_expired_entries_are_not_served(backend: Backend) -> None:
    await backend.put(entry("short", ttl=1))
    assert await backend.get("short") is not None
    await asyncio.sleep(1.1)
    assert await backend.get("short") is None


async def test_the_memory_backend_keeps_the_most_recently_used() -> None:
    memory = MemoryBackend(max_entries=2)
    await memory.put(entry("a"))
    await memory.put(entry("b"))
    assert await memory.get("a") is not None  # a is now the most recent
    await memory.put(entry("c"))
    assert await memory.get("b") is None
    assert await memory.get("a") is not None
    assert len(memory) == 2


def vector(*values: float) -> Any:
    import numpy as np

    found = np.array(values, dtype=np.float32)
    return found / np.linalg.norm(found)


async def test_questions_are_found_by_vector_within_their_partition(backend: Backend) -> None:
    for key in ("a", "b"):
        await backend.put(entry(key))
    expires = time.time() + 60
    await backend.add_vector("p1", "a", vector(1, 0, 0), "How old is the moon?", expires)
    await backend.add_vector("p2", "b", vector(1, 0, 0), "How old is the sun?", expires)
    [found] = await backend.nearest("p1", vector(1, 0.1, 0), 4)
    assert (found.key, found.question) == ("a", "How old is the moon?")
    assert found.similarity == pytest.approx(0.995, abs=1e-3)
    assert [c.key for c in await backend.nearest("p2", vector(0, 1, 0), 4)] == ["b"]
    assert await backend.nearest("p3", vector(1, 0, 0), 4) == []


async def test_an_evicted_entry_is_never_served_by_vector(backend: Backend) -> None:
    await backend.put(entry("a"))
    await backend.add_vector("p", "a", vector(1, 0), "q", time.time() + 60)
    assert await backend.evict("cache_a")
    # The memory backend forgets the vector; Redis' other instances may still hold it, but the
    # entry it points to is gone.
    for candidate in await backend.nearest("p", vector(1, 0), 4):
        assert await backend.get(candidate.key) is None


async def test_the_memory_backend_drops_vectors_with_their_entries() -> None:
    memory = MemoryBackend(max_entries=1)
    await memory.put(entry("a"))
    await memory.add_vector("p", "a", vector(1, 0), "q", time.time() + 60)
    await memory.put(entry("b"))  # a is pushed out
    assert await memory.nearest("p", vector(1, 0), 4) == []
    await memory.add_vector("p", "gone", vector(1, 0), "q", time.time() + 60)
    assert await memory.nearest("p", vector(1, 0), 4) == []


async def test_redis_instances_share_vectors_but_not_expired_ones() -> None:
    fresh_redis(REDIS)
    one, two = RedisBackend(REDIS), RedisBackend(REDIS)
    try:
        await one.put(entry("a"))
        await one.add_vector("p", "a", vector(1, 0), "fresh", time.time() + 60)
        await one.add_vector("p", "old", vector(1, 0), "expired", time.time() - 1)
        assert [c.question for c in await two.nearest("p", vector(1, 0), 4)] == ["fresh"]
        await two.put(entry("b"))
        await two.add_vector("p", "b", vector(0, 1), "second", time.time() + 60)
        assert [c.key for c in await one.nearest("p", vector(0, 1), 4)] == ["b", "a"]
    finally:
        await one.aclose()
        await two.aclose()


async def test_pgvector_stores_the_vectors_it_is_sent_in_binary(pgvector_server: str) -> None:
    import numpy as np

    from stackyard.store.pgvector import Vector, register_vector

    sent = np.array([0.25, -1.5, 3.0e-7, 12345.5], dtype=np.float32)
    async with await psycopg.AsyncConnection.connect(pgvector_server) as db:
        await db.execute("CREATE EXTENSION IF NOT EXISTS vector")
        await register_vector(db)
        cursor = await db.execute("SELECT %b::text, vector_dims(%b)", (Vector(sent), Vector(sent)))
        text, dims = await cursor.fetchone() or (None, None)
    assert dims == 4
    read = np.array([float(x) for x in str(text).strip("[]").split(",")], dtype=np.float32)
    assert read.tolist() == sent.tolist()


async def test_pgvector_vectors_read_in_binary_are_the_ones_stored(pgvector_server: str) -> None:
    import numpy as np

    from stackyard.store.pgvector import Vector, register_vector

    sent = np.array([0.25, -1.5, 3.0e-7, 12345.5], dtype=np.float32)
    async with await psycopg.AsyncConnection.connect(pgvector_server) as db:
        await db.execute("CREATE EXTENSION IF NOT EXISTS vector")
        await register_vector(db)
        cursor = await db.execute("SELECT %b, '[1,2]'::vector", (Vector(sent),), binary=True)
        read, literal = await cursor.fetchone() or (None, None)
    assert isinstance(read, np.ndarray)
    assert read.dtype == np.float32
    assert read.tolist() == sent.tolist()
    assert literal.tolist() == [1.0, 2.0]
