"""What RAG needs of the gateway's models: a protocol, so that rag calls models without
knowing the router, its deployments or its providers.

RAG embeds (indexing and search), reranks, and chats (a chat model as a reranking judge, an
evaluation's answers and its faithfulness judge). The composition root (the server's app,
``stackyard rag``) gives :class:`~stackyard.rag.service.RAG` the gateway's implementation,
:class:`stackyard.gateway.rag_models.RouterModels`. A failed call raises what the
implementation raises (the gateway's :class:`~stackyard.errors.APIError` once its router gives
up); rag catches none of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

Body = dict[str, Any]
Operation = Literal["embeddings", "rerank", "chat"]


class Models(Protocol):
    def names(self) -> list[str]:
        """The models that can be called, in the config's order."""
        ...

    def can(self, model: str, operation: Operation) -> bool:
        """Whether ``model`` itself (not a fallback) can do ``operation``; False for a
        model that does not exist."""
        ...

    def revision(self, model: str) -> str:
        """A short digest of what serves ``model`` (each deployment's provider, model id and
        endpoint): it changes when the vectors ``model`` makes may change."""
        ...

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        """One vector per text, in the texts' order, from ``model`` itself (never a
        fallback: vectors of two models must never mix)."""
        ...

    async def rerank(self, model: str, query: str, documents: list[str]) -> list[float]:
        """One relevance score per document, in the documents' order (higher is more
        relevant), from ``model`` itself in one call."""
        ...

    async def chat(self, body: Body, *, fallbacks: bool = True) -> Body:
        """A non-streamed chat completion (OpenAI's shapes) from ``body["model"]``; without
        ``fallbacks``, from that model only."""
        ...

    def portable(self, model: str) -> Callable[[], Models]:
        """A picklable factory that, in another process (a Ray worker), makes models that
        embed with ``model`` as these do."""
        ...
