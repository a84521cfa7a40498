"""The store against real databases: SQLite always, PostgreSQL when it runs (under CI it must)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stackyard.store.db import Database
from tests.conftest import postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'stackyard.db'}")
        database.migrate()
        yield database
        database.dispose()
        return
    for url in postgres_database():
        database = Database(url)
        database.migrate()
        yield database
        database.dispose()
