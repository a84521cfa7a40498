"""The spend log's writer: every accepted request's row, never dropped (see
:class:`~stackyard.store.batch_writer.BatchWriter`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from stackyard.store.batch_writer import BatchWriter
from stackyard.store.tables import SpendRecord

#: The columns a row carries, in order (``id`` is assigned by the database).
COLUMNS = [c.name for c in SpendRecord.__table__.columns if c.name != "id"]
CREATED_AT = COLUMNS.index("created_at")

#: One spend row: values in ``COLUMNS`` order; ``created_at`` as epoch seconds.
Row = tuple[Any, ...]

SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


def db_time(epoch: float, sqlite: bool) -> dt.datetime | str:
    """A timestamp as the driver takes it (SQLite: the text SQLAlchemy stores there)."""
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.strftime(SQLITE_TIME) if sqlite else moment


#: Bound parameters in one statement: SQLite allows 32,766, PostgreSQL 65,535.
MAX_PARAMETERS = 30_000


def insert_rows(
    connection: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert ``rows`` in bulk: ``COPY ... FROM STDIN`` on PostgreSQL, and elsewhere as few
    multi-row ``INSERT ... VALUES (...), (...)`` statements as the database allows. Never one
    statement per row (``executemany``): the driver would release and retake the GIL once per
    row, and retaking it can wait a whole switch interval (5 ms) while the event loop's thread
    is busy. (A multi-row INSERT on psycopg costs far more than COPY: it parses the
    statement's thousands of placeholders each time.)"""
    if connection.dialect.name == "postgresql":
        raw = connection.connection.driver_connection
        assert raw is not None
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    one = "(" + ", ".join([mark] * len(columns)) + ")"
    per_statement = max(1, MAX_PARAMETERS // len(columns))
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        values = tuple(value for row in chunk for value in row)
        connection.exec_driver_sql(head + ", ".join([one] * len(chunk)), values)


class SpendWriter(BatchWriter[Row]):
    what = "spend rows"
    spill_name = "spend"

    def insert(self, rows: Sequence[Row]) -> None:
        """Multi-row inserts through the driver, with the rows as tuples (the ORM's bulk insert
        cost several times as much, in a thread that competes with the event loop)."""
        with self.db.engine.begin() as connection:
            sqlite = connection.dialect.name == "sqlite"
            values = []
            for row in rows:
                record = list(row)
                record[CREATED_AT] = db_time(row[CREATED_AT], sqlite)
                values.append(tuple(record))
            insert_rows(connection, "spend_log", COLUMNS, values)

    def spill_record(self, row: Row) -> dict[str, Any]:
        return dict(zip(COLUMNS, row, strict=True))
