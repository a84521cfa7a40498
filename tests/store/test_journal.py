"""The spend journal: rows on disk within a group commit, segments deleted once the writer is
done with them, and a dead process's segments (and the spill file) written back at start, each
row once."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import orjson

from stackyard.store.db import Database
from stackyard.store.journal import SpendJournal, replay
from stackyard.store.spend_writer import COLUMNS, SpendWriter, spend_row


def row(n: int) -> tuple[object, ...]:
    return spend_row(
        request_id=f"req-{n}",
        created_at=1_700_000_000.0 + n,
        model="m",
        endpoint="chat",
        prompt_tokens=1,
        completion_tokens=1,
        cost_usd=0.5,
        latency_ms=1.0,
        status=200,
        cache_hit=False,
        entry_id=f"{n:032x}",
    )


async def test_rows_reach_the_disk_in_group_commits_and_leave_when_done(tmp_path: Path) -> None:
    journal = SpendJournal(tmp_path / "j", commit_interval=0.005, segment_rows=3)
    journal.open()
    for n in range(4):
        journal.append(row(n))
    assert journal.committed == 0  # not yet: the group commit comes within 5 ms
    await asyncio.sleep(0.05)
    assert journal.committed == 4  # one write for the four
    files = sorted((tmp_path / "j").glob("*.jsonl"))
    assert len(files) == 2  # the first segment is full (3 rows or more): a second started
    lines = b"".join(f.read_bytes() for f in files).splitlines()
    assert [orjson.loads(line)[0] for line in lines] == ["req-0", "req-1", "req-2", "req-3"]
    journal.append(row(4))
    journal.commit()
    journal.done(3)
    assert len(list((tmp_path / "j").glob("*.jsonl"))) == 2  # the first still has a row due
    journal.done(1)
    assert len(list((tmp_path / "j").glob("*.jsonl"))) == 1  # the first is gone
    journal.close()  # one row not done: the segment stays for the next start
    assert len(list((tmp_path / "j").glob("*.jsonl"))) == 1
    again = SpendJournal(tmp_path / "k")
    again.open()
    again.append(row(5))
    again.commit()
    again.done(1)
    again.close()  # everything done: nothing left
    assert list((tmp_path / "k").glob("*.jsonl")) == []


def test_a_dead_process_rows_are_written_back_once(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'spend.db'}")
    db.migrate()
    writer = SpendWriter(db, spill_path=tmp_path / "spill.jsonl")
    folder = tmp_path / "j"
    folder.mkdir()
    writer.insert([row(0), row(1)])  # written before the crash
    dead = folder / "dead.jsonl"  # a segment no process holds any more
    dead.write_bytes(
        b"".join(orjson.dumps(row(n)) + b"\n" for n in range(4)) + b'["req-4", 17'  # cut short
    )
    (tmp_path / "spill.jsonl").write_text(
        orjson.dumps(dict(zip(COLUMNS, row(9), strict=True))).decode() + "\n"
    )
    living = SpendJournal(folder)  # this process's own: locked, never replayed
    living.open()
    living.append(row(5))
    living.commit()
    written = replay(folder, tmp_path / "spill.jsonl", COLUMNS, writer.present, writer.insert)
    assert written == 3  # rows 2 and 3 from the journal, row 9 from the spill file
    assert not dead.exists()
    assert not (tmp_path / "spill.jsonl").exists()
    assert list(tmp_path.glob("spill.jsonl.replayed-*"))
    assert len(list(folder.glob("*.jsonl"))) == 1  # the living one
    again = replay(folder, tmp_path / "spill.jsonl", COLUMNS, writer.present, writer.insert)
    assert again == 0
    with db.engine.connect() as connection:
        ids = sorted(r[0] for r in connection.exec_driver_sql("select request_id from spend_log"))
        cost = connection.exec_driver_sql("select sum(cost_usd) from spend_daily").scalar()
    assert ids == ["req-0", "req-1", "req-2", "req-3", "req-9"]
    assert cost == 2.5  # the daily rollup counts the written-back rows too
    living.close()
    db.dispose()
    os.sync()
