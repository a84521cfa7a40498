"""The observability API: ``GET /metrics`` (Prometheus), and under ``/api``:

GET  /api/traces                  filters: since, until, model, team, key, user, endpoint,
                                  status (ok|error|NNN), tag, session, trace_id, prompt,
                                  prompt_version, q (text in metadata), limit, before
GET  /api/traces/{id}             a trace (by trace id, request id or root span id) with its
                                  requests, bodies, the first page of spans, and scores
GET  /api/traces/{id}/spans       further pages of spans: offset, limit
POST /api/traces/{id}/scores      {"name", "value", "data_type"?, "comment"?, "source"?}
GET  /api/scores                  per-name summary: name, since
GET  /api/stats                   aggregates: group_by (model|team|key|deployment|prompt|
                                  endpoint), bucket (minute|hour|day), and the list's filters

The master key (or an open gateway) sees every trace; a virtual key sees its team's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
from dataclasses import replace
from typing import Any

from stackyard.auth.admission import Governance, bearer_token
from stackyard.errors import APIError, invalid_request
from stackyard.observability import query
from stackyard.observability.metrics import CONTENT_TYPE, GatewayMetrics
from stackyard.server.admin import parse_since
from stackyard.server.http import Request, Response
from stackyard.server.routing import Reply, Routes
from stackyard.store.db import Database

PREFIX = "/api/traces/"
KINDS = ("numeric", "boolean", "categorical")
SOURCES = ("user", "evaluator", "api")
#: How long a score waits for its trace to be written (it is, within a second of the answer).
SCORE_WAIT = 2.0


def _not_found(identifier: str) -> APIError:
    return APIError(
        404,
        f"No trace '{identifier[:100]}' (a request's trace is stored within a second of its "
        "response; the id may be a trace id, a request id or a span id).",
        type="invalid_request_error",
        code="trace_not_found",
    )


class TracesAPI:
    def __init__(
        self,
        db: Database,
        governance: Governance,
        metrics: GatewayMetrics,
        *,
        metrics_token: str | None = None,
    ) -> None:
        self.db = db
        self.governance = governance
        self.metrics = metrics
        self.metrics_token = metrics_token

    def register(self, routes: Routes) -> None:
        routes.add("GET", ["/metrics"], self.prometheus)
        routes.add("GET", ["/api/traces"], self.list)
        routes.add_prefix("GET", PREFIX, self.one)
        routes.add_prefix("POST", PREFIX, self.score)
        routes.add("GET", ["/api/scores"], self.scores)
        routes.add("GET", ["/api/stats"], self.stats)

    async def prometheus(self, request: Request) -> Reply:
        """Prometheus' text format. Costs per team are no one else's business: with keys on,
        the master key or ``observability.metrics_token`` reads them."""
        token = bearer_token(request)
        if not self.governance.open and not (
            token is not None
            and self.metrics_token
            and hmac.compare_digest(token.encode(), self.metrics_token.encode())
        ):
            self.governance.require_master(request)
        return Response.text(self.metrics.render(), CONTENT_TYPE)

    def _scope(self, request: Request) -> str | None:
        """The team whose traces the caller may see (None: all)."""
        principal = self.governance.authenticate(request)
        if principal.admin:
            return None
        return principal.team_id or "-"

    async def list(self, request: Request) -> Reply:
        scope = self._scope(request)
        params = request.query
        found = await asyncio.to_thread(
            query.list_traces,
            self.db,
            _filter(params, scope),
            limit=_int(params, "limit", 50),
            before=_time(params, "before"),
            ascending=params.get("order") == "asc",
        )
        return Response.json(found)

    async def one(self, request: Request) -> Reply:
        scope = self._scope(request)
        rest = request.scope["path"][len(PREFIX) :].strip("/")
        identifier, _, tail = rest.partition("/")
        params = request.query
        if tail == "spans":
            page = await asyncio.to_thread(
                query.spans_page,
                self.db,
                identifier,
                offset=_int(params, "offset", 0),
                limit=_int(params, "limit", 500),
                scope_team=scope,
            )
            if page is None:
                raise _not_found(identifier)
            return Response.json(page)
        if tail:
            raise APIError(404, f"No route {request.scope['path']}", code="not_found")
        trace = await asyncio.to_thread(
            query.get_trace,
            self.db,
            identifier,
            scope_team=scope,
            span_limit=_int(params, "span_limit", 500),
        )
        if trace is None:
            raise _not_found(identifier)
        return Response.json(trace)

    async def score(self, request: Request) -> Reply:
        scope = self._scope(request)
        rest = request.scope["path"][len(PREFIX) :].strip("/")
        identifier, _, tail = rest.partition("/")
        if tail != "scores":
            raise APIError(404, f"No route {request.scope['path']}", code="not_found")
        body = await request.json_object()
        fields = _score_fields(body)
        waited = 0.0
        while True:
            created = await asyncio.to_thread(
                query.add_score, self.db, identifier, scope_team=scope, **fields
            )
            if created is not None:
                return Response.json(created)
            if waited >= SCORE_WAIT:
                raise _not_found(identifier)
            await asyncio.sleep(0.25)
            waited += 0.25

    async def scores(self, request: Request) -> Reply:
        scope = self._scope(request)
        params = request.query
        summary = await asyncio.to_thread(
            query.score_summary,
            self.db,
            name=params.get("name"),
            since=_time(params, "since"),
            scope_team=scope,
        )
        return Response.json({"object": "list", "data": summary})

    async def stats(self, request: Request) -> Reply:
        scope = self._scope(request)
        params = request.query
        group_by = params.get("group_by")
        if group_by is not None and group_by not in query.GROUPS:
            raise invalid_request(
                f"group_by must be one of {', '.join(query.GROUPS)}", param="group_by"
            )
        bucket = params.get("bucket")
        if bucket is not None and bucket not in query.BUCKETS:
            raise invalid_request(
                f"bucket must be one of {', '.join(query.BUCKETS)}", param="bucket"
            )
        f = _filter(params, scope)
        if f.since is None:
            f = replace(f, since=parse_since("24h"))
        rows = await asyncio.to_thread(
            query.aggregate, self.db, f, group_by=group_by, bucket=bucket
        )
        return Response.json({"object": "list", "data": rows})


def _int(params: dict[str, str], name: str, default: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise invalid_request(f"{name} must be an integer, not '{value}'", param=name) from None
    if number < 0:
        raise invalid_request(f"{name} must not be negative", param=name)
    return number


def _time(params: dict[str, str], name: str) -> dt.datetime | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        return parse_since(value)
    except APIError:
        raise invalid_request(
            f"{name}: expected 7d, 24h, 30m or an ISO date, not '{value}'", param=name
        ) from None


def _filter(params: dict[str, str], scope: str | None) -> query.TraceFilter:
    status = params.get("status")
    if status is not None and status not in ("ok", "error") and not status.isdigit():
        raise invalid_request("status must be ok, error or an HTTP status", param="status")
    version = params.get("prompt_version")
    return query.TraceFilter(
        since=_time(params, "since"),
        until=_time(params, "until"),
        after=_time(params, "after"),
        model=params.get("model"),
        team_id=params.get("team"),
        key_id=params.get("key"),
        user_id=params.get("user"),
        endpoint=params.get("endpoint"),
        status=status,
        tag=params.get("tag"),
        session_id=params.get("session"),
        trace_id=params.get("trace_id"),
        prompt_name=params.get("prompt"),
        prompt_version=_int(params, "prompt_version", 0) if version is not None else None,
        search=params.get("q"),
        scope_team=scope,
    )


def _score_fields(body: dict[str, Any]) -> dict[str, Any]:
    name = body.get("name")
    if not isinstance(name, str) or not name or len(name) > 200:
        raise invalid_request(
            "'name' is required (a string of at most 200 characters)", param="name"
        )
    value = body.get("value")
    kind = body.get("data_type")
    if kind is None:
        kind = (
            "boolean"
            if isinstance(value, bool)
            else "numeric"
            if isinstance(value, int | float)
            else "categorical"
        )
    if kind not in KINDS:
        raise invalid_request(f"'data_type' must be one of {', '.join(KINDS)}", param="data_type")
    number: float | None = None
    label: str | None = None
    if kind == "boolean":
        if not isinstance(value, bool) and value not in (0, 1):
            raise invalid_request("a boolean score's 'value' must be true or false", param="value")
        number = float(value)
    elif kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise invalid_request("a numeric score's 'value' must be a number", param="value")
        number = float(value)
    else:
        if not isinstance(value, str) or not value or len(value) > 200:
            raise invalid_request(
                "a categorical score's 'value' must be a string of at most 200 characters",
                param="value",
            )
        label = value
    comment = body.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise invalid_request("'comment' must be a string", param="comment")
    source = body.get("source", "api")
    if source not in SOURCES:
        raise invalid_request(f"'source' must be one of {', '.join(SOURCES)}", param="source")
    return {
        "name": name,
        "kind": kind,
        "value": number,
        "label": label,
        "comment": comment,
        "source": source,
    }
