"""The spend log's writer: a bounded queue, drained in batches by a background task.

The request path only puts a row on the queue. Rows are inserted in batches of up to
``batch_size`` at most ``interval`` seconds apart, in a worker thread; shutdown flushes what is
left. A crash loses at most the rows not yet flushed (one interval's worth). When the queue is
full, the request waits for room rather than dropping its row.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import insert

from stackyard.store.db import Database
from stackyard.store.tables import SpendRecord

log = logging.getLogger("stackyard.spend")


class SpendWriter:
    def __init__(
        self,
        db: Database,
        *,
        max_queue: int = 100_000,
        batch_size: int = 1000,
        interval: float = 0.2,
    ) -> None:
        self.db = db
        self.batch_size = batch_size
        self.interval = interval
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(max_queue)
        self.written = 0
        self._task: asyncio.Task[None] | None = None

    async def put(self, row: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(row)
        except asyncio.QueueFull:
            await self.queue.put(row)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        with self.db.session() as session:
            session.execute(insert(SpendRecord), rows)

    async def _flush(self, rows: list[dict[str, Any]]) -> None:
        while True:
            try:
                await asyncio.to_thread(self._insert, rows)
                self.written += len(rows)
                return
            except Exception:
                log.exception("could not write %d spend rows; retrying", len(rows))
                await asyncio.sleep(1.0)

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            rows: list[dict[str, Any]] = []
            item = await self.queue.get()
            if item is None:
                stopping = True
            else:
                rows.append(item)
                await asyncio.sleep(self.interval)  # let a batch gather
            while not self.queue.empty() and (stopping or len(rows) < self.batch_size):
                item = self.queue.get_nowait()
                if item is None:
                    stopping = True
                else:
                    rows.append(item)
                if len(rows) >= self.batch_size:
                    await self._flush(rows)
                    rows = []
            if rows:
                await self._flush(rows)

    async def close(self) -> None:
        """Write everything queued, then stop (no row is given up)."""
        if self._task is None:
            return
        await self.queue.put(None)
        await self._task
        self._task = None
