"""The store's ``db`` fixture (SQLite and PostgreSQL) for the registry."""

from tests.store.conftest import db

__all__ = ["db"]
