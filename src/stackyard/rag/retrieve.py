"""Dense, keyword and hybrid retrieval. Hybrid fuses the two rankings with reciprocal rank
fusion: ``score = sum(weight / (rrf_k + rank))`` over the rankings a chunk appears in. A
reranker (``rag/rerank.py``) may then reorder the candidates."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stackyard.rag.embedder import Embedder
from stackyard.rag.rerank import Reranker, RerankSpec
from stackyard.rag.stores.base import Hit, VectorStore, Where


class QuerySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Annotated[str, Field(min_length=1, max_length=20_000)]
    top_k: Annotated[int, Field(ge=1, le=200)] = 5
    mode: Literal["hybrid", "dense", "keyword"] = "hybrid"
    filter: Where | None = None
    rrf_k: Annotated[int, Field(ge=1, le=1000)] = 60
    dense_weight: Annotated[float, Field(ge=0)] = 1.0
    keyword_weight: Annotated[float, Field(ge=0)] = 1.0
    candidates: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=50, description="Hits from each retriever before fusion."
    )
    rerank: RerankSpec | Literal[False] | None = Field(
        default=None,
        description="Rerank with a model: {model, candidates}; false for none; absent for the "
        "collection's setting.",
    )


@dataclass(frozen=True, slots=True)
class Result:
    hit: Hit
    score: float
    dense_rank: int | None = None  # 1-based, None when that retriever did not find it
    keyword_rank: int | None = None
    rerank_score: float | None = None  # the reranker's, when one ran

    @property
    def rank_score(self) -> float:
        """What the results are ordered by: the reranker's score, else the retriever's."""
        return self.score if self.rerank_score is None else self.rerank_score

    def public(self, collection: str) -> dict[str, Any]:
        return {
            "id": self.hit.id,
            "collection": collection,
            "source": self.hit.source_id,
            "position": self.hit.position,
            "text": self.hit.text,
            "metadata": self.hit.metadata,
            "score": round(self.score, 6),
            "dense_rank": self.dense_rank,
            "keyword_rank": self.keyword_rank,
            "rerank_score": None if self.rerank_score is None else round(self.rerank_score, 6),
        }


def fuse(
    dense: list[Hit], keyword: list[Hit], *, k: int, rrf_k: int, weights: tuple[float, float]
) -> list[Result]:
    scores: dict[str, float] = {}
    hits: dict[str, Hit] = {}
    ranks: dict[str, list[int | None]] = {}
    for which, (ranking, weight) in enumerate(((dense, weights[0]), (keyword, weights[1]))):
        for rank, hit in enumerate(ranking, start=1):
            hits.setdefault(hit.id, hit)
            scores[hit.id] = scores.get(hit.id, 0.0) + weight / (rrf_k + rank)
            ranks.setdefault(hit.id, [None, None])[which] = rank
    order = sorted(scores, key=lambda i: (-scores[i], i))[:k]
    return [Result(hits[i], scores[i], *ranks[i]) for i in order]


async def retrieve(
    store: VectorStore, index: str, embedder: Embedder, spec: QuerySpec
) -> list[Result]:
    dense: list[Hit] = []
    keyword: list[Hit] = []
    wanted = spec.top_k if spec.mode != "hybrid" else max(spec.candidates, spec.top_k)
    if spec.mode in ("dense", "hybrid"):
        (vector,) = await embedder.embed([spec.query])
        dense = await asyncio.to_thread(store.dense, index, vector, wanted, spec.filter)
    if spec.mode in ("keyword", "hybrid"):
        keyword = await asyncio.to_thread(store.keyword, index, spec.query, wanted, spec.filter)
    if spec.mode == "dense":
        return [Result(h, h.score, dense_rank=i) for i, h in enumerate(dense, start=1)]
    if spec.mode == "keyword":
        return [Result(h, h.score, keyword_rank=i) for i, h in enumerate(keyword, start=1)]
    weights = (spec.dense_weight, spec.keyword_weight)
    return fuse(dense, keyword, k=spec.top_k, rrf_k=spec.rrf_k, weights=weights)


async def reranked(
    reranker: Reranker, query: str, results: list[Result], top_k: int
) -> list[Result]:
    """The ``top_k`` of ``results`` by the reranker's scores (ties keep the retriever's order)."""
    scores = await reranker.scores(query, [r.hit.text for r in results])
    order = sorted(range(len(results)), key=lambda i: -scores[i])[:top_k]
    return [replace(results[i], rerank_score=scores[i]) for i in order]
