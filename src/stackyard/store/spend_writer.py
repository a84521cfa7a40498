"""The spend log's writer: every accepted request's row, never dropped (see
:class:`~stackyard.store.batch_writer.BatchWriter`), and the daily rollup of those rows, kept
in the same transaction."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from stackyard.store.batch_writer import BatchWriter
from stackyard.store.journal import SpendJournal
from stackyard.store.tables import SpendDaily, SpendRecord

#: The columns a row carries, in order (``id`` is assigned by the database).
COLUMNS = [c.name for c in SpendRecord.__table__.columns if c.name != "id"]
CREATED_AT = COLUMNS.index("created_at")

#: One spend row: values in ``COLUMNS`` order; ``created_at`` as epoch seconds.
Row = tuple[Any, ...]

#: The rollup's key (after the day) and sums, and where each comes from in a row.
OWNERS = ("organization_id", "team_id", "user_id", "key_id", "model")
_OWNER_AT = [COLUMNS.index(name) for name in OWNERS]
_AT = {name: COLUMNS.index(name) for name in COLUMNS}
DAILY_COLUMNS = [c.name for c in SpendDaily.__table__.columns]
_SUMS = DAILY_COLUMNS[1 + len(OWNERS) :]


def spend_row(**values: Any) -> Row:
    """A row from named values (the rest: None), for callers off the hot path."""
    return tuple(values.get(name) for name in COLUMNS)


EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def rollup(rows: Sequence[Row]) -> dict[tuple[Any, ...], list[float]]:
    """The rows' sums per UTC day (a date ordinal) and owners (``_SUMS`` order)."""
    groups: dict[tuple[Any, ...], list[float]] = {}
    for row in rows:
        day = EPOCH_ORDINAL + int(row[CREATED_AT] // 86400)  # a UTC day, as an ordinal
        key = (day, *(row[i] or "" for i in _OWNER_AT))
        sums = groups.get(key)
        if sums is None:
            sums = groups[key] = [0, 0, 0, 0, 0, 0.0, 0.0]
        sums[0] += 1
        sums[1] += row[_AT["status"]] >= 400
        sums[2] += bool(row[_AT["cache_hit"]])
        sums[3] += row[_AT["prompt_tokens"]] or 0
        sums[4] += row[_AT["completion_tokens"]] or 0
        sums[5] += row[_AT["cost_usd"]] or 0.0
        sums[6] += row[_AT["latency_ms"]] or 0.0
    return groups


def upsert_daily(connection: Connection, rows: Sequence[Row]) -> None:
    """Add the rows to their days' rollups: one ``INSERT ... ON CONFLICT DO UPDATE`` (the same
    statement on SQLite and PostgreSQL), its groups in key order so that two instances
    updating the same days lock them in the same order."""
    groups = rollup(rows)
    if not groups:
        return
    sqlite = connection.dialect.name == "sqlite"
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    one = "(" + ", ".join([mark] * len(DAILY_COLUMNS)) + ")"
    keys = ", ".join(DAILY_COLUMNS[: 1 + len(OWNERS)])
    updates = ", ".join(f"{c} = spend_daily.{c} + excluded.{c}" for c in _SUMS)
    ordered = sorted(groups.items())
    per_statement = max(1, MAX_PARAMETERS // len(DAILY_COLUMNS))
    for start in range(0, len(ordered), per_statement):
        chunk = ordered[start : start + per_statement]
        values: list[Any] = []
        for (ordinal, *owners), sums in chunk:
            day = dt.date.fromordinal(ordinal)
            values += [day.isoformat() if sqlite else day, *owners, *sums]
        connection.exec_driver_sql(
            f"INSERT INTO spend_daily ({', '.join(DAILY_COLUMNS)}) VALUES "
            + ", ".join([one] * len(chunk))
            + f" ON CONFLICT ({keys}) DO UPDATE SET {updates}",
            tuple(values),
        )


SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


def db_time(epoch: float, sqlite: bool) -> dt.datetime | str:
    """A timestamp as the driver takes it (SQLite: the text SQLAlchemy stores there)."""
    if not sqlite:
        return dt.datetime.fromtimestamp(epoch, dt.UTC)
    second = int(epoch)
    micros = round((epoch - second) * 1_000_000)
    if micros == 1_000_000:
        second, micros = second + 1, 0
    return f"{_second_text(second)}.{micros:06d}"


@functools.lru_cache(maxsize=4)
def _second_text(second: int) -> str:
    """``YYYY-MM-DD HH:MM:SS`` of one second: a batch's rows share a few, so strftime runs
    once per second rather than once per row."""
    return dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


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


class TupleWriter(BatchWriter[Row]):
    """Rows as tuples in ``columns`` order, with ``created_at`` in epoch seconds, inserted in
    bulk through the driver (the ORM's bulk insert cost several times as much, in a thread
    that competes with the event loop)."""

    table = ""
    columns: list[str] = []

    def insert(self, rows: Sequence[Row]) -> None:
        with self.db.engine.begin() as connection:
            self.write(connection, rows)

    def write(self, connection: Connection, rows: Sequence[Row]) -> None:
        created = self.columns.index("created_at")
        sqlite = connection.dialect.name == "sqlite"
        values = []
        for row in rows:
            record = list(row)
            record[created] = db_time(row[created], sqlite)
            self.prepare(record)
            values.append(tuple(record))
        insert_rows(connection, self.table, self.columns, values)
        self.also(connection, rows)

    def prepare(self, record: list[Any]) -> None:
        """Turn a row's values into what the driver takes (in place)."""

    def also(self, connection: Connection, rows: Sequence[Row]) -> None:
        """More writes in the same transaction."""

    def spill_record(self, row: Row) -> dict[str, Any]:
        return dict(zip(self.columns, row, strict=True))

    def from_spill_record(self, record: dict[str, Any]) -> Row:
        missing = [name for name in self.columns if name not in record]
        if missing:
            raise ValueError(f"no {', '.join(missing)}")
        row = tuple(record[name] for name in self.columns)
        if not isinstance(row[self.columns.index("created_at")], int | float):
            raise ValueError("created_at is not a number of seconds")
        return row


class SpendWriter(TupleWriter):
    what = "spend rows"
    spill_name = "spend"
    table = "spend_log"
    columns = COLUMNS

    def __init__(self, *args: Any, journal: SpendJournal | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.journal = journal
        if journal is not None:
            self.on_done = journal.done

    async def put(self, row: Row) -> None:
        await super().put(row)
        if self.journal is not None:  # in the queue's order, with nothing awaited between
            self.journal.append(row)

    def present(self, entry_ids: list[str]) -> set[str]:
        """Which of these rows the store has (for the journal's replay)."""
        with self.db.engine.connect() as connection:
            found = connection.execute(
                select(SpendRecord.entry_id).where(SpendRecord.entry_id.in_(entry_ids))
            )
            return {str(r[0]) for r in found}

    def also(self, connection: Connection, rows: Sequence[Row]) -> None:
        upsert_daily(connection, rows)  # the rollup, in the same transaction
