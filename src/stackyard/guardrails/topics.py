"""The topics rail: words a team never wants sent (a deny list, matched as whole words, any
case), and banned topics, each described by a few example sentences and matched by the
in-process embedding model's similarity to them (over windows of long messages). It reads the
request's user messages; the policy's action says what a finding does, as for injections."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stackyard.errors import APIError
from stackyard.guardrails.audit import decide
from stackyard.guardrails.injection import request_texts
from stackyard.guardrails.screen import WARNING

if TYPE_CHECKING:
    from stackyard.auth.admission import Ticket
    from stackyard.config.guardrails import TopicsPolicy

log = logging.getLogger("stackyard.guardrails")


#: Characters per window of a long text (about 250 word pieces), and the step between them.
WINDOW = 1000
STRIDE = 800


def windows(text: str) -> list[tuple[int, int]]:
    """(start, end) of each window; short texts are one window."""
    if len(text) <= WINDOW:
        return [(0, len(text))]
    spans = []
    start = 0
    while start < len(text):
        end = min(len(text), start + WINDOW)
        spans.append((start, end))
        if end == len(text):
            break
        start += STRIDE
    return spans


@dataclass(frozen=True, slots=True)
class TopicFinding:
    where: str
    detector: str  # "deny_word:WORD" or "topic:NAME"
    score: float


def deny_pattern(words: list[str]) -> re.Pattern[str] | None:
    if not words:
        return None
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


class TopicScreen:
    def __init__(self, embedding_model: str = "all-minilm-l6-v2") -> None:
        self.embedding_model = embedding_model
        self.embedder: Any = None
        self._examples: dict[tuple[str, ...], Any] = {}  # example sentences -> their vectors
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the embedding model (at start-up). Without it (no 'local' extra) only the deny
        lists apply, and a banned topic is reported once in the log."""
        try:
            from stackyard.engine.loading import load_embedder
            from stackyard.engine.sources import resolve

            self.embedder = load_embedder(resolve(self.embedding_model, "embeddings"), "cpu")
        except Exception as exc:
            log.warning("banned topics are not checked (no embedding model): %s", exc)

    def _encode(self, texts: list[str]) -> Any:
        with self._lock:
            return self.embedder.encode(
                texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )

    def _topic_scores(
        self, items: list[tuple[str, str]], topics: dict[str, list[str]]
    ) -> list[tuple[str, str, float]]:
        """(where, topic, best similarity) for every text and topic."""
        import numpy as np

        spans = [windows(text) for _, text in items]
        flat = [text[a:b] for (_, text), s in zip(items, spans, strict=True) for a, b in s]
        vectors = self._encode(flat)
        out = []
        for name, examples in topics.items():
            key = tuple(examples)
            known = self._examples.get(key)
            if known is None:
                known = self._examples[key] = self._encode(list(examples))
            similarity = vectors @ known.T
            at = 0
            for (where, _), s in zip(items, spans, strict=True):
                best = float(np.max(similarity[at : at + len(s)]))
                out.append((where, name, best))
                at += len(s)
        return out

    def scan(self, items: list[tuple[str, str]], policy: TopicsPolicy) -> list[TopicFinding]:
        found = []
        pattern = deny_pattern(policy.deny_words)
        if pattern is not None:
            for where, text in items:
                for match in pattern.finditer(text):
                    found.append(TopicFinding(where, f"deny_word:{match[0].lower()}", 1.0))
        if policy.banned and self.embedder is not None and items:
            for where, name, score in self._topic_scores(items, policy.banned):
                if score >= policy.threshold:
                    found.append(TopicFinding(where, f"topic:{name}", round(score, 4)))
        return found

    async def check(
        self,
        body: dict[str, Any],
        ticket: Ticket,
        policy: TopicsPolicy,
        texts: Callable[[dict[str, Any], tuple[str, ...]], list[tuple[str, str]]] = request_texts,
    ) -> None:
        """Screen the user's texts (``texts`` reads the request's shape: chat by default)."""
        if policy.action == "off":
            return
        items = texts(body, ("user",))
        if not items:
            return
        found = await asyncio.to_thread(self.scan, items, policy)
        if not found:
            return
        detectors = sorted({f.detector for f in found})
        decide(
            ticket,
            "topics",
            policy.action,
            {"detectors": detectors, "where": sorted({f.where for f in found})},
        )
        if ticket.trace is not None:
            ticket.trace.root.attributes["stackyard.guardrails.topics"] = detectors
        first = found[0]
        if policy.action == "block":
            raise APIError(
                400,
                f"The request is about something this gateway does not send ({first.detector}, "
                f"in {first.where}). If this is a mistake, ask an administrator about "
                "guardrails.topics.",
                type="invalid_request_error",
                param=first.where,
                code="topic_not_allowed",
            )
        if policy.action == "warn":
            warning = f"{first.detector} in {first.where}".encode("latin-1", "replace")
            ticket.headers = [*ticket.headers, (WARNING, warning)]
        log.info("topics (%s): %s in %s", policy.action, first.detector, first.where)
