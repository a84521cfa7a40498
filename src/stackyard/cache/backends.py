"""Where entries live: in this process (bounded, LRU with TTL), or in Redis (shared by every
instance). One Protocol, one class each."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Protocol

import orjson

from stackyard.cache.entry import Entry


class Backend(Protocol):
    async def get(self, key: str) -> Entry | None: ...

    async def put(self, entry: Entry) -> None: ...

    async def evict(self, entry_id: str) -> bool: ...

    async def evict_namespace(self, namespace: str) -> int: ...

    async def aclose(self) -> None: ...


class MemoryBackend:
    def __init__(self, max_entries: int = 10_000, clock: Any = time.time) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._ids: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._ids.pop(entry.id, None)

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

    async def aclose(self) -> None:
        self._entries.clear()
        self._ids.clear()


class RedisBackend:
    """Entries as JSON under ``stackyard:cache:e:{key}`` with Redis' own expiry; an id index
    and a set per namespace, for eviction."""

    PREFIX = "stackyard:cache:"

    def __init__(self, redis_url: str) -> None:
        import redis.asyncio as aioredis

        pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=32, timeout=5)
        self.redis = aioredis.Redis(connection_pool=pool)

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

    async def aclose(self) -> None:
        await self.redis.aclose(close_connection_pool=True)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
