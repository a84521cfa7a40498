"""Several processes bringing one fresh database up to date at once (the workers of one
``stackyard serve``, or instances starting together): all succeed, one migrates, the others find
nothing left to do. It had failed with "table teams already exists"."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
from sqlalchemy import inspect

from stackyard.store.db import Database
from tests.conftest import postgres_database

PROCESSES = 4


def _migrate(url: str, start: Barrier) -> None:
    start.wait()  # all begin at once
    database = Database(url)
    try:
        database.migrate()
    finally:
        database.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'stackyard.db'}"
    else:
        yield from postgres_database()


def test_processes_migrating_one_fresh_database_at_once_all_succeed(url: str) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    processes = [context.Process(target=_migrate, args=(url, start)) for _ in range(PROCESSES)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [p.exitcode for p in processes] == [0] * PROCESSES
    database = Database(url)
    try:
        assert "teams" in inspect(database.engine).get_table_names()
    finally:
        database.dispose()
