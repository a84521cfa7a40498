"""OpenAI's Batch API, so that the official SDK works unchanged:

POST /v1/batches                  {input_file_id, endpoint, completion_window: "24h", metadata}
GET  /v1/batches                  newest first (``after``, ``limit`` 1-100)
GET  /v1/batches/{id}
POST /v1/batches/{id}/cancel

The input file is uploaded with ``POST /v1/files`` (``purpose: batch``); the output and error
files are read with ``GET /v1/files/{id}/content``. A key sees its team's batches (the master
key, all); the lines run as the key that created the batch.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from stackyard.batches.store import OPENAI_ENDPOINTS, WINDOW, BatchNotFound, BatchStore, public
from stackyard.errors import APIError, invalid_request
from stackyard.finetune.files import FileNotFound
from stackyard.server.http import Request, Response

if TYPE_CHECKING:
    from stackyard.auth.admission import Governance
    from stackyard.auth.principal import Principal
    from stackyard.finetune.files import Files
    from stackyard.server.routing import Reply, Routes

PREFIXES = ("/v1/batches/", "/batches/")
#: Fields a create request may carry.
FIELDS = frozenset({"input_file_id", "endpoint", "completion_window", "metadata"})


def _not_found(batch_id: str) -> APIError:
    return APIError(
        404, f"No batch found with id '{batch_id}'.", param="batch_id", code="not_found"
    )


def key_of(principal: Principal) -> str | None:
    """Who a batch's lines run as: a key's id, or the master key, or (open) nobody."""
    if principal.master:
        return "master"
    return principal.key_id


class BatchesAPI:
    def __init__(self, store: BatchStore, files: Files, governance: Governance) -> None:
        self.store = store
        self.files = files
        self.governance = governance

    def register(self, routes: Routes) -> None:
        routes.add("POST", ["/v1/batches", "/batches"], self.create)
        routes.add("GET", ["/v1/batches", "/batches"], self.list)
        for prefix in PREFIXES:
            routes.add_prefix("GET", prefix, self.get)
            routes.add_prefix("POST", prefix, self.cancel)

    def _scope(self, principal: Principal) -> tuple[str | None, bool]:
        return principal.team_id, principal.master

    async def create(self, request: Request) -> Reply:
        principal = self.governance.authenticate(request)
        body = await request.json_object()
        for name in body:
            if name not in FIELDS:
                if name == "output_expires_after":
                    raise APIError(
                        400,
                        "'output_expires_after' is not supported: output files are kept "
                        "until deleted.",
                        param=name,
                        code="unsupported_parameter",
                    )
                raise invalid_request(f"Unrecognized request argument: '{name}'.", param=name)
        endpoint = body.get("endpoint")
        if endpoint not in OPENAI_ENDPOINTS:
            raise invalid_request(
                f"'endpoint' must be one of {', '.join(OPENAI_ENDPOINTS)}.", param="endpoint"
            )
        if body.get("completion_window") != WINDOW:
            raise invalid_request(
                f"'completion_window' must be '{WINDOW}'.", param="completion_window"
            )
        metadata = body.get("metadata")
        if metadata is not None and not (
            isinstance(metadata, dict)
            and len(metadata) <= 16
            and all(isinstance(v, str) and len(v) <= 512 for v in metadata.values())
        ):
            raise invalid_request(
                "'metadata' must be an object of at most 16 string values.", param="metadata"
            )
        file_id = body.get("input_file_id")
        if not isinstance(file_id, str):
            raise invalid_request(
                "Missing required parameter: 'input_file_id'.", param="input_file_id"
            )
        team, admin = self._scope(principal)
        try:
            found = await asyncio.to_thread(self.files.get, file_id, team_id=team, admin=admin)
        except FileNotFound:
            raise invalid_request(
                f"No file found with id '{file_id}'.", param="input_file_id"
            ) from None
        if found.get("purpose") != "batch":
            raise invalid_request(
                f"The file's purpose is '{found.get('purpose')}'; a batch needs 'batch'.",
                param="input_file_id",
            )
        created = await asyncio.to_thread(
            self.store.create,
            endpoint=endpoint,
            input_file_id=file_id,
            key_id=key_of(principal),
            team_id=principal.team_id,
            total=0,
            metadata=metadata,
        )
        return Response.json(public(created))

    async def list(self, request: Request) -> Reply:
        principal = self.governance.authenticate(request)
        query = request.query
        raw = query.get("limit", "20")
        if not raw.isdigit() or not 1 <= int(raw) <= 100:
            raise invalid_request("'limit' must be an integer from 1 to 100.", param="limit")
        team, admin = self._scope(principal)
        try:
            records, more = await asyncio.to_thread(
                self.store.page,
                team_id=team,
                admin=admin,
                after=query.get("after"),
                limit=int(raw),
                endpoints=OPENAI_ENDPOINTS,
            )
        except BatchNotFound:
            raise invalid_request("'after' names no batch.", param="after") from None
        data = [public(r) for r in records]
        return Response.json(
            {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": more,
            }
        )

    def _parts(self, request: Request) -> tuple[str, str]:
        path = request.path
        rest = next(path[len(p) :] for p in PREFIXES if path.startswith(p))
        batch_id, _, tail = rest.partition("/")
        return batch_id, tail

    async def get(self, request: Request) -> Reply:
        principal = self.governance.authenticate(request)
        batch_id, tail = self._parts(request)
        if tail:
            raise _not_found(f"{batch_id}/{tail}")
        team, admin = self._scope(principal)
        try:
            found = await asyncio.to_thread(
                self.store.get, batch_id, team_id=team, admin=admin, endpoints=OPENAI_ENDPOINTS
            )
        except BatchNotFound:
            raise _not_found(batch_id) from None
        return Response.json(public(found))

    async def cancel(self, request: Request) -> Reply:
        principal = self.governance.authenticate(request)
        batch_id, tail = self._parts(request)
        if tail != "cancel":
            raise _not_found(f"{batch_id}/{tail}")
        team, admin = self._scope(principal)
        try:
            found = await asyncio.to_thread(
                self.store.cancel, batch_id, team_id=team, admin=admin, endpoints=OPENAI_ENDPOINTS
            )
        except BatchNotFound:
            raise _not_found(batch_id) from None
        return Response.json(public(found))


__all__ = ["BatchesAPI", "key_of"]
