"""Reranking's parts that need no model: reading a ``/rerank`` answer and a chat judge's
answer, reordering the candidates, and picking the reranker by what a model can do. The
models themselves are exercised end to end (tests/e2e/test_rag.py with a rerank upstream,
tests/e2e/test_local.py with SmolLM2 as a judge)."""

from __future__ import annotations

import math

import pytest

from stackyard.config.schema import StackyardConfig
from stackyard.gateway.providers.base import UpstreamError
from stackyard.gateway.rag_models import RouterModels, relevance_scores
from stackyard.gateway.service import Gateway
from stackyard.rag.rerank import ChatReranker, ModelReranker, judged, reranker
from stackyard.rag.retrieve import Result, reranked
from stackyard.rag.stores.base import Hit
from tests.conftest import require_local_models


def test_relevance_scores_come_back_in_the_documents_order() -> None:
    answer = {
        "results": [
            {"index": 2, "relevance_score": 0.9},
            {"index": 0, "relevance_score": 0.5},
            {"index": 1, "relevance_score": 0.1},
        ]
    }
    assert relevance_scores(answer, 3) == [0.5, 0.1, 0.9]


@pytest.mark.parametrize(
    "answer",
    [
        {},
        {"results": [{"index": 0, "relevance_score": 0.5}]},  # one of two
        {"results": [{"index": 5, "relevance_score": 0.5}, {"index": 0, "relevance_score": 1}]},
        {"results": [{"index": 0, "relevance_score": "high"}, {"index": 1, "relevance_score": 1}]},
    ],
)
def test_a_malformed_rerank_answer_is_an_invalid_response(answer: dict[str, object]) -> None:
    with pytest.raises(UpstreamError) as caught:
        relevance_scores(answer, 2)
    assert caught.value.kind == "invalid_response"


def completion(content: str, logprobs: object = None) -> dict[str, object]:
    return {"choices": [{"message": {"content": content}, "logprobs": logprobs}]}


def test_a_judge_without_logprobs_scores_yes_1_and_anything_else_0() -> None:
    assert judged(completion("Yes.")) == 1.0
    assert judged(completion(" yes, it does")) == 1.0
    assert judged(completion("No")) == 0.0
    assert judged(completion("Maybe")) == 0.0
    assert judged({"choices": []}) == 0.0


def test_a_judge_with_logprobs_scores_the_probability_of_yes() -> None:
    top = [
        {"token": "Yes", "logprob": math.log(0.6)},
        {"token": " yes", "logprob": math.log(0.1)},
        {"token": "No", "logprob": math.log(0.2)},
        {"token": "Maybe", "logprob": math.log(0.1)},
    ]
    logprobs = {"content": [{"token": "Yes", "logprob": math.log(0.6), "top_logprobs": top}]}
    assert judged(completion("Yes", logprobs)) == pytest.approx(0.7 / 0.9)
    unsure = {"content": [{"token": "Perhaps", "logprob": 0.0, "top_logprobs": []}]}
    assert judged(completion("Perhaps", unsure)) == 0.0  # no yes or no: the text decides


class Fixed:
    model = "fixed"

    def __init__(self, scores: list[float]) -> None:
        self._scores = scores
        self.asked: list[tuple[str, list[str]]] = []

    async def scores(self, query: str, texts: list[str]) -> list[float]:
        self.asked.append((query, texts))
        return self._scores


def result(text: str, score: float) -> Result:
    return Result(Hit(f"id-{text}", "doc", text, 0, score), score)


async def test_reranked_orders_by_the_rerankers_score_and_keeps_ties_in_order() -> None:
    candidates = [result(t, s) for t, s in [("a", 0.9), ("b", 0.8), ("c", 0.7), ("d", 0.6)]]
    judge = Fixed([0.0, 1.0, 0.0, 1.0])
    out = await reranked(judge, "q", candidates, 3)
    assert [r.hit.text for r in out] == ["b", "d", "a"]
    assert [r.rerank_score for r in out] == [1.0, 1.0, 0.0]
    assert [r.score for r in out] == [0.8, 0.6, 0.9]  # the retriever's scores are kept
    assert out[0].rank_score == 1.0
    assert candidates[0].rank_score == 0.9
    assert judge.asked == [("q", ["a", "b", "c", "d"])]


def test_the_reranker_follows_what_the_model_can_do() -> None:
    require_local_models()
    config = StackyardConfig.model_validate(
        {
            "models": [
                {"name": "chat", "provider": "openai-compatible", "api_base": "http://x/v1"},
                {
                    "name": "ranker",
                    "provider": "openai-compatible",
                    "api_base": "http://x/v1",
                    "options": {"rerank": True},
                },
                {"name": "vectors", "provider": "local", "model": "all-minilm-l6-v2"},
            ]
        }
    )
    models = RouterModels(Gateway(config).router)
    assert isinstance(reranker(models, "ranker"), ModelReranker)
    assert isinstance(reranker(models, "chat"), ChatReranker)
    with pytest.raises(ValueError, match="no model 'other'"):
        reranker(models, "other")
    with pytest.raises(ValueError, match="'vectors' can neither rerank nor chat"):
        reranker(models, "vectors")
