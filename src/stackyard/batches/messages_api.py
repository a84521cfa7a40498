"""Anthropic's Message Batches API, so that the official ``anthropic`` SDK works unchanged:

POST   /v1/messages/batches                 {requests: [{custom_id, params}]}
GET    /v1/messages/batches                 newest first (``after_id``/``before_id``, ``limit``)
GET    /v1/messages/batches/{id}
POST   /v1/messages/batches/{id}/cancel
DELETE /v1/messages/batches/{id}            once it has ended
GET    /v1/messages/batches/{id}/results    JSONL, once it has ended

A batch is run as OpenAI's batches are (:mod:`stackyard.batches.runner`): each request through
the ``/v1/messages`` door in the background, as the key that created it, for any model (Claude
or not). The requests are kept as a file of purpose ``batch`` (visible in ``/v1/files``); the
results are read from the store, line by line. Errors are in Anthropic's shape.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from stackyard.batches.api import key_of
from stackyard.batches.store import MESSAGES, BatchNotFound, BatchStore
from stackyard.errors import APIError, invalid_request
from stackyard.gateway.anthropic_wire import error_type, validate_messages
from stackyard.gateway.doors.messages import anthropic_error
from stackyard.server.http import Request, Response

if TYPE_CHECKING:
    from stackyard.auth.admission import Governance
    from stackyard.finetune.files import Files
    from stackyard.server.routing import Reply, Routes
    from stackyard.store.tables.batches import BatchRecord

PATHS = ("/v1/messages/batches", "/messages/batches")
PREFIXES = tuple(p + "/" for p in PATHS)
#: As Anthropic's: at most this many requests in a batch.
MAX_REQUESTS = 100_000
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ENDED = ("completed", "failed", "expired", "cancelled")
ONLY = (MESSAGES,)


def rfc3339(value: dt.datetime | float | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        value = dt.datetime.fromtimestamp(value, dt.UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def message_batch(record: BatchRecord, results_url: str) -> dict[str, Any]:
    """Anthropic's MessageBatch object. Every request counts as ``processing`` until the
    batch ends, as Anthropic's do."""
    times = record.times or {}
    ended = record.status in ENDED
    counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    if not ended:
        counts["processing"] = record.total
    else:
        counts["succeeded"] = record.completed
        counts["errored"] = record.failed
        left = max(0, record.total - record.completed - record.failed)
        never_ran = {"cancelled": "canceled", "expired": "expired"}.get(record.status, "errored")
        counts[never_ran] += left
    return {
        "id": record.id,
        "type": "message_batch",
        "processing_status": "ended"
        if ended
        else "canceling"
        if record.status == "cancelling"
        else "in_progress",
        "request_counts": counts,
        "ended_at": rfc3339(times.get(f"{record.status}_at")) if ended else None,
        "created_at": rfc3339(record.created_at),
        "expires_at": rfc3339(record.expires_at),
        "archived_at": None,
        "cancel_initiated_at": rfc3339(times.get("cancelling_at")),
        "results_url": results_url if ended else None,
    }


def _anthropic_error(status: int, body: Any, request_id: str) -> dict[str, Any]:
    """A failed request's answer as Anthropic's ErrorResponse (the door's own errors already
    are; an error the runner made itself is in OpenAI's shape)."""
    if isinstance(body, dict) and body.get("type") == "error":
        return {**body, "request_id": request_id or None}
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return {
        "type": "error",
        "error": {"type": error_type(status), "message": str(message or body)},
        "request_id": request_id or None,
    }


def result_line(custom_id: str, stored: dict[str, Any] | None, batch_status: str) -> bytes:
    """One line of the results file."""
    if stored is None:  # never run: the batch was cancelled, or expired, first
        kind = {"cancelled": "canceled", "expired": "expired"}.get(batch_status, "canceled")
        result: dict[str, Any] = {"type": kind}
    else:
        response = stored.get("response") or {}
        status = int(response.get("status_code") or 500)
        body = response.get("body")
        if status == 200:
            result = {"type": "succeeded", "message": body}
        else:
            request_id = str(response.get("request_id") or "")
            result = {"type": "errored", "error": _anthropic_error(status, body, request_id)}
    return orjson.dumps({"custom_id": custom_id, "result": result}) + b"\n"


def _not_found(batch_id: str) -> APIError:
    return APIError(404, f"No message batch found with id '{batch_id}'.", param="batch_id")


def _requests(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The create request's ``requests``, checked as Anthropic checks them."""
    for name in body:
        if name != "requests":
            raise invalid_request(f"{name}: Extra inputs are not permitted", param=name)
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise invalid_request(
            "requests: a non-empty list of requests is required", param="requests"
        )
    if len(requests) > MAX_REQUESTS:
        raise invalid_request(
            f"requests: at most {MAX_REQUESTS} requests in a batch", param="requests"
        )
    seen: set[str] = set()
    for index, item in enumerate(requests):
        where = f"requests.{index}"
        if not isinstance(item, dict) or set(item) - {"custom_id", "params"}:
            raise invalid_request(f"{where}: an object of custom_id and params", param=where)
        custom_id = item.get("custom_id")
        if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
            raise invalid_request(
                f"{where}.custom_id: 1 to 64 letters, digits, '_' or '-'",
                param=f"{where}.custom_id",
            )
        if custom_id in seen:
            raise invalid_request(
                f"{where}.custom_id: '{custom_id}' is used twice; custom_id must be unique",
                param=f"{where}.custom_id",
            )
        seen.add(custom_id)
        params = item.get("params")
        if not isinstance(params, dict):
            raise invalid_request(f"{where}.params: an object is required", param=f"{where}.params")
        if params.get("stream"):
            raise invalid_request(
                f"{where}.params.stream: a batch request cannot stream",
                param=f"{where}.params.stream",
            )
        try:
            validate_messages(params)
        except APIError as exc:
            raise invalid_request(
                f"{where}.params: {exc.message}",
                param=f"{where}.params.{exc.param or ''}".rstrip("."),
            ) from None
    return requests


class MessageBatchesAPI:
    def __init__(self, store: BatchStore, files: Files, governance: Governance) -> None:
        self.store = store
        self.files = files
        self.governance = governance

    def register(self, routes: Routes) -> None:
        routes.add("POST", PATHS, _anthropic(self.create))
        routes.add("GET", PATHS, _anthropic(self.list))
        for prefix in PREFIXES:
            routes.add_prefix("GET", prefix, _anthropic(self.get))
            routes.add_prefix("POST", prefix, _anthropic(self.cancel))
            routes.add_prefix("DELETE", prefix, _anthropic(self.delete))

    def _results_url(self, request: Request, batch_id: str) -> str:
        path = f"/v1/messages/batches/{batch_id}/results"
        host = request.header(b"host")
        if host is None:
            return path
        scheme = request.scope.get("scheme", "http")
        return f"{scheme}://{host.decode('latin-1')}{path}"

    def _reply(self, request: Request, record: BatchRecord) -> Response:
        return Response.json(message_batch(record, self._results_url(request, record.id)))

    async def _find(self, request: Request) -> tuple[BatchRecord, str]:
        """The batch the path names (this key's team's), and what follows its id."""
        principal = self.governance.authenticate(request)
        path = request.path
        rest = next(path[len(p) :] for p in PREFIXES if path.startswith(p))
        batch_id, _, tail = rest.partition("/")
        try:
            record = await asyncio.to_thread(
                self.store.get,
                batch_id,
                team_id=principal.team_id,
                admin=principal.master,
                endpoints=ONLY,
            )
        except BatchNotFound:
            raise _not_found(batch_id) from None
        return record, tail

    async def create(self, request: Request) -> Reply:
        principal = self.governance.authenticate(request)
        requests = _requests(await request.json_object())
        lines = b"".join(
            orjson.dumps(
                {
                    "custom_id": item["custom_id"],
                    "method": "POST",
                    "url": MESSAGES,
                    "body": item["params"],
                }
            )
            + b"\n"
            for item in requests
        )
        made = await asyncio.to_thread(
            self.files.create, "message_batch_requests.jsonl", "batch", lines, principal.team_id
        )
        record = await asyncio.to_thread(
            self.store.create,
            endpoint=MESSAGES,
            input_file_id=made["id"],
            key_id=key_of(principal),
            team_id=principal.team_id,
            total=len(requests),
            metadata=None,
            prefix="msgbatch_",
        )
        return self._reply(request, record)

    async def list(self, request: Request) -> Reply:
        principal = self.governance.authenticate(request)
        query = request.query
        raw = query.get("limit", "20")
        if not raw.isdigit() or not 1 <= int(raw) <= 1000:
            raise invalid_request("limit: an integer from 1 to 1000", param="limit")
        if "after_id" in query and "before_id" in query:
            raise invalid_request("after_id and before_id cannot both be given", param="before_id")
        try:
            records, more = await asyncio.to_thread(
                self.store.page,
                team_id=principal.team_id,
                admin=principal.master,
                after=query.get("after_id"),
                before=query.get("before_id"),
                limit=int(raw),
                endpoints=ONLY,
            )
        except BatchNotFound as exc:
            raise _not_found(str(exc)) from None
        data = [message_batch(r, self._results_url(request, r.id)) for r in records]
        return Response.json(
            {
                "data": data,
                "has_more": more,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )

    async def get(self, request: Request) -> Reply:
        record, tail = await self._find(request)
        if tail == "results":
            return await self._results(record)
        if tail:
            raise _not_found(f"{record.id}/{tail}")
        return self._reply(request, record)

    async def _results(self, record: BatchRecord) -> Reply:
        if record.status not in ENDED:
            raise invalid_request(
                f"Message batch {record.id} has not ended (it is "
                f"{message_batch(record, '')['processing_status']}): its results are "
                "available once processing_status is 'ended'.",
                param="batch_id",
            )
        content = await asyncio.to_thread(self.files.content, record.input_file_id)
        stored = await asyncio.to_thread(self.store.results, record.id)
        done = {line: orjson.loads(result) for line, _, result in stored}
        out = b"".join(
            result_line(orjson.loads(raw)["custom_id"], done.get(index), record.status)
            for index, raw in enumerate(r for r in content.splitlines() if r.strip())
        )
        return Response(200, out, [(b"content-type", b"application/x-jsonl")])

    async def cancel(self, request: Request) -> Reply:
        record, tail = await self._find(request)
        if tail != "cancel":
            raise _not_found(f"{record.id}/{tail}")
        cancelled = await asyncio.to_thread(
            self.store.cancel, record.id, team_id=record.team_id, admin=True, endpoints=ONLY
        )
        return self._reply(request, cancelled)

    async def delete(self, request: Request) -> Reply:
        record, tail = await self._find(request)
        if tail:
            raise _not_found(f"{record.id}/{tail}")
        if record.status not in ENDED:
            raise invalid_request(
                f"Message batch {record.id} is still being processed; cancel it, and delete it "
                "once it has ended.",
                param="batch_id",
            )
        await asyncio.to_thread(
            self.store.delete, record.id, team_id=record.team_id, admin=True, endpoints=ONLY
        )
        await asyncio.to_thread(self.files.delete, record.input_file_id)
        return Response.json({"id": record.id, "type": "message_batch_deleted"})


def _anthropic(handler: Callable[[Request], Awaitable[Reply]]) -> Callable[..., Awaitable[Reply]]:
    """The handler, with its errors in Anthropic's shape."""

    async def answer(request: Request) -> Reply:
        try:
            return await handler(request)
        except APIError as exc:
            return anthropic_error(exc)

    return answer


__all__ = ["MessageBatchesAPI", "message_batch", "result_line"]
