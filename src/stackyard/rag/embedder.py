"""Embedding texts for a collection with any of the gateway's embedding models.

Calls go straight to the model's deployments (no fallback to another model: vectors of two
models must never mix) in batches. An index is named after the collection, the model, a
revision (a hash of the deployments' provider, model id and endpoint), so a change to either
builds a new index.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import numpy as np

from stackyard.gateway.deployment import Deployment
from stackyard.gateway.providers.base import Body, UpstreamError
from stackyard.gateway.router import Router, RouteStats
from stackyard.rag.stores.base import Vector

BATCH = 32


class Embedder(Protocol):
    model: str

    def revision(self) -> str: ...
    async def embed(self, texts: list[str]) -> list[Vector]: ...


class RouterEmbedder:
    def __init__(self, router: Router, model: str, *, batch: int = BATCH) -> None:
        self.router = router
        self.model = model
        self.batch = batch
        self.calls = 0  # texts embedded (what a sync's report counts)

    def revision(self) -> str:
        names = self.router.chain(self.model)[:1]
        parts = sorted(
            f"{d.entry.provider}|{d.entry.model or d.entry.name}|{d.entry.api_base or ''}"
            for d in self.router.deployments[names[0]]
        )
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:10]

    async def embed(self, texts: list[str]) -> list[Vector]:
        vectors: list[Vector] = []
        for i in range(0, len(texts), self.batch):
            part = texts[i : i + self.batch]
            vectors.extend(await self._embed(part))
            self.calls += len(part)
        return vectors

    async def _embed(self, texts: list[str]) -> list[Vector]:
        async def attempt(deployment: Deployment) -> Body:
            return await deployment.provider.embeddings({"model": self.model, "input": texts})

        routed = await self.router.run(
            self.model,
            attempt,
            stats=RouteStats(),
            supports=lambda d: d.provider.capabilities.embeddings,
            operation="embeddings",
            fallbacks=False,
        )
        data = sorted(routed.result.get("data") or [], key=lambda item: item.get("index", 0))
        if len(data) != len(texts):
            raise UpstreamError(
                "invalid_response", f"asked for {len(texts)} embeddings, got {len(data)}"
            )
        return [np.asarray(item["embedding"], dtype=np.float32) for item in data]


def index_name(collection: str, model: str, revision: str) -> str:
    return f"{collection}@{model}:{revision}"
