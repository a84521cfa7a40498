"""A bounded queue drained in batches by a background task: how the request path hands rows to
the database without waiting on it.

Rows are inserted in batches of up to ``batch_size`` at most ``interval`` seconds apart, in a
worker thread; shutdown flushes what is left. A crash loses at most the rows not yet flushed
(one interval's worth). :meth:`put` waits for room when the queue is full (for rows that must
not be lost); :meth:`offer` gives up at once and says so (for rows that may be shed). When the
database refuses a batch five times, the batch is appended to a JSON-lines spill file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from stackyard.store.db import Database

RowT = TypeVar("RowT")

log = logging.getLogger("stackyard.store")
RETRIES = 5  # then the batch goes to the spill file


class BatchWriter(ABC, Generic[RowT]):
    #: What the rows are, for log messages, and the spill file's name.
    what = "rows"
    spill_name = "rows"

    def __init__(
        self,
        db: Database,
        *,
        max_queue: int = 100_000,
        batch_size: int = 1000,
        interval: float = 1.0,
        spill_path: Path | None = None,
        retry_delay: float = 0.5,
    ) -> None:
        self.db = db
        self.batch_size = batch_size
        self.interval = interval
        self.queue: asyncio.Queue[RowT | None] = asyncio.Queue(max_queue)
        self.written = 0
        self.spilled = 0
        self.retry_delay = retry_delay
        self.spill_path = spill_path or Path(f"stackyard-{self.spill_name}-unwritten.jsonl")
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    @abstractmethod
    def insert(self, rows: Sequence[RowT]) -> None:
        """Write one batch (called in a worker thread)."""

    @abstractmethod
    def spill_record(self, row: RowT) -> dict[str, Any]:
        """A row as a JSON object, for the spill file."""

    def written_rows(self, rows: Sequence[RowT]) -> None:
        """Called (in the event loop) after a batch is written."""

    async def put(self, row: RowT) -> None:
        try:
            self.queue.put_nowait(row)
        except asyncio.QueueFull:
            await self.queue.put(row)

    def offer(self, row: RowT) -> bool:
        """Queue the row if there is room; False when it was dropped."""
        try:
            self.queue.put_nowait(row)
        except asyncio.QueueFull:
            return False
        return True

    @property
    def depth(self) -> int:
        return self.queue.qsize()

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _flush(self, rows: list[RowT]) -> None:
        for attempt in range(RETRIES):
            try:
                await asyncio.to_thread(self.insert, rows)
                self.written += len(rows)
                self.written_rows(rows)
                return
            except Exception:
                log.exception("could not write %d %s (try %d)", len(rows), self.what, attempt + 1)
                await asyncio.sleep(self.retry_delay * 2**attempt)
        # The database keeps refusing: keep the rows in a file rather than lose them.
        await asyncio.to_thread(self._spill, rows)

    def _spill(self, rows: list[RowT]) -> None:
        with self.spill_path.open("a", encoding="utf-8") as spill:
            for row in rows:
                spill.write(json.dumps(self.spill_record(row), default=str) + "\n")
        self.spilled += len(rows)
        log.error(
            "wrote %d %s to %s instead of the database", len(rows), self.what, self.spill_path
        )

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            rows: list[RowT] = []
            item = await self.queue.get()
            if item is None:
                stopping = True
            else:
                rows.append(item)
                # Let a batch gather (but a shutdown does not wait for it).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self.interval)
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
        self._closing.set()
        await self.queue.put(None)
        await self._task
        self._task = None
