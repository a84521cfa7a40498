"""The trace writer and the queries on SQLite and PostgreSQL: filters, paging, lazy spans,
scores, aggregates and the retention purge."""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import select, update

from stackyard.observability import query
from stackyard.observability.query import TraceFilter
from stackyard.observability.redact import Redactor
from stackyard.observability.spans import SERVER, RequestTrace, Span, new_span_id, new_trace_id
from stackyard.observability.writer import Finished, TraceWriter
from stackyard.store.db import Database
from stackyard.store.tables import ScoreRecord, TraceRecord


def make(
    *,
    model: str = "m",
    team: str | None = "team_a",
    status: int = 200,
    spans: int = 1,
    duration_ms: float = 10.0,
    tags: list[str] | None = None,
    metadata: dict[str, str] | None = None,
    trace_id: str | None = None,
    request_id: str | None = None,
    bodies: str = "full",
) -> Finished:
    start = time.time_ns()
    root = Span(f"chat {model}", new_span_id(), None, start, start + int(duration_ms * 1e6))
    root.kind = SERVER
    trace = RequestTrace(
        request_id or f"req_{new_span_id()}",
        trace_id or new_trace_id(),
        root,
        "chat",
        model,
        {"model": model, "messages": [{"role": "user", "content": "mail a@b.example"}]},
        metadata=metadata,
        tags=tags,
    )
    trace.response = {"choices": [{"message": {"content": "hi"}}]}
    for i in range(spans):
        trace.child(f"step {i}", start + i, start + i + 1)
    return Finished(
        trace,
        "key_1",
        team,
        None,
        status,
        None if status < 400 else "boom",
        f"{model}#0",
        "openai",
        5,
        7,
        0.01,
        False,
        1,
        bodies,
    )


async def write(db: Database, *rows: Finished) -> None:
    writer = TraceWriter(db, interval=0.01, redactor=Redactor())
    writer.start()
    for row in rows:
        assert writer.offer(row)
    await writer.close()
    assert writer.written == len(rows)


async def test_written_traces_are_listed_and_filtered(db: Database) -> None:
    shared = new_trace_id()
    await write(
        db,
        make(model="a", tags=["beta"], metadata={"feature": "search"}, trace_id=shared),
        make(model="b", team="team_b", status=502, trace_id=shared),
        make(model="a", bodies="metadata"),
    )
    everything = query.list_traces(db, TraceFilter())
    assert len(everything["data"]) == 3
    assert "request_body" not in everything["data"][0]

    def ids(**kwargs: object) -> set[str]:
        found = query.list_traces(db, TraceFilter(**kwargs))["data"]  # type: ignore[arg-type]
        return {t["model"] + ":" + str(t["status"]) for t in found}

    assert ids(model="a") == {"a:200"}
    assert len(query.list_traces(db, TraceFilter(model="a"))["data"]) == 2
    assert ids(status="error") == {"b:502"}
    assert ids(status="502") == {"b:502"}
    assert ids(tag="beta") == {"a:200"}
    assert ids(tag="bet") == set()  # a whole tag, not a substring
    assert ids(search="SEARCH") == {"a:200"}
    assert ids(scope_team="team_b") == {"b:502"}
    assert len(query.list_traces(db, TraceFilter(trace_id=shared))["data"]) == 2


async def test_paging_back_in_time(db: Database) -> None:
    rows = [make() for _ in range(5)]
    for i, row in enumerate(rows):  # one second apart
        shift = (5 - i) * 1_000_000_000
        row.trace.root.start_ns -= shift
        row.trace.root.end_ns -= shift
    await write(db, *rows)
    first = query.list_traces(db, TraceFilter(), limit=2)
    assert first["has_more"]
    before = dt.datetime.fromisoformat(first["next_before"])
    second = query.list_traces(db, TraceFilter(), limit=2, before=before)
    third = query.list_traces(
        db, TraceFilter(), limit=2, before=dt.datetime.fromisoformat(second["next_before"])
    )
    seen = [t["id"] for page in (first, second, third) for t in page["data"]]
    assert seen == [r.trace.root.span_id for r in reversed(rows)]
    assert not third["has_more"]


async def test_one_trace_with_bodies_redacted_and_spans_page_by_page(db: Database) -> None:
    row = make(spans=1200)
    await write(db, row)
    trace = query.get_trace(db, row.trace.request_id, span_limit=500)
    assert trace is not None
    [record] = trace["requests"]
    assert record["request_body"]["messages"][0]["content"] == "mail [EMAIL]"
    assert record["response_body"] == {"choices": [{"message": {"content": "hi"}}]}
    assert record["span_count"] == 1201
    page = trace["spans"]
    assert len(page["data"]) == 500
    assert page["has_more"]
    assert page["next_offset"] == 500
    rest = query.spans_page(db, record["id"], offset=500, limit=1000)
    assert rest is not None
    assert len(rest["data"]) == 701
    assert not rest["has_more"]
    by_trace_id = query.get_trace(db, row.trace.trace_id)
    assert by_trace_id is not None
    assert by_trace_id["requests"][0]["id"] == record["id"]
    assert query.get_trace(db, "nothing") is None
    assert query.get_trace(db, row.trace.request_id, scope_team="someone_else") is None


async def test_a_client_may_reuse_a_request_id(db: Database) -> None:
    await write(db, make(request_id="mine"), make(request_id="mine"))
    trace = query.get_trace(db, "mine")
    assert trace is not None
    assert len(trace["requests"]) == 2


async def test_scores_and_their_summary(db: Database) -> None:
    row = make()
    await write(db, row)
    request_id = row.trace.request_id
    for value in (1.0, 0.0, 1.0):
        query.add_score(
            db,
            request_id,
            name="helpful",
            kind="boolean",
            value=value,
            label=None,
            comment=None,
            source="user",
        )
    query.add_score(
        db,
        request_id,
        name="tone",
        kind="categorical",
        value=None,
        label="warm",
        comment="nice",
        source="evaluator",
    )
    assert (
        query.add_score(
            db, "missing", name="x", kind="numeric", value=1, label=None, comment=None, source="api"
        )
        is None
    )
    summary = {s["name"]: s for s in query.score_summary(db)}
    assert summary["helpful"]["count"] == 3
    assert summary["helpful"]["mean"] == 2 / 3
    assert summary["tone"]["categories"] == {"warm": 1}
    assert query.score_summary(db, scope_team="other") == []


async def test_aggregates_by_model(db: Database) -> None:
    await write(
        db,
        *(make(model="a", duration_ms=float(ms)) for ms in range(1, 101)),
        make(model="b", status=500),
    )
    rows = {r["group"]: r for r in query.aggregate(db, TraceFilter(), group_by="model")}
    a = rows["a"]
    assert a["requests"] == 100
    assert a["errors"] == 0
    assert a["latency_p50_ms"] == 50.0
    assert a["latency_p99_ms"] == 99.0
    assert a["input_tokens"] == 500
    assert a["output_tokens"] == 700
    assert rows["b"]["error_rate"] == 1.0
    buckets = query.aggregate(db, TraceFilter(), bucket="hour")
    assert sum(b["requests"] for b in buckets) == 101


async def test_the_purge_deletes_expired_traces_with_their_scores(db: Database) -> None:
    old, kept, team_old = make(team=None), make(team=None), make(team="short")
    await write(db, old, kept, team_old)
    query.add_score(
        db,
        old.trace.request_id,
        name="n",
        kind="numeric",
        value=1.0,
        label=None,
        comment=None,
        source="api",
    )
    ten_days_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    two_days_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    with db.engine.begin() as connection:
        for row, moment in ((old, ten_days_ago), (team_old, two_days_ago)):
            connection.execute(
                update(TraceRecord)
                .where(TraceRecord.id == row.trace.root.span_id)
                .values(started_at=moment)
            )
    purged = query.purge(db, default_days=7, team_days={"short": 1})
    assert purged == 2
    with db.engine.connect() as connection:
        left = {r[0] for r in connection.execute(select(TraceRecord.id))}
        scores = connection.execute(select(ScoreRecord.id)).fetchall()
    assert left == {kept.trace.root.span_id}
    assert scores == []


async def test_a_full_queue_refuses_rather_than_waits(db: Database) -> None:
    writer = TraceWriter(db, max_queue=2)
    assert writer.offer(make())
    assert writer.offer(make())
    assert not writer.offer(make())
    assert writer.depth == 2
