"""The guardrails' audit log writer: decisions, written in batches off the request path (see
:class:`~stackyard.store.batch_writer.BatchWriter`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from stackyard.store.batch_writer import BatchWriter
from stackyard.store.spend_writer import db_time, insert_rows
from stackyard.store.tables import GuardrailDecision

#: The columns a row carries, in order (``id`` is assigned by the database).
COLUMNS = [c.name for c in GuardrailDecision.__table__.columns if c.name != "id"]
CREATED_AT = COLUMNS.index("created_at")
DETAIL = COLUMNS.index("detail")

#: One decision: values in ``COLUMNS`` order; ``created_at`` as epoch seconds, ``detail`` a dict.
Row = tuple[Any, ...]


class AuditWriter(BatchWriter[Row]):
    what = "guardrail decisions"
    spill_name = "audit"

    def insert(self, rows: Sequence[Row]) -> None:
        with self.db.engine.begin() as connection:
            sqlite = connection.dialect.name == "sqlite"
            values = []
            for row in rows:
                record = list(row)
                record[CREATED_AT] = db_time(row[CREATED_AT], sqlite)
                record[DETAIL] = orjson.dumps(row[DETAIL]).decode()
                values.append(tuple(record))
            insert_rows(connection, "guardrail_audit", COLUMNS, values)

    def spill_record(self, row: Row) -> dict[str, Any]:
        return dict(zip(COLUMNS, row, strict=True))
