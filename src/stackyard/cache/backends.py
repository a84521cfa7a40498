"""Where entries live: in this process (bounded, LRU with TTL), or in Redis (shared by every
instance). One Protocol, one class each.

Both also hold the semantic tier's vectors (:mod:`stackyard.cache.vectors`, imported only
when the tier is used: it needs numpy). In Redis they are appended to a stream that every
instance reads into its own in-process table before a search: one round trip, and no vector
crosses the network twice. An entry found by a search is fetched by its key, so an evicted or
expired one is never served even while its vector lingers in another instance's table.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from stackyard.cache.entry import Candidate, Entry

if TYPE_CHECKING:
    from stackyard.cache.vectors import VectorTable


def _table() -> VectorTable:
    from stackyard.cache.vectors import VectorTable

    return VectorTable()


class Backend(Protocol):
    async def get(self, key: str) -> Entry | None: ...

    async def put(self, entry: Entry) -> None: ...

    async def evict(self, entry_id: str) -> bool: ...

    async def evict_namespace(self, namespace: str) -> int: ...

    async def add_vector(
        self, partition: str, key: str, vector: Any, question: str, expires: float
    ) -> None:
        """Make the entry under ``key`` findable by its question's vector."""

    async def nearest(self, partition: str, vector: Any, k: int) -> list[Candidate]:
        """The ``k`` questions of the partition nearest to ``vector``, nearest first."""
        ...

    async def aclose(self) -> None: ...


class MemoryBackend:
    def __init__(self, max_entries: int = 10_000, clock: Any = time.time) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._ids: dict[str, str] = {}
        self._vectors: VectorTable | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._ids.pop(entry.id, None)
            if self._vectors is not None:
                self._vectors.remove(key)

    async def get(self, key: str) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self.clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    async def put(self, entry: Entry) -> None:
        self._drop(entry.key)
        self._entries[entry.key] = entry
        self._ids[entry.id] = entry.key
        while len(self._entries) > self.max_entries:
            oldest = next(iter(self._entries))
            self._drop(oldest)

    async def evict(self, entry_id: str) -> bool:
        key = self._ids.get(entry_id)
        if key is None:
            return False
        self._drop(key)
        return True

    async def evict_namespace(self, namespace: str) -> int:
        doomed = [k for k, e in self._entries.items() if e.namespace == namespace]
        for key in doomed:
            self._drop(key)
        return len(doomed)

    async def add_vector(
        self, partition: str, key: str, vector: Any, question: str, expires: float
    ) -> None:
        if key not in self._entries:  # already gone (a small cache under churn)
            return
        if self._vectors is None:
            self._vectors = _table()
        self._vectors.add(partition, key, vector, question)

    async def nearest(self, partition: str, vector: Any, k: int) -> list[Candidate]:
        if self._vectors is None:
            return []
        return self._vectors.nearest(partition, vector, k)

    async def aclose(self) -> None:
        self._entries.clear()
        self._ids.clear()
        if self._vectors is not None:
            self._vectors.clear()


class RedisBackend:
    """Entries as JSON under ``stackyard:cache:e:{key}`` with Redis' own expiry; an id index
    and a set per namespace, for eviction."""

    PREFIX = "stackyard:cache:"
    #: The stream of vectors; trimmed (approximately) to this many, the oldest first.
    STREAM_LENGTH = 500_000

    def __init__(self, redis_url: str) -> None:
        import redis.asyncio as aioredis

        pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=32, timeout=5)
        self.redis = aioredis.Redis(connection_pool=pool)
        self._vectors: VectorTable | None = None
        self._expires: dict[str, float] = {}
        self._seen = "0"  # the last stream id read into the local table
        self._swept = time.time()
        self._reading = asyncio.Lock()

    async def get(self, key: str) -> Entry | None:
        raw = await self.redis.get(self.PREFIX + "e:" + key)
        return None if raw is None else Entry.from_json(orjson.loads(raw))

    async def put(self, entry: Entry) -> None:
        ttl = max(1, int(entry.expires - time.time()))
        p = self.PREFIX
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(p + "e:" + entry.key, orjson.dumps(entry.to_json()), ex=ttl)
            pipe.set(p + "id:" + entry.id, entry.key, ex=ttl)
            pipe.sadd(p + "ns:" + entry.namespace, entry.key)
            await pipe.execute()

    async def evict(self, entry_id: str) -> bool:
        key = await self.redis.get(self.PREFIX + "id:" + entry_id)
        if key is None:
            return False
        entry_key = self.PREFIX + "e:" + _text(key)
        return bool(await self.redis.delete(entry_key, self.PREFIX + "id:" + entry_id))

    async def evict_namespace(self, namespace: str) -> int:
        members = await self.redis.smembers(self.PREFIX + "ns:" + namespace)
        keys = [self.PREFIX + "e:" + _text(m) for m in members]
        removed = await self.redis.delete(*keys) if keys else 0
        await self.redis.delete(self.PREFIX + "ns:" + namespace)
        return int(removed)

    async def add_vector(
        self, partition: str, key: str, vector: Any, question: str, expires: float
    ) -> None:
        import numpy as np

        fields: dict[Any, Any] = {
            "p": partition,
            "k": key,
            "v": np.asarray(vector, dtype=np.float32).tobytes(),
            "q": question,
            "x": repr(expires),
        }
        await self.redis.xadd(
            self.PREFIX + "vectors", fields, maxlen=self.STREAM_LENGTH, approximate=True
        )

    async def _catch_up(self) -> VectorTable:
        """Read the vectors added since the last search (by any instance) into the table."""
        import numpy as np

        async with self._reading:
            if self._vectors is None:
                self._vectors = _table()
            table = self._vectors
            now = time.time()
            while True:
                read: Any = await self.redis.xread(
                    {self.PREFIX + "vectors": self._seen}, count=5000
                )
                if not read:
                    break
                records = read[0][1]
                for record_id, fields in records:
                    self._seen = _text(record_id)
                    expires = float(fields[b"x"])
                    if expires <= now:
                        continue
                    key = _text(fields[b"k"])
                    vector = np.frombuffer(fields[b"v"], dtype=np.float32)
                    table.add(_text(fields[b"p"]), key, vector, _text(fields[b"q"]))
                    self._expires[key] = expires
                if len(records) < 5000:
                    break
            if now - self._swept > 30:  # drop expired vectors now and then
                self._swept = now
                for key in [k for k, x in self._expires.items() if x <= now]:
                    del self._expires[key]
                    table.remove(key)
            return table

    async def nearest(self, partition: str, vector: Any, k: int) -> list[Candidate]:
        table = await self._catch_up()
        return table.nearest(partition, vector, k)

    async def aclose(self) -> None:
        await self.redis.aclose(close_connection_pool=True)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
