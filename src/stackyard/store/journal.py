"""The spend journal: every accepted spend row on local disk within milliseconds, so that a crash
(``kill -9``, an out-of-memory kill) loses at most the last few milliseconds of spend instead
of the writer's last second.

Rows are appended to a segment file in this process's own folder entry (``<uuid>.jsonl``, one
JSON array a line), with group commit: the first row after a write schedules the next write
``commit_interval`` later (5 ms), and every row accepted meanwhile goes in the same ``write``
(optionally ``fsync``, for power loss; a killed process loses nothing the kernel has). The
spend writer reports each row it has finished with (written, or spilled to a file); a segment
whose rows are all finished is deleted, and a new one starts every ``segment_rows`` rows.

A process holds an exclusive lock on its segment files while it lives. At start-up,
:func:`replay` takes every segment whose lock it can take (its process is gone), writes the
rows the store does not have yet (each row has an ``entry_id``, so nothing is written twice),
and deletes the file; the spill file of rows the database once refused is read back the same
way and renamed. The request path only appends to a list.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("stackyard.store")

Row = tuple[Any, ...]


@dataclass
class _Segment:
    path: Path
    fd: int
    start: int  # the number of rows appended before its first
    end: int | None = None  # set when a newer segment takes over


class SpendJournal:
    def __init__(
        self,
        folder: Path,
        *,
        commit_interval: float = 0.005,
        segment_rows: int = 20_000,
        fsync: bool = False,
    ) -> None:
        self.folder = folder
        self.commit_interval = commit_interval
        self.segment_rows = segment_rows
        self.fsync = fsync
        self.appended = 0  # rows accepted
        self.committed = 0  # rows on disk
        self.finished = 0  # rows the writer is done with
        self._buffer: list[bytes] = []
        self._segments: list[_Segment] = []
        self._timer: asyncio.TimerHandle | None = None
        self.failed = False  # the disk refused a write: rows stay on the writer's queue only

    def open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._new_segment()

    def _new_segment(self) -> None:
        path = self.folder / f"{uuid.uuid4().hex}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours while this process lives
        if self._segments:
            self._segments[-1].end = self.appended
        self._segments.append(_Segment(path, fd, self.appended))

    def append(self, row: Row) -> None:
        """Accept a row (the request path: a list append; the write comes within
        ``commit_interval``)."""
        self._buffer.append(orjson.dumps(row) + b"\n")
        self.appended += 1
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.commit()
                return
            self._timer = loop.call_later(self.commit_interval, self.commit)

    def commit(self) -> None:
        """Write what was accepted since the last write, in one call."""
        self._timer = None
        if not self._buffer or not self._segments:
            return
        data = b"".join(self._buffer)
        count = len(self._buffer)
        self._buffer.clear()
        segment = self._segments[-1]
        try:
            os.write(segment.fd, data)
            if self.fsync:
                os.fsync(segment.fd)
        except OSError as exc:
            if not self.failed:
                log.error("the spend journal %s cannot be written: %s", segment.path, exc)
            self.failed = True
            return
        self.committed += count
        if self.appended - segment.start >= self.segment_rows:
            self._new_segment()

    def done(self, count: int) -> None:
        """The writer finished with ``count`` more rows (in the order they were accepted):
        segments it finished with entirely are deleted."""
        self.finished += count
        while len(self._segments) > 1:
            oldest = self._segments[0]
            if oldest.end is None or self.finished < oldest.end:
                break
            self._drop(oldest)
            self._segments.pop(0)

    def _drop(self, segment: _Segment) -> None:
        with contextlib.suppress(OSError):
            os.close(segment.fd)
        with contextlib.suppress(OSError):
            segment.path.unlink()

    def close(self) -> None:
        """At shutdown, after the writer wrote everything: no segment is needed any more."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.commit()
        everything = self.finished >= self.appended
        for segment in self._segments:
            if everything:
                self._drop(segment)
            else:  # kept for the next start's replay
                with contextlib.suppress(OSError):
                    os.close(segment.fd)
        self._segments = []


def _orphans(folder: Path) -> list[tuple[Path, int]]:
    """Segments no living process holds, each with its lock taken, oldest first."""
    found: list[tuple[Path, int]] = []
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime):
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a living process's
            os.close(fd)
            continue
        found.append((path, fd))
    return found


def _rows_of(path: Path) -> list[Row]:
    rows = []
    for line in path.read_bytes().splitlines():
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:  # the last line of a write cut short
            continue
        if isinstance(value, list):
            rows.append(tuple(value))
    return rows


def replay(
    folder: Path,
    spill: Path,
    columns: Sequence[str],
    present: Callable[[list[str]], set[str]],
    write: Callable[[list[Row]], None],
) -> int:
    """Write back the rows of dead processes' segments and of the spill file that the store
    does not have yet (by ``entry_id``); returns how many were written."""
    entry = list(columns).index("entry_id")
    written = 0

    def restore(rows: list[Row]) -> int:
        fresh: list[Row] = []
        for start in range(0, len(rows), 500):
            part = rows[start : start + 500]
            ids = [r[entry] for r in part if r[entry]]
            have = present(ids) if ids else set()
            fresh += [r for r in part if not r[entry] or r[entry] not in have]
        for start in range(0, len(fresh), 1000):
            write(fresh[start : start + 1000])
        return len(fresh)

    for path, fd in _orphans(folder):
        try:
            rows = [r for r in _rows_of(path) if len(r) == len(columns)]
            count = restore(rows)
            written += count
            log.warning(
                "replayed %s: %d of its %d spend rows were not stored", path, count, len(rows)
            )
            path.unlink()
        finally:
            os.close(fd)
    if spill.is_file():
        rows = []
        for line in spill.read_bytes().splitlines():
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict):
                rows.append(tuple(record.get(c) for c in columns))
        count = restore(rows)
        written += count
        done = spill.with_name(f"{spill.name}.replayed-{int(time.time())}")
        spill.rename(done)
        log.warning("replayed %s: %d spend rows written; the file is now %s", spill, count, done)
    return written
