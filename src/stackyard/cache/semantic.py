"""The semantic tier: a request whose last user turn means the same as a cached one's, in the
same partition, is answered from the cache.

- **Partition.** Everything but the last user turn's text: the tenant, the model and its
  upstreams, the namespace, the system prompt, the earlier turns, tools, ``response_format`` and
  the sampling parameters. Only entries of the request's own partition are ever searched
  (a filter, never a prefix on the text that is embedded).
- **Eligibility.** The last message must be a user's, in text. A temperature above the
  configured maximum (0 by default; OpenAI's default temperature is 1) is served from the exact
  tier only, and an answer that calls tools is never kept for the semantic tier.
- **Decision.** The nearest cached questions by cosine similarity (the in-process embedding
  model; no network call), those below a similarity floor dropped, those with different
  numbers or a negation on one side only rejected outright, so is a look-alike that the
  contrast guard refuses (:mod:`stackyard.cache.contrast`: an antonym, a sibling term, a unit,
  a date, a name, a swapped role), and the rest scored by the pair
  classifier (:mod:`stackyard.cache.pairs`), in both orders, its score combined with the
  similarity. The best is a hit when that reaches the threshold that met the operator's error
  budget on held-out pairs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from stackyard.cache.contrast import refusal
from stackyard.cache.entry import Candidate
from stackyard.cache.key import cache_key
from stackyard.cache.verifier import features

log = logging.getLogger("stackyard.cache")


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    partition: str


@dataclass(frozen=True, slots=True)
class Match:
    candidate: Candidate
    score: float


def question_text(message: Any) -> str | None:
    """The text of a user message (None: not a user's, or not only text)."""
    if not isinstance(message, dict) or message.get("role") != "user":
        return None
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content:
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                return None
            parts.append(str(part.get("text", "")))
        return "\n".join(parts)
    return None


def question(
    tenant: str,
    fingerprint: str,
    namespace: str,
    body: dict[str, Any],
    max_temperature: float,
) -> Question | str:
    """The request's question and partition, or why it is served from the exact tier only."""
    temperature = body.get("temperature")
    temperature = 1.0 if temperature is None else temperature
    if not isinstance(temperature, int | float) or temperature > max_temperature:
        return f"temperature {temperature} is above the semantic tier's {max_temperature}"
    if (body.get("n") or 1) != 1:
        return "n is not 1"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "no messages"
    text = question_text(messages[-1])
    if text is None or not text.strip():
        return "the last message is not a user's text"
    last = {k: v for k, v in messages[-1].items() if k != "content"}
    rest = {**body, "messages": [*messages[:-1], last]}
    return Question(text.strip(), cache_key(tenant, fingerprint, namespace, rest))


def calls_tools(response: dict[str, Any] | None, chunks: Sequence[dict[str, Any]] | None) -> bool:
    for choice in (response or {}).get("choices") or ():
        if (choice.get("message") or {}).get("tool_calls"):
            return True
    for chunk in chunks or ():
        for choice in chunk.get("choices") or ():
            if (choice.get("delta") or {}).get("tool_calls"):
                return True
    return False


def rejects(first: str, second: str, guard: bool = True) -> bool:
    """Different numbers, a negation on one side only, or (with ``guard``) a difference the
    contrast guard refuses: never the same question."""
    a, b = features(first), features(second)
    if a.numbers != b.numbers or a.negated != b.negated:
        return True
    return guard and refusal(first, second) is not None


def admits(first: str, second: str, similarity: float, floor: float, guard: bool = True) -> bool:
    """The stages before the classifier: similar enough, and not rejected outright. The
    calibration and the benchmark call this too, so that they judge what the tier decides
    (the benchmark without ``guard`` too, to measure the contrast guard)."""
    return similarity >= floor and not rejects(first, second, guard)


class Semantic:
    """The models of the semantic tier, loaded once (lazily, or by :meth:`warm`)."""

    #: Skip a candidate's second order when its first rules it out (off only to measure it).
    cutoff = True

    def __init__(
        self,
        embedding_model: str = "all-minilm-l6-v2",
        *,
        error_budget: float = 0.02,
        min_similarity: float = 0.5,
        top_k: int = 2,
        device: str = "cpu",
    ) -> None:
        self.embedding_model = embedding_model
        self.error_budget = error_budget
        self.min_similarity = min_similarity
        self.top_k = top_k
        self.device = device
        self._embedder: Any = None
        self._pairs: Any = None
        self._threshold = 1.0
        self._load_lock = threading.Lock()
        self.problem: str | None = None
        # One thread runs the models: torch keeps its worker threads per calling thread, and
        # hopping between a pool's threads costs more than the work at this size.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="stackyard-semantic")

    def _load(self) -> None:
        with self._load_lock:
            if self._pairs is not None:
                return
            from stackyard.cache.int8 import int8
            from stackyard.cache.onnx import embedder as onnx_embedder
            from stackyard.cache.pairs import PairModel
            from stackyard.engine.loading import load_embedder
            from stackyard.engine.sources import resolve

            source = resolve(self.embedding_model, "embeddings")
            model = load_embedder(source, self.device)
            fast = onnx_embedder(model) if self.device == "cpu" else None
            embedder = fast or int8(model, self.device)
            pairs = PairModel(resolve("all-minilm-l6-v2", "embeddings").directory)
            self._threshold = pairs.threshold(self.error_budget)
            if self._threshold >= 1.0:
                log.warning(
                    "the semantic cache will not hit: no threshold kept wrong hits within an "
                    "error budget of %s on the held-out pairs (raise cache.error_budget)",
                    self.error_budget,
                )
            self._embedder = embedder
            self._pairs = pairs

    def warm(self) -> str | None:
        """Load the models now; why the tier is unavailable, if it is."""
        try:
            self._load()
        except Exception as exc:  # a missing extra, package or weights file
            self.problem = str(exc) or type(exc).__name__
            log.warning("the semantic cache is unavailable: %s", self.problem)
        return self.problem

    @property
    def threshold(self) -> float:
        return self._threshold

    def embed_sync(self, texts: Sequence[str]) -> Any:
        self._load()
        return self._embedder.encode(
            list(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )

    async def embed(self, text: str) -> Any:
        loop = asyncio.get_running_loop()
        vectors = await loop.run_in_executor(self._thread, self.embed_sync, [text])
        return vectors[0]

    def choose_sync(self, text: str, candidates: Sequence[Candidate]) -> Match | None:
        """The best candidate that passes every stage, if any."""
        self._load()
        if self._threshold >= 1.0:  # a budget no threshold met: never a hit
            return None
        kept = [
            c for c in candidates if admits(text, c.question, c.similarity, self.min_similarity)
        ]
        if not kept:
            return None
        # The classifier's score is the mean of both orders, and the decision combines it with
        # the similarity (rising with both). The first order alone rules out a candidate that
        # no second score could lift to the threshold: most misses cost half.
        pairs = self._pairs
        first = pairs.scores([(text, c.question) for c in kept], symmetric=False)
        close = [
            i
            for i, p in enumerate(first)
            if not self.cutoff or pairs.decide((p + 1.0) / 2, kept[i].similarity) >= self._threshold
        ]
        if not close:
            return None
        second = pairs.scores([(kept[i].question, text) for i in close], symmetric=False)
        scores = {
            i: pairs.decide((first[i] + p) / 2, kept[i].similarity)
            for i, p in zip(close, second, strict=True)
        }
        best = max(scores, key=lambda i: scores[i])
        if scores[best] < self._threshold:
            return None
        return Match(kept[best], float(scores[best]))

    async def choose(self, text: str, candidates: Sequence[Candidate]) -> Match | None:
        if not candidates:
            return None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self.choose_sync, text, candidates)
