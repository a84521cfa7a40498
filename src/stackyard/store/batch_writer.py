"""A bounded queue drained in batches by a background task: how the request path hands rows to
the database without waiting on it.

Rows are inserted in batches of up to ``batch_size`` at most ``interval`` seconds apart, in a
worker thread; shutdown flushes what is left. A crash loses at most the rows not yet flushed
(one interval's worth). :meth:`put` waits for room when the queue is full (for rows that must
not be lost); :meth:`offer` gives up at once and says so (for rows that may be shed). When the
database refuses a batch five times, the batch is appended to a JSON-lines spill file, which
the next start writes back (:mod:`stackyard.store.spill_replay`, through :meth:`write` and
:meth:`from_spill_record`). Appends lock the file and check that it is still the one at the
spill path, so that a replay that moved it aside never misses a line.

A writer cannot die. When a batch fails while the database answers, the rows are written one
by one, so that one row that cannot be written (or encoded) is set aside (logged, counted in
``stackyard_writer_errors_total``, spilled if it can be) and never holds back or takes down the
rest; any other failure of the loop is logged, counted, and the loop goes on. ``problem`` says
when a writer is not writing (for ``/ready``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, text

from stackyard.observability.metrics import Counter
from stackyard.store.db import Database

RowT = TypeVar("RowT")

log = logging.getLogger("stackyard.store")
RETRIES = 5  # then the batch goes to the spill file
#: Rows tried alone, in a row, with none written: the database is down, not a row bad.
PROBE_ROWS = 3

#: Every writer's failures: ``kind`` is ``batch`` (a batch the database refused), ``row`` (a
#: row set aside, since it alone could not be written), ``spilled`` (rows written to the spill
#: file), ``lost`` (rows not even the spill file took), ``loop`` (an error of the loop itself)
#: or ``rejected`` (a spill file's line its replay could not read or write: set aside in a
#: ``.rejected`` file).
ERRORS = Counter(
    "stackyard_writer_errors_total",
    "Failures of the background writers, by writer and kind "
    "(batch, row, spilled, lost, loop, rejected).",
    ("writer", "kind"),
)


def same_file(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is the one at ``path`` now (not moved aside, not deleted)."""
    try:
        here, there = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


class BatchWriter(ABC, Generic[RowT]):
    #: What the rows are, for log messages, and the spill file's name.
    what = "rows"
    spill_name = "rows"
    #: The table the rows go to, and its columns in the rows' order (for the spill file's
    #: replay: a primary key among them lets it skip rows the store has already).
    table = ""
    columns: Sequence[str] = ()

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
        #: Batches refused in a row (0 after any write).
        self.failing = 0
        #: Told how many more rows are finished with (written, spilled or lost), in the order
        #: they were queued: the spend journal.
        self.on_done: Callable[[int], None] | None = None

    @abstractmethod
    def insert(self, rows: Sequence[RowT]) -> None:
        """Write one batch (called in a worker thread)."""

    @abstractmethod
    def spill_record(self, row: RowT) -> dict[str, Any]:
        """A row as a JSON object, for the spill file."""

    @abstractmethod
    def from_spill_record(self, record: dict[str, Any]) -> RowT:
        """A row back from the spill file (the inverse of :meth:`spill_record`), for the replay
        at start-up; raises on a record it cannot read."""

    @abstractmethod
    def write(self, connection: Connection, rows: Sequence[RowT]) -> None:
        """Write one batch in the caller's transaction (what :meth:`insert` does in its own):
        the replay records its progress in the same transaction."""

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
        pending = rows
        for attempt in range(RETRIES):
            try:
                await asyncio.to_thread(self.insert, pending)
            except Exception:
                ERRORS.inc(self.spill_name, "batch")
                self.failing += 1
                log.exception(
                    "could not write %d %s (try %d)", len(pending), self.what, attempt + 1
                )
            else:
                self._written(pending)
                return
            if await asyncio.to_thread(self._database_answers):
                # The rows, not the database: write them one by one, and set aside any that
                # cannot be written alone.
                await asyncio.to_thread(self._one_by_one, pending)
                return
            await asyncio.sleep(self.retry_delay * 2**attempt)
        # The database keeps refusing: keep the rows in a file rather than lose them.
        await asyncio.to_thread(self._spill, pending)

    def _finished(self, count: int) -> None:
        if self.on_done is not None:
            try:
                self.on_done(count)
            except Exception:
                log.exception("after finishing with %d %s", count, self.what)

    def _written(self, rows: Sequence[RowT]) -> None:
        self.failing = 0
        self.written += len(rows)
        self._finished(len(rows))
        try:
            self.written_rows(rows)
        except Exception:
            log.exception("after writing %d %s", len(rows), self.what)

    def _database_answers(self) -> bool:
        try:
            with self.db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def _one_by_one(self, rows: Sequence[RowT]) -> None:
        """Write each row alone (in the worker thread). A row that fails alone is set aside:
        counted, logged and spilled. If the first rows all fail, the database is the trouble
        after all: the rest are not tried, and go to the spill file with them."""
        written = 0
        failed: list[RowT] = []
        for index, row in enumerate(rows):
            if written == 0 and len(failed) >= PROBE_ROWS:
                self._spill([*failed, *rows[index:]])
                return
            try:
                self.insert([row])
            except Exception as exc:
                failed.append(row)
                log.error(
                    "one of the %s cannot be written: %s: %s",
                    self.what,
                    type(exc).__name__,
                    str(exc)[:200],
                )
            else:
                written += 1
                self._written([row])
        if failed:
            ERRORS.inc(self.spill_name, "row", by=len(failed))
            self._spill(failed)

    def _spill(self, rows: list[RowT]) -> None:
        try:
            self._spill_rows(rows)
        finally:
            self._finished(len(rows))

    def _spill_rows(self, rows: list[RowT]) -> None:
        lines = []
        for row in rows:
            try:
                lines.append(json.dumps(self.spill_record(row), default=str) + "\n")
            except Exception as exc:  # not even as JSON: counted, and gone
                ERRORS.inc(self.spill_name, "lost")
                log.error("lost one of the %s: %s: %s", self.what, type(exc).__name__, exc)
        if not lines:
            return
        try:
            self._append(lines)
        except OSError as exc:
            ERRORS.inc(self.spill_name, "lost", by=len(lines))
            log.error(
                "lost %d %s: the spill file %s: %s", len(lines), self.what, self.spill_path, exc
            )
            return
        ERRORS.inc(self.spill_name, "spilled", by=len(lines))
        self.spilled += len(lines)
        log.error(
            "wrote %d %s to %s instead of the database", len(lines), self.what, self.spill_path
        )

    def _append(self, lines: list[str]) -> None:
        """Append to the file now at the spill path, under an exclusive lock (other processes
        spill there too). A replay starting in another process renames the file and locks it
        before reading it: an append that finds its file moved aside opens the path again."""
        for _ in range(10):
            with self.spill_path.open("a", encoding="utf-8") as spill:
                fcntl.flock(spill, fcntl.LOCK_EX)  # released as the file closes, after the flush
                if same_file(spill.fileno(), self.spill_path):
                    spill.writelines(lines)
                    return
        raise OSError(f"{self.spill_path} kept being moved aside")

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            rows: list[RowT] = []
            try:
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
            except asyncio.CancelledError:
                raise
            except Exception:  # never the end of the writer: the next batch is written
                ERRORS.inc(self.spill_name, "loop")
                log.exception(
                    "the %s writer failed on a batch of %d; going on", self.what, len(rows)
                )
                await asyncio.sleep(self.retry_delay)

    @property
    def stopped(self) -> bool:
        """The writer's task has ended though nobody closed it (it should never happen)."""
        return self._task is not None and self._task.done() and not self._closing.is_set()

    @property
    def problem(self) -> str | None:
        """Why this writer is not writing now, if it is not (for ``/ready``)."""
        if self.stopped:
            return f"the {self.what} writer has stopped"
        if self.failing >= RETRIES:
            return f"the {self.what} writer cannot reach the database ({self.failing} failures)"
        return None

    async def close(self) -> None:
        """Write everything queued, then stop (no row is given up)."""
        if self._task is None:
            return
        self._closing.set()
        await self.queue.put(None)
        try:
            await self._task
        except Exception:
            log.exception("the %s writer failed while closing", self.what)
        self._task = None
