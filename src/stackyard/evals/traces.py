"""Datasets from production traffic: stored traces (with their bodies) as dataset items."""

from __future__ import annotations

import datetime as dt
from typing import Any

from stackyard.observability import query
from stackyard.observability.query import TraceFilter
from stackyard.store.db import Database


def _answer(response: Any) -> str | None:
    try:
        content = response["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


def _last_user_text(request: dict[str, Any]) -> str | None:
    for message in reversed(request.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else None
    return None


def items_from_traces(
    db: Database,
    *,
    prompt_name: str | None = None,
    prompt_version: int | None = None,
    model: str | None = None,
    since: dt.datetime | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Items ``{"id", "input", "expected", "metadata"}`` from answered requests whose bodies
    were stored, newest first; duplicates of one input are kept once."""
    found = query.list_traces(
        db,
        TraceFilter(
            since=since,
            model=model,
            prompt_name=prompt_name,
            prompt_version=prompt_version,
            status="ok",
            endpoint="chat",
        ),
        limit=min(limit * 2, query.MAX_LIMIT),
    )["data"]
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for summary in found:
        if summary["bodies"] != "full":
            continue
        trace = query.get_trace(db, summary["id"], span_limit=1)
        if trace is None:
            continue
        [record] = [r for r in trace["requests"] if r["id"] == summary["id"]]
        request, answer = record["request_body"] or {}, _answer(record["response_body"])
        spec = request.get("prompt")
        value: Any = spec.get("variables") if isinstance(spec, dict) else None
        if prompt_name is None:
            value = _last_user_text(request)
        if value is None or answer is None:
            continue
        key = repr(value)
        if key in seen:
            continue
        seen.add(key)
        items.append(
            {
                "id": record["id"],
                "input": value,
                "expected": answer,
                "metadata": {
                    "trace_id": record["trace_id"],
                    "model": record["model"],
                    "prompt_version": record["prompt_version"],
                    "started_at": record["started_at"],
                },
            }
        )
        if len(items) >= limit:
            break
    return items
