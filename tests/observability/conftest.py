"""The store's ``db`` fixture (SQLite and PostgreSQL) for the trace writer and queries."""

from tests.store.conftest import db

__all__ = ["db"]
