"""The store: SQLAlchemy models and Alembic migrations, on SQLite by default or PostgreSQL.

Nothing here runs on the request path: the gateway serves keys and limits from in-memory
snapshots and writes spend through a bounded queue, in batches, from a thread of its own.
"""
