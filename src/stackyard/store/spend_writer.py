"""The spend log's writer: a bounded queue, drained in batches by a background task.

The request path only puts a row on the queue. Rows are inserted in batches of up to
``batch_size`` at most ``interval`` seconds apart, in a worker thread; shutdown flushes what is
left. A crash loses at most the rows not yet flushed (one interval's worth). When the queue is
full, the request waits for room rather than dropping its row. When the database refuses a
batch five times, the batch is appended to a JSON-lines spill file instead of being dropped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

from stackyard.store.db import Database
from stackyard.store.tables import SpendRecord

#: The columns a row carries, in order (``id`` is assigned by the database).
COLUMNS = [c.name for c in SpendRecord.__table__.columns if c.name != "id"]
CREATED_AT = COLUMNS.index("created_at")

#: One spend row: values in ``COLUMNS`` order; ``created_at`` as epoch seconds.
Row = tuple[Any, ...]

log = logging.getLogger("stackyard.spend")
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
RETRIES = 5  # then the batch goes to the spill file


class SpendWriter:
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
        self.queue: asyncio.Queue[Row | None] = asyncio.Queue(max_queue)
        self.written = 0
        self.spilled = 0
        self.retry_delay = retry_delay
        self.spill_path = spill_path or Path("stackyard-spend-unwritten.jsonl")
        self._task: asyncio.Task[None] | None = None

    async def put(self, row: Row) -> None:
        try:
            self.queue.put_nowait(row)
        except asyncio.QueueFull:
            await self.queue.put(row)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def _insert(self, rows: list[Row]) -> None:
        """One executemany through the driver, with the rows as tuples (the ORM's bulk insert
        cost several times as much, in a thread that competes with the event loop)."""
        with self.db.engine.begin() as connection:
            sqlite = connection.dialect.name == "sqlite"
            mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
            sql = (
                f"INSERT INTO spend_log ({', '.join(COLUMNS)}) "
                f"VALUES ({', '.join([mark] * len(COLUMNS))})"
            )
            values = []
            for row in rows:
                record = list(row)
                moment = dt.datetime.fromtimestamp(row[CREATED_AT], dt.UTC)
                # SQLite: stored as SQLAlchemy stores a DateTime there.
                record[CREATED_AT] = moment.strftime(SQLITE_TIME) if sqlite else moment
                values.append(tuple(record))
            connection.exec_driver_sql(sql, values)

    async def _flush(self, rows: list[Row]) -> None:
        for attempt in range(RETRIES):
            try:
                await asyncio.to_thread(self._insert, rows)
                self.written += len(rows)
                return
            except Exception:
                log.exception("could not write %d spend rows (try %d)", len(rows), attempt + 1)
                await asyncio.sleep(self.retry_delay * 2**attempt)
        # The database keeps refusing: keep the rows in a file rather than lose them.
        await asyncio.to_thread(self._spill, rows)

    def _spill(self, rows: list[Row]) -> None:
        with self.spill_path.open("a", encoding="utf-8") as spill:
            for row in rows:
                spill.write(json.dumps(dict(zip(COLUMNS, row, strict=True))) + "\n")
        self.spilled += len(rows)
        log.error("wrote %d spend rows to %s instead of the database", len(rows), self.spill_path)

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            rows: list[Row] = []
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
