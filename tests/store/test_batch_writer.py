"""A background writer cannot die: a row that cannot be written is set aside (counted, spilled)
without holding back the others, and a failure of the loop itself is survived. Once, one
request's trace (a body nested a thousand levels deep) stopped every team's traces until a
restart."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stackyard.store.batch_writer import ERRORS, BatchWriter
from stackyard.store.db import Database


class Rows(BatchWriter[str]):
    what = "test rows"
    spill_name = "test-rows"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stored: list[str] = []
        self.after_fails = False

    def insert(self, rows: Sequence[str]) -> None:
        if any(r.startswith("poison") for r in rows):
            raise RecursionError("maximum recursion depth exceeded")
        self.stored.extend(rows)

    def spill_record(self, row: str) -> dict[str, Any]:
        if row == "poison-unencodable":
            raise RecursionError("maximum recursion depth exceeded while encoding")
        return {"row": row}

    def from_spill_record(self, record: dict[str, Any]) -> str:
        return str(record["row"])

    def write(self, connection: Any, rows: Sequence[str]) -> None:
        self.insert(rows)

    def written_rows(self, rows: Sequence[str]) -> None:
        if self.after_fails:
            raise ValueError("a bug after the write")


async def settle(writer: Rows, count: int) -> None:
    for _ in range(500):
        if len(writer.stored) >= count:
            return
        await asyncio.sleep(0.01)


async def test_a_row_that_cannot_be_written_never_stops_the_others(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'w.db'}")
    spill = tmp_path / "spill.jsonl"
    writer = Rows(db, interval=0.05, spill_path=spill, retry_delay=0)
    before = {k: ERRORS.get("test-rows", k) for k in ("row", "lost", "spilled", "loop")}
    writer.start()
    for row in ("a", "poison-1", "b", "poison-unencodable", "c"):
        await writer.put(row)
    await settle(writer, 3)
    assert writer.stored == ["a", "b", "c"]  # written, one by one, around the bad ones
    writer.after_fails = True  # a failure after a write is logged, not fatal
    await writer.put("d")
    await settle(writer, 4)
    writer.after_fails = False
    await writer.put("e")
    await settle(writer, 5)
    assert writer.problem is None
    await writer.close()
    assert writer.stored == ["a", "b", "c", "d", "e"]
    assert [json.loads(line) for line in spill.read_text().splitlines()] == [{"row": "poison-1"}]
    assert ERRORS.get("test-rows", "row") - before["row"] == 2
    assert ERRORS.get("test-rows", "spilled") - before["spilled"] == 1
    assert ERRORS.get("test-rows", "lost") - before["lost"] == 1
    db.dispose()


async def test_a_failure_of_the_loop_itself_is_survived(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'w.db'}")
    writer = Rows(db, interval=0.01, spill_path=tmp_path / "spill.jsonl", retry_delay=0)
    original = writer._flush
    calls = 0

    async def flaky(rows: list[str]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise MemoryError("the first batch breaks the loop")
        await original(rows)

    writer._flush = flaky  # type: ignore[method-assign]
    before = ERRORS.get("test-rows", "loop")
    writer.start()
    await writer.put("lost-with-the-broken-batch")
    for _ in range(200):
        if ERRORS.get("test-rows", "loop") > before:
            break
        await asyncio.sleep(0.01)
    await writer.put("after")
    await settle(writer, 1)
    assert writer.stored == ["after"]
    assert writer.problem is None
    await writer.close()
    db.dispose()


async def test_a_writer_whose_database_is_down_says_so(tmp_path: Path) -> None:
    down = Database("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    writer = Rows(down, interval=0.01, spill_path=tmp_path / "spill.jsonl", retry_delay=0)
    writer.insert = lambda rows: (_ for _ in ()).throw(ConnectionError("down"))  # type: ignore[method-assign]
    writer.start()
    await writer.put("x")
    for _ in range(500):
        if writer.spilled:
            break
        await asyncio.sleep(0.01)
    assert writer.spilled == 1
    assert writer.problem is not None
    assert "cannot reach the database" in writer.problem
    await writer.close()
