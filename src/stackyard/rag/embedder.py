"""Embedding texts for a collection with any of the gateway's embedding models.

Calls go straight to the model (no fallback to another model: vectors of two models must
never mix) in batches. An index is named after the collection (its name and id: names repeat
across teams, ids never), the model and a revision (a hash of the deployments' provider, model
id and endpoint), so a change to either builds a new index.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from stackyard.rag.models import Models
from stackyard.rag.stores.base import Vector

BATCH = 32


class Embedder(Protocol):
    model: str

    def revision(self) -> str: ...
    async def embed(self, texts: list[str]) -> list[Vector]: ...


class ModelEmbedder:
    """A gateway model as an :class:`Embedder`."""

    def __init__(self, models: Models, model: str, *, batch: int = BATCH) -> None:
        self.models = models
        self.model = model
        self.batch = batch
        self.calls = 0  # texts embedded (what a sync's report counts)

    def revision(self) -> str:
        return self.models.revision(self.model)

    async def embed(self, texts: list[str]) -> list[Vector]:
        vectors: list[Vector] = []
        for i in range(0, len(texts), self.batch):
            part = texts[i : i + self.batch]
            vectors.extend(await self._embed(part))
            self.calls += len(part)
        return vectors

    async def _embed(self, texts: list[str]) -> list[Vector]:
        embedded = await self.models.embed(self.model, texts)
        return [np.asarray(vector, dtype=np.float32) for vector in embedded]


def index_name(collection: str, model: str, revision: str) -> str:
    """An index's name: ``collection`` (``rag.sync.collection_key``), model and revision."""
    return f"{collection}@{model}:{revision}"
