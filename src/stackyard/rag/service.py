"""RAG as one object for the API, the chat endpoint and the CLI: the collection registry, the
vector stores (opened on first use) and an embedder per model."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from stackyard.config.rag import RagConfig, VectorStoreConfig
from stackyard.rag import sync as syncing
from stackyard.rag.collections import Collection, Collections, CollectionSettings, RagError
from stackyard.rag.embedder import ModelEmbedder
from stackyard.rag.loaders import Document
from stackyard.rag.models import Models
from stackyard.rag.rerank import Reranker, RerankSpec, reranker
from stackyard.rag.retrieve import QuerySpec, Result, reranked, retrieve
from stackyard.rag.stores.base import StoreError, VectorStore
from stackyard.store.db import Database


def open_store(config: VectorStoreConfig, base_dir: Path) -> VectorStore:
    if config.kind == "pgvector":
        from stackyard.rag.stores.pgvector import PgVectorStore

        assert config.url is not None  # the config's validator says so
        return PgVectorStore(config.url)
    from stackyard.rag.stores.embedded import EmbeddedStore

    path = Path(config.path) if config.path else base_dir / "rag.db"
    return EmbeddedStore(path if path.is_absolute() else base_dir / path)


class RAG:
    def __init__(
        self,
        config: RagConfig,
        db: Database,
        models: Models,
        *,
        base_dir: Path,
        ray_address: str | None = None,
    ) -> None:
        self.config = config
        self.cluster: syncing.Cluster | None = None
        if ray_address is not None:
            from stackyard.rag.distributed import RayCluster

            self.cluster = RayCluster(
                ray_address, min_files=config.ray_min_files, actors=config.ray_embed_actors
            )
        #: The gateway's models (embeddings, reranking, chat).
        self.models = models
        self.base_dir = base_dir
        self.collections = Collections(db)
        self._stores: dict[str, VectorStore] = {}
        self._embedders: dict[str, ModelEmbedder] = {}
        self._lock = threading.Lock()

    # -- parts -----------------------------------------------------------------------------

    def store(self, name: str) -> VectorStore:
        with self._lock:
            store = self._stores.get(name)
            if store is None:
                config = self.config.stores.get(name)
                if config is None:
                    known = ", ".join(sorted(self.config.stores)) or "none"
                    raise RagError(
                        400, f"no vector store '{name}' (stores: {known})", code="invalid_store"
                    )
                store = self._stores[name] = open_store(config, self.base_dir)
            return store

    def embedder(self, model: str) -> ModelEmbedder:
        embedder = self._embedders.get(model)
        if embedder is None:
            embedder = self._embedders[model] = ModelEmbedder(self.models, model)
        return embedder

    def default_model(self) -> str:
        if self.config.embedding_model:
            return self.config.embedding_model
        for name in self.models.names():
            if self.models.can(name, "embeddings"):
                return name
        raise RagError(
            400,
            "no model does embeddings here; name one with embedding_model",
            code="invalid_collection",
            param="embedding_model",
        )

    def check_settings(self, settings: CollectionSettings) -> None:
        names = self.models.names()
        if settings.embedding_model not in names:
            raise RagError(
                400,
                f"no model '{settings.embedding_model}' (models: {', '.join(names) or 'none'})",
                code="invalid_collection",
                param="embedding_model",
            )
        self.store(settings.store)
        if settings.rerank is not None:
            self.reranker(settings.rerank, param="rerank.model", code="invalid_collection")

    def reranker(
        self, spec: RerankSpec, *, param: str = "rerank.model", code: str = "invalid_query"
    ) -> Reranker:
        try:
            return reranker(self.models, spec.model)
        except ValueError as exc:
            raise RagError(400, str(exc), code=code, param=param) from None

    # -- operations ------------------------------------------------------------------------

    def create(self, name: str, body: dict[str, Any], team_id: str | None = None) -> Collection:
        """A new collection ``name`` in ``team_id``'s namespace (None: the master key's)."""
        from stackyard.rag.collections import settings_from

        settings = settings_from({"embedding_model": self.default_model(), **body})
        self.check_settings(settings)
        return self.collections.create(name, settings, team_id)

    # The operations below take a collection already found in the caller's namespace, and
    # act on it by its id (read afresh: a writer must not act on a stale snapshot).

    async def sync(
        self, collection: Collection, progress: syncing.Progress | None = None
    ) -> syncing.SyncReport:
        collection = await asyncio.to_thread(self.collections.current, collection)
        settings = collection.settings
        return await syncing.sync(
            collection,
            self.store(settings.store),
            self.embedder(settings.embedding_model),
            self.collections,
            base_dir=self.base_dir,
            progress=progress,
            cluster=self.cluster,
        )

    async def upsert(self, collection: Collection, documents: list[Document]) -> syncing.SyncReport:
        collection = await asyncio.to_thread(self.collections.current, collection)
        settings = collection.settings
        return await syncing.upsert(
            collection,
            self.store(settings.store),
            self.embedder(settings.embedding_model),
            self.collections,
            documents,
        )

    async def delete_documents(self, collection: Collection, source_ids: list[str]) -> int:
        collection = await asyncio.to_thread(self.collections.current, collection)
        store = self.store(collection.settings.store)
        deleted = 0
        for index in filter(None, (collection.active_index, collection.building_index)):
            deleted = max(
                deleted, await asyncio.to_thread(store.delete_documents, index, source_ids)
            )
        return deleted

    async def drop(self, collection: Collection) -> Collection:
        collection = await asyncio.to_thread(self.collections.delete, collection)
        store = self.store(collection.settings.store)
        for index in filter(None, (collection.active_index, collection.building_index)):
            await asyncio.to_thread(store.drop_index, index)
        return collection

    async def query(self, collection: Collection, spec: QuerySpec) -> list[Result]:
        if collection.active_index is None:
            return []  # nothing synced yet
        settings = collection.settings
        rerank = settings.rerank if spec.rerank is None else spec.rerank or None
        judge = self.reranker(rerank) if rerank is not None else None
        wanted = spec
        if rerank is not None:
            wanted = spec.model_copy(update={"top_k": max(spec.top_k, rerank.candidates)})
        try:
            results = await retrieve(
                self.store(settings.store),
                collection.active_index,
                self.embedder(settings.embedding_model),
                wanted,
            )
        except StoreError as exc:
            raise RagError(400, str(exc), code="invalid_query") from None
        if judge is None:
            return results
        return await reranked(judge, spec.query, results, spec.top_k)

    def counts(self, collection: Collection) -> dict[str, int]:
        if collection.active_index is None:
            return {"documents": 0, "chunks": 0}
        try:
            documents, chunks = self.store(collection.settings.store).count(collection.active_index)
        except StoreError:
            return {"documents": 0, "chunks": 0}
        return {"documents": documents, "chunks": chunks}

    def close(self) -> None:
        with self._lock:
            for store in self._stores.values():
                store.close()
            self._stores.clear()
