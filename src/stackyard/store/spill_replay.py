"""Spill files read back at start-up, each row written once.

A background writer (:class:`~stackyard.store.batch_writer.BatchWriter`) appends the rows the
database refused to its spill file. At the next start, before the writer starts,
:func:`replay_spill` moves the file aside (renamed ``<stem>.<time>-<random>.replaying``, so
that what spills meanwhile starts a new file), turns its lines back into rows
(:meth:`~stackyard.store.batch_writer.BatchWriter.from_spill_record`), writes them through the
writer's own batch path in batches, and deletes it. A ``.replaying`` file that a start left
half done (a crash, a database that went away) is replayed first, from where it stopped.

Each row is written once. How far a file has been written is kept in the store
(``spill_replays``), updated in the same transaction as the rows: a crash between a write and
the next step resumes after the rows written, never before them. Rows keyed by a primary key
(traces, stored responses) that the store has already are skipped as well (a batch whose
commit went through though the writer was told it failed). A process replays a file only
while it holds its lock, so workers starting together share the files out, and a writer of
another process never appends to a file once it has been moved aside.

A line that cannot be read, or a row that the database refuses alone, is set aside in
``<stem>.<time>-<random>.rejected`` (a JSON object a line: the line's number, the error and
the line itself), logged, and counted in ``stackyard_writer_errors_total`` (kind ``rejected``);
the rest goes on. A database that cannot be reached stops the replay of that file: it is kept
for the next start. Start-up only: nothing here runs on the request path.
"""

from __future__ import annotations

import fcntl
import glob
import json
import logging
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, delete, select, text
from sqlalchemy.exc import DBAPIError, StatementError

from stackyard.store.batch_writer import ERRORS, BatchWriter, same_file
from stackyard.store.db import Database
from stackyard.store.tables import Base, SpillReplay

log = logging.getLogger("stackyard.store")

REPLAYING = ".replaying"
REJECTED = ".rejected"
#: Rejected lines logged one by one, per file (then only counted).
LOGGED_REJECTS = 10


@dataclass
class Replayed:
    """What a writer's replay did, over every file it took."""

    written: int = 0
    #: Rows the store had already (by primary key): not written again.
    present: int = 0
    rejected: int = 0
    #: Files left for the next start (the database could not take their rows).
    kept: list[Path] = field(default_factory=list)
    #: Where rejected lines were set aside.
    rejects: list[Path] = field(default_factory=list)


@dataclass
class _Line:
    number: int  # from 0
    text: bytes
    row: Any
    key: Any


class _Unreachable(Exception):
    """The database cannot take rows now: the file is kept for the next start."""


@dataclass
class _File:
    """One ``.replaying`` file's replay."""

    writer: BatchWriter[Any]
    path: Path
    done: Replayed
    table: Table | None
    key: str | None
    rejected_path: Path
    set_aside: set[int]
    rejected: int = 0

    @property
    def db(self) -> Database:
        return self.writer.db


def replay_spill(writer: BatchWriter[Any]) -> Replayed:
    """Write back ``writer``'s spill file, and any ``.replaying`` file a start left, before
    the writer starts (in a thread: it reads files and writes the store)."""
    spill = writer.spill_path
    done = Replayed()
    pattern = f"{glob.escape(spill.stem)}.*{REPLAYING}"
    leftovers = sorted(spill.parent.glob(pattern))  # the time in their names: oldest first
    fresh = _move_aside(spill)
    for path in leftovers:
        _replay_file(writer, path, done, wait=False)  # one another process holds: its
    if fresh is not None:
        _replay_file(writer, fresh, done, wait=True)  # a writer's append, at most, holds it
    return done


def _move_aside(spill: Path) -> Path | None:
    token = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    target = spill.with_name(f"{spill.stem}.{token}{REPLAYING}")
    try:
        os.rename(spill, target)
    except FileNotFoundError:
        return None
    return target


def _replay_file(writer: BatchWriter[Any], path: Path, done: Replayed, *, wait: bool) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # another process replayed it meanwhile
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another process is replaying it
            return
        if not same_file(fd, path):  # replayed and deleted while we waited
            return
        table = Base.metadata.tables.get(writer.table)
        keys = [] if table is None else [c.name for c in table.primary_key.columns]
        key = keys[0] if len(keys) == 1 and keys[0] in writer.columns else None
        rejected_path = path.with_name(path.name.removesuffix(REPLAYING) + REJECTED)
        replay = _File(writer, path, done, table, key, rejected_path, _set_aside(rejected_path))
        try:
            _replay_locked(replay, fd)
        except Exception as exc:
            done.kept.append(path)
            cause = exc.__cause__ if isinstance(exc, _Unreachable) else exc
            if isinstance(exc, _Unreachable) or _unreachable(writer.db, exc):
                log.warning(
                    "the database cannot take the %s of %s now (%s: %s); the file is kept "
                    "for the next start",
                    writer.what,
                    path,
                    type(cause).__name__,
                    str(cause).splitlines()[0][:200] if str(cause) else "",
                )
            else:
                log.exception("could not replay %s; it is kept for the next start", path)
        if replay.rejected:
            done.rejects.append(rejected_path)
    finally:
        os.close(fd)


def _replay_locked(replay: _File, fd: int) -> None:
    writer, path = replay.writer, replay.path
    start = _progress(replay.db, path.name)
    written, present = replay.done.written, replay.done.present
    size = max(1, writer.batch_size)
    total = 0
    with os.fdopen(fd, "rb", closefd=False) as lines:
        chunk: list[tuple[int, bytes]] = []
        for number, line in enumerate(lines):
            total = number + 1
            if number < start:
                continue
            chunk.append((number, line))
            if len(chunk) >= size:
                _replay_chunk(replay, chunk)
                chunk = []
        if chunk:
            _replay_chunk(replay, chunk)
    path.unlink()  # while it is locked: a process that waited for it finds it gone
    try:
        with replay.db.engine.begin() as connection:
            connection.execute(delete(SpillReplay).where(SpillReplay.name == path.name))
    except Exception as exc:  # a row about a file that is gone: harmless
        log.warning("could not forget the replay of %s: %s", path, exc)
    log.warning(
        "replayed %s: %d %s written, %d already in the store, %d set aside%s (of %d lines, "
        "%d of them done by an earlier start)",
        path,
        replay.done.written - written,
        writer.what,
        replay.done.present - present,
        replay.rejected,
        f" in {replay.rejected_path}" if replay.rejected else "",
        total,
        min(start, total),
    )


def _replay_chunk(replay: _File, chunk: list[tuple[int, bytes]]) -> None:
    """Write a batch of lines, and record in the same transaction that they are done; if the
    database refuses the batch, write its rows one by one and set aside those it refuses."""
    rows: list[_Line] = []
    for number, line in chunk:
        if not line.strip() or number in replay.set_aside:  # set aside by an earlier start
            continue
        try:
            record = json.loads(line.decode("utf-8"))
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            row = replay.writer.from_spill_record(record)
        except Exception as exc:
            _reject(replay, number, line, exc)
            continue
        rows.append(_Line(number, line, row, record.get(replay.key) if replay.key else None))
    end = chunk[-1][0] + 1
    try:
        _write(replay, rows, end)
        return
    except Exception as exc:
        if _unreachable(replay.db, exc):
            raise _Unreachable from exc
    for one in rows:  # a row, not the database: find it
        try:
            _write(replay, [one], one.number + 1)
        except Exception as exc:
            if _unreachable(replay.db, exc):
                raise _Unreachable from exc
            _reject(replay, one.number, one.text, exc)
    try:
        _write(replay, [], end)
    except Exception as exc:
        raise _Unreachable from exc


def _write(replay: _File, rows: Sequence[_Line], done: int) -> None:
    """In one transaction: the rows the store does not have yet, and ``done`` lines done."""
    with replay.db.engine.begin() as connection:
        fresh = _not_stored(replay, connection, rows)
        if fresh:
            replay.writer.write(connection, [line.row for line in fresh])
        connection.execute(
            text(
                "INSERT INTO spill_replays (name, lines) VALUES (:name, :lines) "
                "ON CONFLICT (name) DO UPDATE SET lines = excluded.lines"
            ),
            {"name": replay.path.name, "lines": done},
        )
    replay.done.written += len(fresh)
    replay.done.present += len(rows) - len(fresh)
    if fresh:
        try:
            replay.writer.written_rows([line.row for line in fresh])
        except Exception:
            log.exception("after writing %d %s", len(fresh), replay.writer.what)


def _not_stored(replay: _File, connection: Connection, rows: Sequence[_Line]) -> list[_Line]:
    """The rows whose key the store does not have (nor an earlier row of the same batch)."""
    if replay.key is None or replay.table is None:
        return list(rows)
    column = replay.table.c[replay.key]
    keys = [line.key for line in rows if line.key is not None]
    stored = set(connection.scalars(select(column).where(column.in_(keys)))) if keys else set()
    fresh = []
    for line in rows:
        if line.key is not None:
            if line.key in stored:
                continue
            stored.add(line.key)
        fresh.append(line)
    return fresh


def _reject(replay: _File, number: int, line: bytes, exc: BaseException) -> None:
    """Set a line aside in the ``.rejected`` file (once, however many times it is tried)."""
    if number in replay.set_aside:
        return
    message = str(exc).splitlines()
    error = f"{type(exc).__name__}: {message[0] if message else ''}"[:500]
    entry = {
        "line": number + 1,
        "error": error,
        "text": line.decode("utf-8", "replace").rstrip("\r\n"),
    }
    with replay.rejected_path.open("a", encoding="utf-8") as rejected:
        rejected.write(json.dumps(entry) + "\n")
    replay.set_aside.add(number)
    replay.rejected += 1
    replay.done.rejected += 1
    ERRORS.inc(replay.writer.spill_name, "rejected")
    if replay.rejected <= LOGGED_REJECTS:
        log.error(
            "set aside line %d of %s in %s: %s",
            number + 1,
            replay.path,
            replay.rejected_path,
            error,
        )


def _set_aside(rejected_path: Path) -> set[int]:
    """The lines (from 0) an earlier start set aside already."""
    numbers: set[int] = set()
    try:
        content = rejected_path.read_bytes()
    except FileNotFoundError:
        return numbers
    for line in content.splitlines():
        try:
            numbers.add(int(json.loads(line)["line"]) - 1)
        except (ValueError, KeyError, TypeError):
            continue
    return numbers


def _progress(db: Database, name: str) -> int:
    """How many lines of the file an earlier start wrote (or set aside)."""
    with db.engine.connect() as connection:
        lines = connection.scalar(select(SpillReplay.lines).where(SpillReplay.name == name))
    return int(lines or 0)


def _unreachable(db: Database, exc: BaseException) -> bool:
    """Whether a failure is the database's (gone, refusing connections, locked), not a row's."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    cause = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    if {"OperationalError", "InterfaceError"} & {c.__name__ for c in type(cause).__mro__}:
        return True
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        return True
    return False
