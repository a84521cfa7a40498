"""The server's start-up writes back the traces, guardrail decisions and stored responses that
its writers spilled while the database refused them, each once: before, the spill files of all
but the spend log were never read back, and what they held was lost unless written by hand."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from stackyard.gateway.stored_responses import ResponseWriter
from stackyard.observability.writer import TraceWriter
from stackyard.store.audit_writer import AuditWriter
from stackyard.store.batch_writer import BatchWriter
from stackyard.store.db import Database
from stackyard.store.tables import GuardrailDecision, StoredResponseRecord, TraceRecord
from tests.conftest import postgres_database
from tests.fakes.openai_upstream import FakeOpenAI
from tests.server.harness import running
from tests.store.test_spill_replay import a_decision, a_response, a_trace

TABLES = (TraceRecord, GuardrailDecision, StoredResponseRecord)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        yield from postgres_database()


async def spill_everything() -> None:
    """Rows of each writer, refused by a database without tables: into the spill files of the
    working directory, where the server's writers keep them."""
    refusing = Database(f"sqlite:///{Path.cwd() / 'refusing.db'}")
    quick: dict[str, Any] = {"interval": 0.01, "retry_delay": 0}
    spills: list[tuple[BatchWriter[Any], list[Any]]] = [
        (TraceWriter(refusing, **quick), [a_trace(n) for n in range(3)]),
        (AuditWriter(refusing, **quick), [a_decision(n) for n in range(4)]),
        (ResponseWriter(refusing, **quick), [a_response(n) for n in range(2)]),
    ]
    for writer, rows in spills:
        writer.start()
        for row in rows:
            await writer.put(row)
        await writer.close()
        assert writer.spilled == len(rows)
    refusing.dispose()


def counts(url: str) -> list[int]:
    db = Database(url)
    with db.engine.connect() as connection:
        found = [connection.scalar(select(func.count()).select_from(t)) or 0 for t in TABLES]
    db.dispose()
    return found


def left(folder: Path) -> list[str]:
    return sorted(
        p.name for p in folder.iterdir() if p.name.startswith("stackyard-") and p.is_file()
    )


async def test_a_start_writes_the_spill_files_back_once(
    fake_openai: FakeOpenAI,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    await spill_everything()
    assert left(tmp_path) == [
        "stackyard-audit-unwritten.jsonl",
        "stackyard-responses-unwritten.jsonl",
        "stackyard-traces-unwritten.jsonl",
    ]
    config: dict[str, Any] = {
        "models": [
            {"name": "m", "provider": "openai-compatible", "api_base": fake_openai.base_url("s")}
        ],
        "database_url": database_url,
    }
    with caplog.at_level(logging.WARNING, logger="stackyard"):
        async with running(config):
            assert counts(database_url) == [3, 4, 2]
            assert left(tmp_path) == []  # no spill, .replaying or .rejected file
    said = caplog.text
    assert "wrote 3 traces from the spill file" in said
    assert "wrote 4 guardrail decisions from the spill file" in said
    assert "wrote 2 stored responses from the spill file" in said
    caplog.clear()
    async with running(config):  # the next start: nothing more
        assert counts(database_url) == [3, 4, 2]
    assert "from the spill file" not in caplog.text
