"""The batch store against real databases: the store's own fixture (SQLite always,
PostgreSQL when it runs; under CI it must)."""

from tests.store.conftest import db

__all__ = ["db"]
