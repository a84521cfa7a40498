"""Evicting cache entries (master key): one by id, or a whole namespace.

DELETE /api/cache/entries/{id}
DELETE /api/cache/namespaces/{namespace}
"""

from __future__ import annotations

from stackyard.auth.admission import Governance
from stackyard.cache.service import Cache
from stackyard.errors import APIError
from stackyard.server.http import Request, Response
from stackyard.server.routing import Reply, Routes

ENTRIES = "/api/cache/entries/"
NAMESPACES = "/api/cache/namespaces/"


class CacheAPI:
    def __init__(self, cache: Cache, governance: Governance) -> None:
        self.cache = cache
        self.governance = governance

    def register(self, routes: Routes) -> None:
        routes.add_prefix("DELETE", ENTRIES, self.evict)
        routes.add_prefix("DELETE", NAMESPACES, self.evict_namespace)

    async def evict(self, request: Request) -> Reply:
        self.governance.require_master(request)
        entry_id = request.scope["path"][len(ENTRIES) :]
        if not await self.cache.backend.evict(entry_id):
            raise APIError(404, f"No cache entry '{entry_id}'.", code="cache_entry_not_found")
        return Response.json({"id": entry_id, "deleted": True})

    async def evict_namespace(self, request: Request) -> Reply:
        self.governance.require_master(request)
        namespace = request.scope["path"][len(NAMESPACES) :]
        removed = await self.cache.backend.evict_namespace(namespace)
        return Response.json({"namespace": namespace, "deleted": removed})
