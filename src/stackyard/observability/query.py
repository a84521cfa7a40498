"""Reading traces back: lists with filters, one trace with its spans (page by page), scores,
aggregates for dashboards, and the retention purge. Synchronous (run in a thread by the API;
called directly by the CLI)."""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import String, cast, delete, func, insert, or_, select
from sqlalchemy.sql import Select

from stackyard.store.db import Database
from stackyard.store.tables import ScoreRecord, TraceRecord
from stackyard.store.tables.base import aware

SUMMARY_COLUMNS = [
    c
    for c in TraceRecord.__table__.columns
    if c.name not in ("request_body", "response_body", "metadata_json", "spans")
]
HEX = re.compile(r"^[0-9a-f]+$")
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class TraceFilter:
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    after: dt.datetime | None = None  # strictly later (for tailing)
    model: str | None = None
    team_id: str | None = None
    key_id: str | None = None
    user_id: str | None = None
    endpoint: str | None = None
    status: str | None = None  # "ok", "error" or a number
    tag: str | None = None
    session_id: str | None = None
    trace_id: str | None = None
    prompt_name: str | None = None
    prompt_version: int | None = None
    search: str | None = None  # text in the client's metadata
    #: Only this team's traces (a virtual key sees its own team's).
    scope_team: str | None = None


def _iso(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return aware(value).isoformat()
    return value


def _summary(row: Any) -> dict[str, Any]:
    return {column.name: _iso(row._mapping[column.name]) for column in SUMMARY_COLUMNS}


def _where(query: Select[Any], f: TraceFilter) -> Select[Any]:
    t = TraceRecord
    conditions: list[Any] = []
    if f.since is not None:
        conditions.append(t.started_at >= f.since)
    if f.until is not None:
        conditions.append(t.started_at < f.until)
    if f.after is not None:
        conditions.append(t.started_at > f.after)
    for column, value in (
        (t.model, f.model),
        (t.team_id, f.team_id),
        (t.key_id, f.key_id),
        (t.user_id, f.user_id),
        (t.endpoint, f.endpoint),
        (t.session_id, f.session_id),
        (t.trace_id, f.trace_id),
        (t.prompt_name, f.prompt_name),
        (t.prompt_version, f.prompt_version),
        (t.team_id, f.scope_team),
    ):
        if value is not None:
            conditions.append(column == value)
    if f.status == "ok":
        conditions.append(t.status < 400)
    elif f.status == "error":
        conditions.append(t.status >= 400)
    elif f.status is not None:
        conditions.append(t.status == int(f.status))
    if f.tag is not None:
        conditions.append(cast(t.tags, String).like(f"%{orjson.dumps(f.tag).decode()}%"))
    if f.search is not None:
        conditions.append(t.metadata_json.ilike(f"%{f.search}%"))
    return query.where(*conditions) if conditions else query


def list_traces(
    db: Database,
    f: TraceFilter,
    *,
    limit: int = 50,
    before: dt.datetime | None = None,
    ascending: bool = False,
) -> dict[str, Any]:
    """Newest first (or oldest first, for tailing); ``next_before`` pages further back."""
    limit = max(1, min(limit, MAX_LIMIT))
    query = _where(select(*SUMMARY_COLUMNS), f)
    if before is not None:
        query = query.where(TraceRecord.started_at < before)
    order = TraceRecord.started_at.asc() if ascending else TraceRecord.started_at.desc()
    query = query.order_by(order, TraceRecord.id).limit(limit + 1)
    with db.engine.connect() as connection:
        rows = connection.execute(query).fetchall()
    data = [_summary(r) for r in rows[:limit]]
    more = len(rows) > limit
    return {
        "object": "list",
        "data": data,
        "has_more": more,
        "next_before": data[-1]["started_at"] if more and not ascending else None,
    }


def _loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def _spans(root_id: str, text: str) -> list[dict[str, Any]]:
    spans: list[dict[str, Any]] = orjson.loads(text)
    for span in spans:
        span["root_id"] = root_id
        span["duration_ms"] = (span["end_ns"] - span["start_ns"]) / 1e6
        span.setdefault("status_message", None)
        span.setdefault("events", None)
    return spans


def _matching(identifier: str, scope_team: str | None) -> Select[Any]:
    t = TraceRecord
    options = [t.id == identifier, t.request_id == identifier]
    if len(identifier) == 32 and HEX.match(identifier):
        options.append(t.trace_id == identifier)
    query = select(t).where(or_(*options))
    if scope_team is not None:
        query = query.where(t.team_id == scope_team)
    return query.order_by(t.started_at)


def get_trace(
    db: Database,
    identifier: str,
    *,
    scope_team: str | None = None,
    span_limit: int = 500,
) -> dict[str, Any] | None:
    """A trace by its id, a request id or a root span id: every request in it (with bodies),
    the first page of spans, and the scores."""
    with db.engine.connect() as connection:
        records = connection.execute(_matching(identifier, scope_team)).fetchall()
        if not records:
            return None
        roots = [r._mapping["id"] for r in records]
        requests = []
        spans: list[dict[str, Any]] = []
        for record in records:
            m = record._mapping
            item = {c.name: _iso(m[c.name]) for c in SUMMARY_COLUMNS}
            item["metadata"] = _loads(m["metadata_json"])
            item["request_body"] = _loads(m["request_body"])
            item["response_body"] = _loads(m["response_body"])
            requests.append(item)
            spans += _spans(m["id"], m["spans"])
        scores = connection.execute(
            select(ScoreRecord)
            .where(ScoreRecord.root_id.in_(roots))
            .order_by(ScoreRecord.created_at)
        ).fetchall()
    return {
        "object": "trace",
        "id": identifier,
        "trace_id": requests[0]["trace_id"],
        "requests": requests,
        "spans": _page(spans, 0, span_limit),
        "scores": [_score(s) for s in scores],
    }


def _page(spans: list[dict[str, Any]], offset: int, limit: int) -> dict[str, Any]:
    limit = max(1, min(limit, 5000))
    offset = max(0, offset)
    spans.sort(key=lambda s: (s["start_ns"], s["span_id"]))
    more = len(spans) > offset + limit
    return {
        "data": spans[offset : offset + limit],
        "has_more": more,
        "next_offset": offset + limit if more else None,
    }


def spans_page(
    db: Database, identifier: str, *, offset: int, limit: int, scope_team: str | None = None
) -> dict[str, Any] | None:
    """A page of a trace's spans, in order of their start; None if there is no such trace."""
    t = TraceRecord
    query = _matching(identifier, scope_team).with_only_columns(t.id, t.spans)
    with db.engine.connect() as connection:
        rows = connection.execute(query).fetchall()
    if not rows:
        return None
    spans = [span for root_id, text in rows for span in _spans(root_id, text)]
    return _page(spans, offset, limit)


def _score(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {
        "id": m["id"],
        "root_id": m["root_id"],
        "trace_id": m["trace_id"],
        "name": m["name"],
        "data_type": m["kind"],
        "value": m["value"] if m["kind"] != "categorical" else m["label"],
        "comment": m["comment"],
        "source": m["source"],
        "created_at": _iso(m["created_at"]),
    }


def add_score(
    db: Database,
    identifier: str,
    *,
    name: str,
    kind: str,
    value: float | None,
    label: str | None,
    comment: str | None,
    source: str,
    scope_team: str | None = None,
) -> dict[str, Any] | None:
    """Attach a score to a request (or to a trace's first request); None if there is none."""
    with db.engine.begin() as connection:
        found = connection.execute(_matching(identifier, scope_team).limit(1)).fetchone()
        if found is None:
            return None
        record = {
            "id": f"score_{uuid.uuid4().hex[:20]}",
            "root_id": found._mapping["id"],
            "trace_id": found._mapping["trace_id"],
            "name": name,
            "kind": kind,
            "value": value,
            "label": label,
            "comment": comment,
            "source": source,
            "team_id": found._mapping["team_id"],
            "created_at": dt.datetime.now(dt.UTC),
        }
        connection.execute(insert(ScoreRecord).values(**record))
        row = connection.execute(
            select(ScoreRecord).where(ScoreRecord.id == record["id"])
        ).fetchone()
    return _score(row)


def score_summary(
    db: Database,
    *,
    name: str | None = None,
    since: dt.datetime | None = None,
    scope_team: str | None = None,
) -> list[dict[str, Any]]:
    """Per score name: how many, the mean of numeric and boolean scores, and the count of
    each category."""
    s = ScoreRecord
    query = select(s.name, s.kind, s.value, s.label)
    if name is not None:
        query = query.where(s.name == name)
    if since is not None:
        query = query.where(s.created_at >= since)
    if scope_team is not None:
        query = query.where(s.team_id == scope_team)
    groups: dict[str, dict[str, Any]] = {}
    with db.engine.connect() as connection:
        for row_name, kind, value, label in connection.execute(query):
            group = groups.setdefault(
                row_name, {"name": row_name, "data_type": kind, "count": 0, "values": []}
            )
            group["count"] += 1
            if kind == "categorical":
                group.setdefault("categories", defaultdict(int))[label] += 1
            elif value is not None:
                group["values"].append(value)
    summary = []
    for group in groups.values():
        values = group.pop("values")
        group["mean"] = sum(values) / len(values) if values else None
        if "categories" in group:
            group["categories"] = dict(group["categories"])
        summary.append(group)
    return sorted(summary, key=lambda g: g["name"])


GROUPS = {
    "model": TraceRecord.model,
    "team": TraceRecord.team_id,
    "key": TraceRecord.key_id,
    "deployment": TraceRecord.deployment,
    "prompt": TraceRecord.prompt_name,
    "endpoint": TraceRecord.endpoint,
}
BUCKETS = {"minute": 60, "hour": 3600, "day": 86400}


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank percentile of sorted ``values``."""
    if not values:
        return None
    return values[max(0, math.ceil(q / 100 * len(values)) - 1)]


def aggregate(
    db: Database,
    f: TraceFilter,
    *,
    group_by: str | None = None,
    bucket: str | None = None,
) -> list[dict[str, Any]]:
    """Requests, errors, latency percentiles, tokens, cost and cache hits (by tier, with the
    tokens and dollars they saved), per time bucket and group. The rows of the window are read
    once and summed here (portable across SQLite and PostgreSQL)."""
    t = TraceRecord
    group_column = GROUPS[group_by] if group_by else None
    columns: list[Any] = [
        t.started_at,
        t.duration_ms,
        t.ttft_ms,
        t.status,
        t.input_tokens,
        t.output_tokens,
        t.cost_usd,
        t.cache_hit,
        t.cache_tier,
        t.saved_usd,
    ]
    if group_column is not None:
        columns.append(group_column)
    if group_by == "prompt":
        columns.append(t.prompt_version)
    query: Select[Any] = _where(select(*columns), f)
    width = BUCKETS[bucket] if bucket else None
    cells: dict[tuple[Any, ...], dict[str, Any]] = {}
    with db.engine.connect() as connection:
        for row in connection.execute(query):
            started = aware(row[0])
            start = None
            if width is not None:
                epoch = started.timestamp()
                start = dt.datetime.fromtimestamp(epoch - epoch % width, dt.UTC).isoformat()
            group = None
            if group_column is not None:
                group = row[10] if group_by != "prompt" else f"{row[10]}@{row[11]}"
            cell = cells.get((start, group))
            if cell is None:
                cell = cells[(start, group)] = {
                    "bucket": start,
                    "group": group,
                    "requests": 0,
                    "errors": 0,
                    "latencies": [],
                    "ttfts": [],
                    "input_tokens": 0,
                    "output_tokens": 0,
                    "cost_usd": 0.0,
                    "cache_hits": 0,
                    "exact_hits": 0,
                    "semantic_hits": 0,
                    "saved_usd": 0.0,
                    "exact_saved_usd": 0.0,
                    "semantic_saved_usd": 0.0,
                    "saved_tokens": 0,
                }
            cell["requests"] += 1
            cell["errors"] += row[3] >= 400
            cell["latencies"].append(row[1])
            if row[2] is not None:
                cell["ttfts"].append(row[2])
            cell["input_tokens"] += row[4]
            cell["output_tokens"] += row[5]
            cell["cost_usd"] += row[6]
            if row[7]:
                cell["cache_hits"] += 1
                saved = row[9] or 0.0
                if row[8] in ("exact", "semantic"):
                    cell[f"{row[8]}_hits"] += 1
                    cell[f"{row[8]}_saved_usd"] += saved
                cell["saved_usd"] += saved
                cell["saved_tokens"] += row[4] + row[5]  # a hit's usage is the first answer's
    result = []
    for key in sorted(cells, key=lambda k: (k[0] or "", str(k[1]))):
        cell = cells[key]
        latencies = sorted(cell.pop("latencies"))
        ttfts = sorted(cell.pop("ttfts"))
        cell["error_rate"] = cell["errors"] / cell["requests"]
        for q in (50, 90, 99):
            cell[f"latency_p{q}_ms"] = percentile(latencies, q)
        cell["ttft_p50_ms"] = percentile(ttfts, 50)
        result.append(cell)
    return result


def retention_rules(
    team: Any, started: Any, *, default_days: float, team_days: dict[str, float]
) -> list[Any]:
    """Conditions, one per retention, matching the rows past it (``team`` and ``started``:
    the table's columns): the teams with their own days, and every other row."""
    now = dt.datetime.now(dt.UTC)
    rules: list[Any] = [
        (team.is_(None) | team.not_in(list(team_days)))
        & (started < now - dt.timedelta(days=default_days))
    ]
    for name, days in team_days.items():
        rules.append((team == name) & (started < now - dt.timedelta(days=days)))
    return rules


def purge(db: Database, *, default_days: float, team_days: dict[str, float] | None = None) -> int:
    """Delete traces (with their scores) older than their retention; return how
    many traces went."""
    t = TraceRecord
    rules = retention_rules(
        t.team_id, t.started_at, default_days=default_days, team_days=team_days or {}
    )
    total = 0
    with db.engine.begin() as connection:
        for rule in rules:
            doomed = select(t.id).where(rule)
            connection.execute(delete(ScoreRecord).where(ScoreRecord.root_id.in_(doomed)))
            total += connection.execute(delete(t).where(rule)).rowcount or 0
    return total


def count_traces(db: Database) -> int:
    with db.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(TraceRecord)).scalar_one())
