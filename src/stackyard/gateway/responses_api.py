"""Stored responses over HTTP, as OpenAI serves them:

GET    /v1/responses/{id}               the Response
DELETE /v1/responses/{id}               ``{"id", "object": "response", "deleted": true}``
GET    /v1/responses/{id}/input_items   that turn's input items, a cursor page
                                        (``limit`` 1-100, ``order`` asc|desc, ``after``)

A key sees its team's responses (a key without a team, its own); the master key sees all. Any
other response is "not found", as if it did not exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stackyard.errors import APIError, invalid_request
from stackyard.gateway.stored_responses import ResponseStore, Stored
from stackyard.server.http import Request, Response

if TYPE_CHECKING:
    from stackyard.auth.admission import Governance
    from stackyard.server.routing import Reply, Routes

PREFIXES = ("/v1/responses/", "/responses/")


def _not_found(response_id: str) -> APIError:
    return APIError(
        404,
        f"Response with id '{response_id}' not found.",
        type="invalid_request_error",
        param="response_id",
        code="not_found",
    )


class ResponsesAPI:
    def __init__(self, store: ResponseStore, governance: Governance) -> None:
        self.store = store
        self.governance = governance

    def register(self, routes: Routes) -> None:
        for prefix in PREFIXES:
            routes.add_prefix("GET", prefix, self.get)
            routes.add_prefix("DELETE", prefix, self.delete)

    async def _find(self, request: Request) -> tuple[Stored, str]:
        principal = self.governance.authenticate(request)
        path = request.path
        rest = next(path[len(p) :] for p in PREFIXES if path.startswith(p))
        response_id, _, tail = rest.partition("/")
        stored = await self.store.get(response_id, principal)
        if stored is None:
            raise _not_found(response_id)
        return stored, tail

    async def get(self, request: Request) -> Reply:
        stored, tail = await self._find(request)
        if tail == "":
            return Response.json(stored.response)
        if tail == "input_items":
            return Response.json(_page(stored.items, request.query))
        raise _not_found(f"{stored.id}/{tail}")

    async def delete(self, request: Request) -> Reply:
        stored, tail = await self._find(request)
        if tail:
            raise _not_found(f"{stored.id}/{tail}")
        await self.store.delete(stored)
        return Response.json({"id": stored.id, "object": "response", "deleted": True})


def _page(items: list[dict[str, object]], query: dict[str, str]) -> dict[str, object]:
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise invalid_request("'order' must be asc or desc.", param="order")
    raw = query.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise invalid_request("'limit' must be an integer from 1 to 100.", param="limit")
    if query.get("include"):
        raise invalid_request("'include' is not supported here.", param="include")
    ordered = items if order == "asc" else items[::-1]
    after = query.get("after")
    if after is not None:
        at = next((i for i, item in enumerate(ordered) if item.get("id") == after), None)
        if at is None:
            raise invalid_request(f"No input item with id '{after}'.", param="after")
        ordered = ordered[at + 1 :]
    data = ordered[: int(raw)]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(ordered) > len(data),
    }
