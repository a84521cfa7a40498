"""The guardrails' audit log writer: decisions, written in batches off the request path (see
:class:`~stackyard.store.batch_writer.BatchWriter`)."""

from __future__ import annotations

from typing import Any

import orjson

from stackyard.store.spend_writer import TupleWriter
from stackyard.store.tables import GuardrailDecision

#: The columns a row carries, in order (``id`` is assigned by the database).
COLUMNS = [c.name for c in GuardrailDecision.__table__.columns if c.name != "id"]
DETAIL = COLUMNS.index("detail")

#: One decision: values in ``COLUMNS`` order; ``created_at`` as epoch seconds, ``detail`` a dict.
Row = tuple[Any, ...]


class AuditWriter(TupleWriter):
    what = "guardrail decisions"
    spill_name = "audit"
    table = "guardrail_audit"
    columns = COLUMNS

    def prepare(self, record: list[Any]) -> None:
        record[DETAIL] = orjson.dumps(record[DETAIL]).decode()
