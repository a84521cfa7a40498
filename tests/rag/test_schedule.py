"""Scheduled syncs: a collection with ``sync_every`` is synced by the server's loop once its
last sync is that old, and not before; one without it never is."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from stackyard.config.schema import StackyardConfig
from stackyard.gateway.rag_models import RouterModels
from stackyard.gateway.service import Gateway
from stackyard.rag.schedule import due, run_schedule
from stackyard.rag.service import RAG
from stackyard.store.db import Database
from tests.fakes.openai_upstream import FakeOpenAI


@pytest.fixture
async def rag(tmp_path: Path, fake_openai: FakeOpenAI) -> AsyncIterator[RAG]:
    config = StackyardConfig.model_validate(
        {
            "models": [
                {
                    "name": "embed",
                    "provider": "openai-compatible",
                    "model": "text-embedding-3-small",
                    "api_base": fake_openai.base_url("rag-schedule"),
                }
            ]
        }
    )
    gateway = Gateway(config)
    db = Database(f"sqlite:///{tmp_path / 'main.db'}")
    db.migrate()
    made = RAG(config.rag, db, RouterModels(gateway.router), base_dir=tmp_path)
    yield made
    made.close()
    await gateway.aclose()
    db.dispose()


async def test_the_schedule_syncs_what_is_due_and_only_that(rag: RAG, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text("Alpha notes.")
    scheduled = rag.create("scheduled", {"sources": [{"path": str(folder)}], "sync_every": 60})
    manual = rag.create("manual", {"sources": [{"path": str(folder)}]})
    now = time.time()
    assert due(scheduled, now)  # never synced
    assert not due(manual, now)

    loop = asyncio.ensure_future(run_schedule(rag, tick=0.05))
    try:
        for _ in range(200):
            if rag.collections.get("scheduled").last_sync:
                break
            await asyncio.sleep(0.05)
        synced = rag.collections.get("scheduled")
        assert synced.last_sync is not None
        assert synced.last_sync["added"] == 1
        first = synced.last_sync["finished_at"]
        assert now <= first <= time.time()
        await asyncio.sleep(0.3)  # several ticks: not due again for a minute
        assert (rag.collections.get("scheduled").last_sync or {})["finished_at"] == first
        assert rag.collections.get("manual").last_sync is None
    finally:
        loop.cancel()
    assert not due(rag.collections.get("scheduled"), first + 59)
    assert due(rag.collections.get("scheduled"), first + 60)


def test_a_schedule_shorter_than_a_minute_is_refused(rag: RAG) -> None:
    from stackyard.rag.collections import RagError

    with pytest.raises(RagError, match="sync_every"):
        rag.create("eager", {"sync_every": 5})
