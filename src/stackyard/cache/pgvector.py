"""The cache in PostgreSQL with pgvector: shared by every instance, like Redis, with the
semantic tier's vectors searched in the database (an HNSW index, iterative scans for the
partition filter) instead of in each process.

Entries in ``stackyard_cache_entries`` (the answer as JSON, its expiry, namespace and id);
vectors in ``stackyard_cache_vectors_{dimension}``, deleted with their entry. Expired rows are
never served and are purged now and then. Needs pgvector 0.8 or later.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson

from stackyard.cache.entry import Candidate, Entry
from stackyard.store.pgvector import Vector, register_vector

SCHEMA = (
    "CREATE EXTENSION IF NOT EXISTS vector",
    """CREATE TABLE IF NOT EXISTS stackyard_cache_entries (
        key TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE, namespace TEXT NOT NULL,
        expires DOUBLE PRECISION NOT NULL, body BYTEA NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS stackyard_cache_entries_ns ON stackyard_cache_entries (namespace)",
    """CREATE INDEX IF NOT EXISTS stackyard_cache_entries_expires
        ON stackyard_cache_entries (expires)""",
)
#: Seconds between purges of expired entries.
PURGE_EVERY = 60.0
#: The HNSW search's candidate list (pgvector's default). A lookup asks for the two nearest,
#: and a partition filter that rejects candidates makes the iterative scan go on.
EF_SEARCH = 40


class PgVectorBackend:
    def __init__(self, url: str, connections: int = 4) -> None:
        if url.startswith("postgresql+psycopg://"):
            url = "postgresql://" + url.split("://", 1)[1]
        self.url = url
        self.size = connections
        self._idle: asyncio.Queue[Any] | None = None
        self._opening = asyncio.Lock()
        self._dimensions: set[int] = set()
        self._purged = time.time()

    async def _open(self) -> asyncio.Queue[Any]:
        import psycopg

        async with self._opening:
            if self._idle is not None:
                return self._idle
            first = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
            await first.execute("SELECT pg_advisory_lock(712002)")
            try:
                for statement in SCHEMA:
                    await first.execute(statement)
            finally:
                await first.execute("SELECT pg_advisory_unlock(712002)")
            idle: asyncio.Queue[Any] = asyncio.Queue()
            for index in range(self.size):
                conn = first
                if index:
                    conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
                await conn.execute("SET hnsw.iterative_scan = relaxed_order")
                await conn.execute(f"SET hnsw.ef_search = {int(EF_SEARCH)}")
                await register_vector(conn)
                idle.put_nowait(conn)
            self._idle = idle
            return idle

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[Any]:
        idle = self._idle or await self._open()
        conn = await idle.get()
        try:
            yield conn
        finally:
            idle.put_nowait(conn)

    async def get(self, key: str) -> Entry | None:
        async with self._conn() as db:
            cursor = await db.execute(
                "SELECT body FROM stackyard_cache_entries WHERE key = %s AND expires > %s",
                (key, time.time()),
            )
            row = await cursor.fetchone()
        return None if row is None else Entry.from_json(orjson.loads(row[0]))

    async def put(self, entry: Entry) -> None:
        async with self._conn() as db:
            await db.execute(
                """INSERT INTO stackyard_cache_entries (key, id, namespace, expires, body)
                VALUES (%s, %s, %s, %s, %s) ON CONFLICT (key) DO UPDATE SET id = EXCLUDED.id,
                namespace = EXCLUDED.namespace, expires = EXCLUDED.expires, body = EXCLUDED.body
                """,
                (
                    entry.key,
                    entry.id,
                    entry.namespace,
                    entry.expires,
                    orjson.dumps(entry.to_json()),
                ),
            )
            now = time.time()
            if now - self._purged > PURGE_EVERY:
                self._purged = now
                await db.execute("DELETE FROM stackyard_cache_entries WHERE expires <= %s", (now,))

    async def evict(self, entry_id: str) -> bool:
        async with self._conn() as db:
            cursor = await db.execute(
                "DELETE FROM stackyard_cache_entries WHERE id = %s", (entry_id,)
            )
            return bool(cursor.rowcount)

    async def evict_namespace(self, namespace: str) -> int:
        async with self._conn() as db:
            cursor = await db.execute(
                "DELETE FROM stackyard_cache_entries WHERE namespace = %s", (namespace,)
            )
            return int(cursor.rowcount)

    async def _vectors(self, db: Any, dimension: int) -> str:
        table = f"stackyard_cache_vectors_{int(dimension)}"
        if dimension not in self._dimensions:
            await db.execute("SELECT pg_advisory_lock(712002)")
            try:
                await db.execute(
                    f"""CREATE TABLE IF NOT EXISTS {table} (
                    key TEXT PRIMARY KEY
                        REFERENCES stackyard_cache_entries (key) ON DELETE CASCADE,
                    partition TEXT NOT NULL, question TEXT NOT NULL,
                    expires DOUBLE PRECISION NOT NULL, embedding vector({int(dimension)}) NOT NULL)
                    """
                )
                await db.execute(
                    f"CREATE INDEX IF NOT EXISTS {table}_hnsw ON {table} "
                    "USING hnsw (embedding vector_cosine_ops)"
                )
                await db.execute(
                    f"CREATE INDEX IF NOT EXISTS {table}_partition ON {table} (partition)"
                )
            finally:
                await db.execute("SELECT pg_advisory_unlock(712002)")
            self._dimensions.add(dimension)
        return table

    async def add_vector(
        self, partition: str, key: str, vector: Any, question: str, expires: float
    ) -> None:
        async with self._conn() as db:
            table = await self._vectors(db, len(vector))
            # Nothing is added for an entry already gone (the reference would fail).
            await db.execute(
                f"""INSERT INTO {table} (key, partition, question, expires, embedding)
                SELECT key, %s, %s, %s, %b FROM stackyard_cache_entries WHERE key = %s
                ON CONFLICT (key) DO UPDATE SET partition = EXCLUDED.partition,
                question = EXCLUDED.question, expires = EXCLUDED.expires,
                embedding = EXCLUDED.embedding""",
                (partition, question, expires, Vector(vector), key),
            )

    async def nearest(self, partition: str, vector: Any, k: int) -> list[Candidate]:
        async with self._conn() as db:
            table = await self._vectors(db, len(vector))
            cursor = await db.execute(
                f"""SELECT key, question, embedding <=> %b AS distance
                FROM {table} WHERE partition = %s AND expires > %s
                ORDER BY distance LIMIT %s""",
                (Vector(vector), partition, time.time(), k),
            )
            rows = await cursor.fetchall()
        found = [Candidate(str(key), 1.0 - float(d), str(q)) for key, q, d in rows]
        return sorted(found, key=lambda c: -c.similarity)  # relaxed order: nearly sorted

    async def aclose(self) -> None:
        idle, self._idle = self._idle, None
        while idle is not None and not idle.empty():
            await idle.get_nowait().close()
