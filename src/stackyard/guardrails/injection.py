"""Prompt injection and jailbreak detection, offline: phrases that give the game away
(heuristics), and a small classifier on the in-process embedding model.

The classifier is a logistic regression over a text's windows (256 word pieces each,
overlapping: :mod:`stackyard.guardrails.reading`), embedded with all-MiniLM-L6-v2: the mean
and the element-wise maximum of the window vectors, and the length. The same read gives the
PII entity tagger what it needs, so a request screened for both runs the model once. The
weights (``injection.json`` beside this module, 6 KB) were trained by ``make
guardrails-injection`` on the llm-warden training split; the file also holds the threshold
that kept false positives at 1% in cross-validation.

It scans what can carry an injection: user messages, tool results, and retrieved passages
(indirect injection). No rail calls an LLM.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackyard.guardrails.reading import Reading, read

WEIGHTS = Path(__file__).with_name("injection.json")
#: Phrases that ask a model to drop its instructions or its rules, by name.
HEURISTICS: dict[str, re.Pattern[str]] = {
    "ignore_instructions": re.compile(
        r"\b(ignore|disregard|forget|override|bypass)\s+(\w+\s+){0,2}(previous|prior|above|"
        r"earlier|preceding|all|your|system)\s+(\w+\s+){0,2}(instructions?|prompts?|rules|"
        r"directives|directions|guidelines|programming|constraints)\b",
        re.IGNORECASE,
    ),
    "reveal_prompt": re.compile(
        r"\b(reveal|print|show|output|repeat|leak|tell me)\b[^.\n]{0,40}\b(system prompt|"
        r"initial (prompt|instructions)|hidden (prompt|instructions)|your instructions)\b",
        re.IGNORECASE,
    ),
    "unrestricted_persona": re.compile(
        r"(?-i:\bDAN\b)|\bdo anything now\b|\bdeveloper mode (enabled|output|on)\b|"
        r"\b(no|without|free (from|of)) (any )?(ethical|moral|content) (guidelines|constraints|"
        r"restrictions|boundaries|policies|filters)\b",
        re.IGNORECASE,
    ),
    "new_instructions": re.compile(
        r"(^|\n|[.!?]\s)\s*(new|updated|real) (system )?instructions?\s*:|\[(system|admin)\]\s*:|"
        r"<\|?(system|im_start)\|?>",
        re.IGNORECASE,
    ),
}


@dataclass(frozen=True, slots=True)
class Finding:
    where: str  # messages[2].content, rag passage [1] ...
    detector: str  # heuristic:<name> or classifier
    score: float
    start: int
    end: int


def heuristics(text: str) -> list[tuple[str, int, int]]:
    found = []
    for name, pattern in HEURISTICS.items():
        match = pattern.search(text)
        if match:
            found.append((name, match.start(), match.end()))
    return found


def features(vectors: Any, length: int) -> Any:
    """One row of the classifier's input: mean and maximum of the windows' vectors, and the
    text's length (log characters, scaled)."""
    import numpy as np

    return np.concatenate([vectors.mean(0), vectors.max(0), [math.log1p(length) / 10]])


class InjectionDetector:
    def __init__(self, embedder: Any | None, weights: Path = WEIGHTS) -> None:
        """``embedder`` None: heuristics only (the 'local' extra is not installed)."""
        self.embedder = embedder
        data = None
        self.weights: Any = None
        if embedder is not None and weights.exists():
            import numpy as np

            data = json.loads(weights.read_text())
            self.weights = np.asarray(data["weights"], dtype=np.float32)
        self.bias = float(data["bias"]) if data else 0.0
        self.threshold = float(data["threshold"]) if data else 1.0
        self.info: dict[str, Any] = (data or {}).get("meta", {})
        self._lock = threading.Lock()

    @property
    def classifier(self) -> bool:
        return self.embedder is not None and self.weights is not None

    def probabilities(
        self, texts: Sequence[str], keep: dict[str, Reading] | None = None
    ) -> list[float]:
        """The classifier's probability that each text is an injection or a jailbreak;
        ``keep`` receives each text's reading (for the entity tagger)."""
        import numpy as np

        if not self.classifier or not texts:
            return [0.0] * len(texts)
        rows = []
        for text in texts:
            with self._lock:
                reading = read(self.embedder, text, whole=True)
            if keep is not None:
                keep[text] = reading
            rows.append(features(reading.vectors, len(text)))
        assert self.weights is not None
        logits = np.stack(rows) @ self.weights + self.bias
        return [float(1 / (1 + math.exp(-x))) for x in logits]

    def scan(
        self, items: Sequence[tuple[str, str]], keep: dict[str, Reading] | None = None
    ) -> list[Finding]:
        """Findings for (where, text) pairs: every heuristic match, and each text the
        classifier scores at or above its threshold. ``keep``: see :meth:`probabilities`."""
        found = []
        for where, text in items:
            for name, start, end in heuristics(text):
                found.append(Finding(where, f"heuristic:{name}", 1.0, start, end))
        texts = [t for _, t in items]
        for (where, text), p in zip(items, self.probabilities(texts, keep), strict=True):
            if p >= self.threshold:
                found.append(Finding(where, "classifier", round(p, 4), 0, len(text)))
        return found


def request_texts(
    body: dict[str, Any], roles: tuple[str, ...] = ("user", "tool")
) -> list[tuple[str, str]]:
    """The texts of a chat request's messages from ``roles`` (by default what the injection
    scan reads: user messages and tool results), text parts included, by where they are."""
    items = []
    for index, message in enumerate(body.get("messages") or ()):
        if not isinstance(message, dict) or message.get("role") not in roles:
            continue
        content = message.get("content")
        if isinstance(content, str):
            items.append((f"messages[{index}].content", content))
        elif isinstance(content, list):
            for part_index, part in enumerate(content):
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    items.append((f"messages[{index}].content[{part_index}]", part["text"]))
    return items
