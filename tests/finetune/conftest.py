"""The store's ``db`` fixture (SQLite and PostgreSQL) for jobs and files."""

from tests.store.conftest import db

__all__ = ["db"]
