"""Reranking: a configured model takes a second look at the retrieved candidates.

Retrieval fetches ``candidates`` passages (hybrid, dense or keyword), the reranker scores each
against the query, and the best ``top_k`` by that score are returned. Any of the gateway's
models can rerank:

- a **rerank model** (a deployment with ``options: {rerank: true}``: vLLM, Infinity, Jina or
  Cohere behind the ``/rerank`` API) scores all candidates in one call;
- a **chat model** judges each passage: "does it answer the question? yes or no". When the
  provider returns log-probabilities (OpenAI, vLLM), the score is the probability of "yes";
  otherwise 1 for yes and 0 for no, and ties keep the retriever's order.

Calls go through the gateway's router (retries and cooldowns), to the model asked for only.
"""

from __future__ import annotations

import asyncio
import math
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field

from stackyard.rag.models import Body, Models

JUDGE_SYSTEM = (
    "You judge search results. Given a question and a passage, answer with one word: yes if "
    "the passage helps answer the question, no if it does not."
)
JUDGE_USER = "Question: {query}\n\nPassage: {passage}\n\nDoes the passage help answer the question?"
CONCURRENCY = 8  # a chat judge's calls in flight at once


class RerankSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: Annotated[str, Field(min_length=1)] = Field(
        description="A gateway model: a rerank model or a chat model."
    )
    candidates: Annotated[int, Field(ge=1, le=200)] = Field(
        default=20, description="Retrieved passages the model scores (at least top_k are)."
    )


class Reranker(Protocol):
    model: str

    async def scores(self, query: str, texts: list[str]) -> list[float]:
        """One score per text, higher is more relevant."""
        ...


def reranker(models: Models, model: str) -> Reranker:
    """The reranker for ``model``, by what its deployments can do; ValueError if nothing."""
    if model not in models.names():
        raise ValueError(f"no model '{model}' to rerank with")
    if models.can(model, "rerank"):
        return ModelReranker(models, model)
    if models.can(model, "chat"):
        return ChatReranker(models, model)
    raise ValueError(f"model '{model}' can neither rerank nor chat")


class ModelReranker:
    """A rerank model through the ``/rerank`` API: every candidate in one call."""

    def __init__(self, models: Models, model: str) -> None:
        self.models = models
        self.model = model

    async def scores(self, query: str, texts: list[str]) -> list[float]:
        if not texts:
            return []
        return await self.models.rerank(self.model, query, texts)


class ChatReranker:
    """A chat model asked, passage by passage, whether it answers the query."""

    def __init__(self, models: Models, model: str, *, concurrency: int = CONCURRENCY) -> None:
        self.models = models
        self.model = model
        self._slots = asyncio.Semaphore(concurrency)

    async def scores(self, query: str, texts: list[str]) -> list[float]:
        return list(await asyncio.gather(*(self._judge(query, text) for text in texts)))

    async def _judge(self, query: str, passage: str) -> float:
        body: Body = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": JUDGE_SYSTEM},
                {"role": "user", "content": JUDGE_USER.format(query=query, passage=passage)},
            ],
            "temperature": 0,
            "max_tokens": 3,
            "logprobs": True,
            "top_logprobs": 5,
        }

        async with self._slots:
            completion = await self.models.chat(body, fallbacks=False)
        return judged(completion)


def judged(completion: Body) -> float:
    """The probability of "yes" from a judge's answer: from its first token's
    log-probabilities when it has them, else 1.0 for a yes and 0.0 for anything else."""
    choice = (completion.get("choices") or [{}])[0]
    first = ((choice.get("logprobs") or {}).get("content") or [None])[0]
    if isinstance(first, dict):
        yes = no = 0.0
        for option in first.get("top_logprobs") or [first]:
            word = str(option.get("token", "")).strip().lower()
            chance = math.exp(float(option.get("logprob", -math.inf)))
            if word == "yes":
                yes += chance
            elif word == "no":
                no += chance
        if yes + no > 0:
            return yes / (yes + no)
    text = (choice.get("message") or {}).get("content") or ""
    return 1.0 if text.strip().lower().startswith("yes") else 0.0
