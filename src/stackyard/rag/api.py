"""The RAG API, under ``/api/collections`` (any valid key sees its team's collections; the
master key sees all, and alone may point a collection at folders on the server).

Names are per team (``rag/namespaces.py``): a key's NAME is its team's collection; the master
key's is its own (no team) unless it names a team with ``?team_id=`` (or, on create,
``"team_id"`` in the body). The master key lists every team's collections unless it names one.

GET    /api/collections                     every collection the caller may see
POST   /api/collections                     {"name", "team_id"?, "embedding_model"?,
                                            "chunk_size"?, "chunk_overlap"?, "store"?,
                                            "sources"?, "description"?}
GET    /api/collections/{name}              settings, counts, the last sync's report
PATCH  /api/collections/{name}              change settings (a new embedding model builds a
                                            new index on the next sync, then swaps it in)
DELETE /api/collections/{name}              the collection and its indexes
POST   /api/collections/{name}/sync         read the sources now; the report
POST   /api/collections/{name}/documents    {"documents": [{"id", "text", "metadata"?}]}
DELETE /api/collections/{name}/documents/{id}
POST   /api/collections/{name}/query        {"query", "top_k"?, "mode"?, "filter"?, "rrf_k"?,
                                            "dense_weight"?, "keyword_weight"?, "candidates"?}
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from stackyard.auth.admission import Governance
from stackyard.auth.principal import Principal
from stackyard.errors import APIError, describe_validation, invalid_request
from stackyard.rag.chunking import Section
from stackyard.rag.collections import Collection, RagError, settings_from
from stackyard.rag.loaders import Document
from stackyard.rag.namespaces import namespace, resolve, visible
from stackyard.rag.retrieve import QuerySpec
from stackyard.rag.service import RAG
from stackyard.server.http import Request, Response
from stackyard.server.routing import Reply, Routes

PREFIX = "/api/collections/"
MAX_DOCUMENTS = 1000  # per request


class CollectionsAPI:
    def __init__(self, rag: RAG, governance: Governance) -> None:
        self.rag = rag
        self.governance = governance

    def register(self, routes: Routes) -> None:
        routes.add("GET", ["/api/collections"], self._call(self.list_all))
        routes.add("POST", ["/api/collections"], self._call(self.create))
        for method, handler in (
            ("GET", self.read),
            ("PATCH", self.change),
            ("DELETE", self.delete),
            ("POST", self.act),
        ):
            routes.add_prefix(method, PREFIX, self._call(handler))

    def _call(
        self, handler: Callable[[Request, Principal], Awaitable[Any]]
    ) -> Callable[[Request], Awaitable[Reply]]:
        async def call(request: Request) -> Reply:
            principal = self.governance.authenticate(request)
            try:
                result = await handler(request, principal)
            except RagError as exc:
                raise APIError(exc.status, str(exc), param=exc.param, code=exc.code) from None
            return Response.json(result)

        return call

    def _parts(self, request: Request) -> list[str]:
        rest = request.scope["path"][len(PREFIX) :].strip("/")
        return [urllib.parse.unquote(p) for p in rest.split("/")]

    def _collection(self, request: Request, name: str, principal: Principal) -> Collection:
        """``name`` in the namespace the caller addresses (``?team_id=`` for the master)."""
        return resolve(self.rag.collections, principal, name, request.query.get("team_id"))

    def _show(self, collection: Collection) -> dict[str, Any]:
        return {**collection.public(), **self.rag.counts(collection)}

    async def list_all(self, request: Request, principal: Principal) -> Any:
        await asyncio.to_thread(self.rag.collections.load)
        named = request.query.get("team_id")
        space = namespace(principal, named)
        listed = sorted(
            (
                c
                for c in self.rag.collections.by_team_name.values()
                if visible(principal, c) and (not named or c.team_id == space)
            ),
            key=lambda c: (c.team_id or "", c.name),
        )
        shown = [await asyncio.to_thread(self._show, c) for c in listed]
        return {"object": "list", "data": shown}

    async def create(self, request: Request, principal: Principal) -> Any:
        body = await request.json_object()
        name = body.pop("name", None)
        if not isinstance(name, str):
            raise invalid_request("'name' is required: the collection's name", param="name")
        named = body.pop("team_id", None)
        if named is not None and not isinstance(named, str):
            raise invalid_request("'team_id' must be a team's id", param="team_id")
        asked = request.query.get("team_id")
        if named and asked and named != asked:
            raise invalid_request(
                "'team_id' in the body and in the query name different teams", param="team_id"
            )
        team_id = namespace(principal, named or asked)
        if body.get("sources") and not principal.admin:
            raise _forbidden("only the master key may point a collection at server folders")
        created = await asyncio.to_thread(self.rag.create, name, body, team_id)
        return self._show(created)

    async def read(self, request: Request, principal: Principal) -> Any:
        parts = self._parts(request)
        if len(parts) != 1:
            raise RagError(404, "no such path", code="not_found")
        await asyncio.to_thread(self.rag.collections.load)
        return await asyncio.to_thread(self._show, self._collection(request, parts[0], principal))

    async def change(self, request: Request, principal: Principal) -> Any:
        (name, *rest) = self._parts(request)
        if rest:
            raise RagError(404, "no such path", code="not_found")
        collection = self._collection(request, name, principal)
        body = await request.json_object()
        if "sources" in body and not principal.admin:
            raise _forbidden("only the master key may point a collection at server folders")
        settings = settings_from(body, collection.settings)
        self.rag.check_settings(settings)
        updated = await asyncio.to_thread(
            self.rag.collections.update, collection, settings=settings
        )
        return self._show(updated)

    async def delete(self, request: Request, principal: Principal) -> Any:
        (name, *rest) = self._parts(request)
        collection = self._collection(request, name, principal)
        if not rest:
            await self.rag.drop(collection)
            return {
                "object": "collection.deleted",
                "name": name,
                "team_id": collection.team_id,
                "deleted": True,
            }
        if len(rest) == 2 and rest[0] == "documents":
            deleted = await self.rag.delete_documents(collection, [rest[1]])
            return {"object": "document.deleted", "id": rest[1], "deleted": bool(deleted)}
        raise RagError(404, "no such path", code="not_found")

    async def act(self, request: Request, principal: Principal) -> Any:
        (name, *rest) = self._parts(request)
        action = rest[0] if len(rest) == 1 else None
        collection = self._collection(request, name, principal)
        if action == "query":
            return await self._query(request, collection)
        if action == "sync":
            report = await self.rag.sync(collection)
            return {"object": "collection.sync", **report.public()}
        if action == "documents":
            return await self._push(request, collection)
        raise RagError(404, "no such path", code="not_found")

    async def _query(self, request: Request, collection: Collection) -> Any:
        try:
            spec = QuerySpec.model_validate(await request.json_object())
        except ValidationError as exc:
            message, where = describe_validation(exc)
            raise invalid_request(message, param=where, code="invalid_query") from None
        results = await self.rag.query(collection, spec)
        return {"object": "list", "data": [r.public(collection.name) for r in results]}

    async def _push(self, request: Request, collection: Collection) -> Any:
        body = await request.json_object()
        items = body.get("documents")
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_DOCUMENTS:
            raise invalid_request(
                f"'documents' must be a list of 1 to {MAX_DOCUMENTS} documents",
                param="documents",
            )
        documents = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise invalid_request(f"documents.{i} must be an object", param="documents")
            key, text, metadata = item.get("id"), item.get("text"), item.get("metadata") or {}
            if not isinstance(key, str | int) or isinstance(key, bool) or not str(key):
                raise invalid_request(
                    f"documents.{i}.id must be a string or a number", param="documents"
                )
            if not isinstance(text, str):
                raise invalid_request(f"documents.{i}.text must be a string", param="documents")
            if not isinstance(metadata, dict):
                raise invalid_request(
                    f"documents.{i}.metadata must be an object", param="documents"
                )
            documents.append(Document(str(key), [Section(text, 0)], metadata))
        report = await self.rag.upsert(collection, documents)
        return {"object": "collection.upsert", **report.public()}


def _forbidden(message: str) -> RagError:
    return RagError(403, message, code="permission_denied")
