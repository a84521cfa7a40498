"""Spill files read back at start-up, each row once, on SQLite and PostgreSQL. Rows the trace,
audit and stored-response writers spilled while the database refused them were never read
back: they stayed in ``stackyard-*-unwritten.jsonl`` until someone wrote them by hand. Each
test spills rows through the real writer, with a database that refuses them (one without its
tables), then replays the file into a real one."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from stackyard.gateway.stored_responses import ResponseWriter, Stored
from stackyard.observability.redact import Redactor
from stackyard.observability.spans import SERVER, RequestTrace, Span, new_span_id, new_trace_id
from stackyard.observability.writer import Finished, TraceWriter
from stackyard.store.audit_writer import AuditWriter
from stackyard.store.batch_writer import ERRORS, BatchWriter
from stackyard.store.db import Database
from stackyard.store.spill_replay import replay_spill
from stackyard.store.tables import (
    GuardrailDecision,
    SpillReplay,
    StoredResponseRecord,
    TraceRecord,
)
from stackyard.store.tables.base import aware

DOWN = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"


def a_trace(number: int) -> Finished:
    start = time.time_ns() - number * 1_000_000_000
    root = Span("chat m", new_span_id(), None, start, start + 10_000_000)
    root.kind = SERVER
    trace = RequestTrace(
        f"req_{number}",
        new_trace_id(),
        root,
        "chat",
        "m",
        {"model": "m", "messages": [{"role": "user", "content": f"question {number}"}]},
    )
    trace.response = {"choices": [{"message": {"content": f"answer {number}"}}]}
    trace.child("upstream", start + 1, start + 2)
    return Finished(
        trace, "k", "team-a", None, 200, None, "m#0", "openai", 5, 7, 0.01, False, 1, "full"
    )


def a_decision(number: int) -> tuple[Any, ...]:
    # Two decisions of one request can be alike in every column (one time per request).
    request = number // 2
    at = 1_700_000_000.0 + request
    return (f"req_{request}", at, "team-a", "k", "m", "chat", "pii", "redact", {"email": 1})


def a_response(number: int) -> tuple[Any, ...]:
    return Stored(
        id=f"resp_{number}",
        owner="team-a",
        team_id="team-a",
        created_at=time.time() - number,
        model="m",
        response={"id": f"resp_{number}", "object": "response", "output": []},
        items=[{"id": f"msg_{number}", "type": "message", "role": "user", "content": "hi"}],
        messages=[{"role": "user", "content": "hi"}],
    ).row()


def traces_stored(db: Database) -> list[Any]:
    t = TraceRecord
    with db.engine.connect() as connection:
        rows = connection.execute(
            select(t.id, t.request_id, t.request_body, t.span_count, t.started_at)
        )
        return sorted((*r[:4], round(aware(r[4]).timestamp(), 3)) for r in rows)


def traces_expected(rows: list[Finished]) -> list[Any]:
    found = []
    for done in rows:
        trace = done.trace
        body = json.dumps(trace.body, separators=(",", ":"))
        started = round(trace.root.start_ns / 1e9, 3)
        found.append((trace.root.span_id, trace.request_id, body, 2, started))
    return sorted(found)


def decisions_stored(db: Database) -> list[Any]:
    g = GuardrailDecision
    with db.engine.connect() as connection:
        rows = connection.execute(select(g.request_id, g.rail, g.action, g.detail))
        return sorted((r[0], r[1], r[2], json.dumps(r[3])) for r in rows)


def decisions_expected(rows: list[Any]) -> list[Any]:
    return sorted((r[0], r[6], r[7], json.dumps(r[8])) for r in rows)


def responses_stored(db: Database) -> list[Any]:
    r = StoredResponseRecord
    with db.engine.connect() as connection:
        rows = connection.execute(select(r.id, r.owner, r.body))
        return sorted((row[0], row[1], json.loads(row[2])) for row in rows)


def responses_expected(rows: list[Any]) -> list[Any]:
    return sorted((r[0], r[1], r[5]) for r in rows)


@dataclass
class Kind:
    name: str
    writer: Callable[..., BatchWriter[Any]]
    row: Callable[[int], Any]
    stored: Callable[[Database], list[Any]]
    expected: Callable[[list[Any]], list[Any]]
    #: A column the store refuses as null.
    required: str


KINDS = [
    Kind(
        "traces",
        lambda db, **kw: TraceWriter(db, redactor=Redactor(), **kw),
        a_trace,
        traces_stored,
        traces_expected,
        "request_id",
    ),
    Kind("audit", AuditWriter, a_decision, decisions_stored, decisions_expected, "request_id"),
    Kind("responses", ResponseWriter, a_response, responses_stored, responses_expected, "owner"),
]


@pytest.fixture(params=KINDS, ids=[k.name for k in KINDS])
def kind(request: pytest.FixtureRequest) -> Kind:
    kind: Kind = request.param
    return kind


@pytest.fixture
def spill(tmp_path: Path) -> Path:
    return tmp_path / "spill" / "stackyard-rows-unwritten.jsonl"


def spill_rows(kind: Kind, spill: Path, rows: list[Any]) -> None:
    """The real writer, on a database without its tables: every row goes to the spill file."""
    spill.parent.mkdir(exist_ok=True)
    refusing = Database(f"sqlite:///{spill.parent / 'refusing.db'}")

    async def run() -> None:
        writer = kind.writer(refusing, interval=0.01, spill_path=spill, retry_delay=0)
        writer.start()
        for row in rows:
            await writer.put(row)
        await writer.close()
        assert (writer.written, writer.spilled) == (0, len(rows))

    asyncio.run(run())
    refusing.dispose()
    assert len(spill.read_text().splitlines()) == len(rows)


def writer_on(kind: Kind, db: Database, spill: Path, **kwargs: Any) -> BatchWriter[Any]:
    return kind.writer(db, spill_path=spill, **kwargs)


def files(spill: Path) -> list[str]:
    return sorted(p.name for p in spill.parent.iterdir() if ".db" not in p.name)


def test_spilled_rows_are_written_back_once(kind: Kind, db: Database, spill: Path) -> None:
    rows = [kind.row(n) for n in range(7)]
    spill_rows(kind, spill, rows)
    assert kind.stored(db) == []  # the fault: nothing reads the spill file back
    done = replay_spill(writer_on(kind, db, spill, batch_size=3))
    assert (done.written, done.present, done.rejected, done.kept) == (7, 0, 0, [])
    assert kind.stored(db) == kind.expected(rows)
    assert files(spill) == []  # the file is gone, and no .replaying or .rejected is left
    with db.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(SpillReplay)) == 0
    again = replay_spill(writer_on(kind, db, spill))  # the next start
    assert again.written == 0
    assert kind.stored(db) == kind.expected(rows)


def test_a_crash_between_the_write_and_the_delete_writes_nothing_twice(
    kind: Kind, db: Database, spill: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [kind.row(n) for n in range(5)]
    spill_rows(kind, spill, rows)

    def crash(self: Path, missing_ok: bool = False) -> None:
        raise SystemExit("killed before the file was deleted")

    with monkeypatch.context() as patch:
        patch.setattr(Path, "unlink", crash)
        with pytest.raises(SystemExit):
            replay_spill(writer_on(kind, db, spill, batch_size=2))
    [left] = files(spill)
    assert left.endswith(".replaying")  # its rows written, the file still there
    assert kind.stored(db) == kind.expected(rows)
    done = replay_spill(writer_on(kind, db, spill))
    assert (done.written, done.rejected) == (0, 0)
    assert kind.stored(db) == kind.expected(rows)
    assert files(spill) == []


def test_a_crash_between_two_batches_resumes_after_the_first(
    kind: Kind, db: Database, spill: Path
) -> None:
    rows = [kind.row(n) for n in range(5)]
    spill_rows(kind, spill, rows)
    writer = writer_on(kind, db, spill, batch_size=2)
    original = writer.write
    calls = 0

    def dies_on_the_second_batch(connection: Any, batch: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise SystemExit("killed while writing the second batch")
        original(connection, batch)

    writer.write = dies_on_the_second_batch  # type: ignore[method-assign,assignment]
    with pytest.raises(SystemExit):
        replay_spill(writer)
    assert len(kind.stored(db)) == 2  # the first batch, and its progress, committed together
    done = replay_spill(writer_on(kind, db, spill))
    assert done.written == 3
    assert kind.stored(db) == kind.expected(rows)
    assert files(spill) == []


def test_lines_that_cannot_be_read_or_written_are_set_aside(
    kind: Kind, db: Database, spill: Path
) -> None:
    rows = [kind.row(n) for n in range(3)]
    spill_rows(kind, spill, rows)
    good = spill.read_text().splitlines()
    refused = json.loads(good[0])
    refused[kind.required] = None  # read, but refused by the store
    if "id" in refused:
        refused["id"] = "another-id"
    bad = ["not json", "[1, 2]", '{"only": "this"}', json.dumps(refused), good[2][:20]]
    spill.write_text("\n".join([good[0], *bad[:2], good[1], *bad[2:], good[2]]) + "\n")
    before = ERRORS.get(kind.name, "rejected")
    done = replay_spill(writer_on(kind, db, spill))
    assert (done.written, done.rejected, done.kept) == (3, 5, [])
    assert kind.stored(db) == kind.expected(rows)
    assert ERRORS.get(kind.name, "rejected") - before == 5
    [rejected] = files(spill)
    assert rejected.endswith(".rejected")
    entries = [json.loads(line) for line in (spill.parent / rejected).read_text().splitlines()]
    assert sorted((e["line"], e["text"]) for e in entries) == [
        (2, bad[0]),
        (3, bad[1]),
        (5, bad[2]),
        (6, bad[3]),
        (7, bad[4]),
    ]
    assert all(e["error"] for e in entries)
    again = replay_spill(writer_on(kind, db, spill))
    assert (again.written, again.rejected) == (0, 0)
    assert ERRORS.get(kind.name, "rejected") - before == 5


def test_a_database_that_cannot_be_reached_keeps_the_file(
    kind: Kind, db: Database, spill: Path
) -> None:
    first = [kind.row(n) for n in range(3)]
    spill_rows(kind, spill, first)
    down = Database(DOWN)
    done = replay_spill(writer_on(kind, down, spill))
    down.dispose()
    assert done.written == 0
    assert [p.name for p in done.kept] == files(spill)
    [kept] = files(spill)
    assert kept.endswith(".replaying")
    later = [kind.row(n) for n in range(3, 5)]
    spill_rows(kind, spill, later)  # a new spill file beside it
    done = replay_spill(writer_on(kind, db, spill))
    assert (done.written, done.kept) == (5, [])
    assert kind.stored(db) == kind.expected(first + later)
    assert files(spill) == []


@pytest.fixture
def held(spill: Path) -> Iterator[Callable[[Path], None]]:
    fds: list[int] = []

    def hold(path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        fds.append(fd)

    yield hold
    for fd in fds:
        os.close(fd)


def test_a_file_another_process_is_replaying_is_left_to_it(
    db: Database, spill: Path, held: Callable[[Path], None]
) -> None:
    kind = KINDS[1]
    spill_rows(kind, spill, [kind.row(0)])
    leftover = spill.with_name(f"{spill.stem}.20250101T000000Z-0000.replaying")
    spill.rename(leftover)
    held(leftover)  # another worker, starting at the same time, took it
    done = replay_spill(writer_on(kind, db, spill))
    assert done.written == 0
    assert leftover.exists()
    assert kind.stored(db) == []


def test_an_append_that_finds_its_file_moved_aside_goes_to_the_new_one(spill: Path) -> None:
    """A writer of another process opens the spill file; a start-up's replay moves it aside
    and holds it; the writer, once it has the lock, must not append to the file moved aside
    (the replay has read it, and deletes it)."""
    kind = KINDS[1]
    spill_rows(kind, spill, [kind.row(0)])
    writer = writer_on(kind, Database(f"sqlite:///{spill.parent / 'refusing.db'}"), spill)
    replaying = os.open(spill, os.O_RDONLY)
    fcntl.flock(replaying, fcntl.LOCK_EX)
    appending = threading.Thread(target=writer._append, args=(["late\n"],))
    appending.start()
    time.sleep(0.2)  # the writer has opened the file, and waits for its lock
    moved = spill.with_name("moved.replaying")
    spill.rename(moved)
    os.close(replaying)
    appending.join(10)
    assert len(moved.read_text().splitlines()) == 1  # untouched
    assert spill.read_text() == "late\n"
