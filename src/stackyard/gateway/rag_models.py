"""The gateway's models as RAG calls them: :class:`stackyard.rag.models.Models` over the
router (its retries, cooldowns and quotas), built by the composition roots (the server's app,
``stackyard rag``) and handed to :class:`~stackyard.rag.service.RAG`.

Embeddings and rerank calls keep to the model asked for (an answer about another model would
be wrong); an answer that does not score or embed every input is the upstream's failure
(:class:`UpstreamError`, ``invalid_response``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from stackyard.config.schema import StackyardConfig
from stackyard.gateway.deployment import Deployment
from stackyard.gateway.providers.base import Body, UpstreamError
from stackyard.gateway.rerank import scored
from stackyard.gateway.router import Router, RouteStats
from stackyard.rag.models import Operation


def _can(deployment: Deployment, operation: Operation) -> bool:
    capabilities = deployment.provider.capabilities
    if operation == "embeddings":
        return capabilities.embeddings
    if operation == "rerank":
        return capabilities.rerank
    return capabilities.chat


def _chats(deployment: Deployment) -> bool:
    return deployment.provider.capabilities.chat


class RouterModels:
    def __init__(self, router: Router) -> None:
        self.router = router

    def names(self) -> list[str]:
        return self.router.model_names

    def can(self, model: str, operation: Operation) -> bool:
        return any(_can(d, operation) for d in self.router.deployments.get(model, ()))

    def _deployments(self, model: str) -> list[Deployment]:
        return self.router.deployments[self.router.chain(model)[0]]

    def revision(self, model: str) -> str:
        parts = sorted(
            f"{d.entry.provider}|{d.entry.model or d.entry.name}|{d.entry.api_base or ''}"
            for d in self._deployments(model)
        )
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:10]

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        async def attempt(deployment: Deployment) -> Body:
            return await deployment.provider.embeddings({"model": model, "input": texts})

        routed = await self.router.run(
            model,
            attempt,
            stats=RouteStats(),
            supports=lambda d: _can(d, "embeddings"),
            operation="embeddings",
            fallbacks=False,
        )
        data = sorted(routed.result.get("data") or [], key=lambda item: item.get("index", 0))
        if len(data) != len(texts):
            raise UpstreamError(
                "invalid_response", f"asked for {len(texts)} embeddings, got {len(data)}"
            )
        return [item["embedding"] for item in data]

    async def rerank(self, model: str, query: str, documents: list[str]) -> list[float]:
        body = {"model": model, "query": query, "documents": documents, "top_n": len(documents)}

        async def attempt(deployment: Deployment) -> Body:
            provider: Any = deployment.provider
            return await provider.rerank(body)  # type: ignore[no-any-return]

        routed = await self.router.run(
            model,
            attempt,
            stats=RouteStats(),
            supports=lambda d: _can(d, "rerank"),
            operation="rerank",
            fallbacks=False,
        )
        return relevance_scores(routed.result, len(documents))

    async def chat(self, body: Body, *, fallbacks: bool = True) -> Body:
        async def attempt(deployment: Deployment) -> Body:
            return await deployment.provider.chat(deployment.chat_body(body))

        routed = await self.router.run(
            body["model"], attempt, stats=RouteStats(), supports=_chats, fallbacks=fallbacks
        )
        return routed.result

    def portable(self, model: str) -> WorkerModels:
        return WorkerModels(
            [d.entry.model_dump(mode="json", exclude_none=True) for d in self._deployments(model)]
        )


def relevance_scores(response: Body, count: int) -> list[float]:
    """Scores in the documents' order from a ``/rerank`` answer that scores all of them."""
    scores = scored(response, count)
    if len(scores) != count:
        raise UpstreamError("invalid_response", f"asked to rerank {count}, got {len(scores)}")
    return [scores[i] for i in range(count)]


@dataclass(frozen=True, slots=True)
class WorkerModels:
    """One model's deployments (their config entries), made again in another process."""

    entries: list[dict[str, Any]]

    def __call__(self) -> RouterModels:
        from stackyard.gateway.service import Gateway

        gateway = Gateway(StackyardConfig.model_validate({"models": self.entries}))
        return RouterModels(gateway.router)
