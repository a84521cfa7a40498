"""The spend log's writer: every accepted request's row, never dropped (see
:class:`~stackyard.store.batch_writer.BatchWriter`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

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


def insert_sql(table: str, columns: Sequence[str], paramstyle: str) -> str:
    mark = "?" if paramstyle == "qmark" else "%s"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"


class SpendWriter(BatchWriter[Row]):
    what = "spend rows"
    spill_name = "spend"

    def insert(self, rows: Sequence[Row]) -> None:
        """One executemany through the driver, with the rows as tuples (the ORM's bulk insert
        cost several times as much, in a thread that competes with the event loop)."""
        with self.db.engine.begin() as connection:
            sqlite = connection.dialect.name == "sqlite"
            values = []
            for row in rows:
                record = list(row)
                record[CREATED_AT] = db_time(row[CREATED_AT], sqlite)
                values.append(tuple(record))
            sql = insert_sql("spend_log", COLUMNS, connection.dialect.paramstyle)
            connection.exec_driver_sql(sql, values)

    def spill_record(self, row: Row) -> dict[str, Any]:
        return dict(zip(COLUMNS, row, strict=True))
