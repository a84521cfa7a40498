"""A trace spilled to disk before an upgrade added columns is still replayed after it."""

from __future__ import annotations

import datetime as dt

import pytest

from stackyard.observability.writer import ADDED_COLUMNS, TRACE_COLUMNS, SpilledTrace


def _record() -> dict[str, object]:
    record: dict[str, object] = dict.fromkeys(TRACE_COLUMNS, "x")
    record["started_at"] = "2026-12-01 10:00:00.000000"
    return record


def test_a_spill_from_before_the_cache_columns_is_replayed_with_their_defaults() -> None:
    old = {k: v for k, v in _record().items() if k not in ADDED_COLUMNS}
    values = dict(zip(TRACE_COLUMNS, SpilledTrace.from_record(old).values, strict=True))
    assert values["cache_tier"] is None
    assert values["saved_usd"] == 0.0
    assert values["started_at"] == dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)


def test_a_spill_missing_an_original_column_is_refused() -> None:
    broken = _record()
    del broken["cost_usd"]
    with pytest.raises(ValueError, match="cost_usd"):
        SpilledTrace.from_record(broken)
