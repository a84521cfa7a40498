"""A dataset checked before any training: every line parsed and tokenized with the base
model's template, problems listed per line, duplicates found, tokens counted, the time
estimated; then split into training and validation sets (by seed)."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from stackyard.finetune.data import DataError, Example, read_jsonl
from stackyard.finetune.tokens import ChatTokenizer, Tokenized

#: Training throughput assumed for an estimate before any step has run (tokens per second;
#: SmolLM2-135M with LoRA on two CPU cores). A job reports the measured rate as it runs.
ASSUMED_TOKENS_PER_SECOND = {"cpu": 400.0, "cuda": 20_000.0}


@dataclass
class Prepared:
    examples: list[Example] = field(default_factory=list)
    tokenized: list[Tokenized] = field(default_factory=list)
    errors: list[DataError] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)  # lines repeating an earlier one

    @property
    def tokens(self) -> int:
        return sum(len(t) for t in self.tokenized)

    @property
    def trained_tokens(self) -> int:
        return sum(t.trained for t in self.tokenized)

    def report(self, *, epochs: int = 1, device: str = "cpu") -> dict[str, Any]:
        rate = ASSUMED_TOKENS_PER_SECOND.get(device, ASSUMED_TOKENS_PER_SECOND["cpu"])
        longest = max((len(t) for t in self.tokenized), default=0)
        return {
            "examples": len(self.examples),
            "errors": [{"line": e.line, "message": e.reason} for e in self.errors],
            "duplicates": self.duplicates,
            "tokens": self.tokens,
            "trained_tokens": self.trained_tokens,
            "longest": longest,
            "epochs": epochs,
            "billed_tokens": self.tokens * epochs,
            "estimated_cost_usd": 0.0,  # in-process training: no per-token price
            "estimated_seconds": round(self.tokens * epochs / rate, 1),
        }


def prepare(lines: Iterable[str | bytes], tokenizer: ChatTokenizer) -> Prepared:
    prepared = Prepared()
    seen: dict[bytes, int] = {}
    for item in read_jsonl(lines):
        if isinstance(item, DataError):
            prepared.errors.append(item)
            continue
        key = item.key()
        if key in seen:
            prepared.duplicates.append(item.line)
            continue
        seen[key] = item.line
        try:
            tokenized = tokenizer.encode(item)
        except DataError as exc:
            prepared.errors.append(exc)
            continue
        prepared.examples.append(item)
        prepared.tokenized.append(tokenized)
    return prepared


def split(prepared: Prepared, share: float, seed: int) -> tuple[Prepared, Prepared]:
    """Hold out ``share`` of the examples (at least one when there are two or more)."""
    order = list(range(len(prepared.examples)))
    random.Random(seed).shuffle(order)
    count = round(len(order) * share)
    if share > 0 and count == 0 and len(order) >= 2:
        count = 1
    held, kept = sorted(order[:count]), sorted(order[count:])

    def pick(indices: list[int]) -> Prepared:
        return Prepared(
            [prepared.examples[i] for i in indices], [prepared.tokenized[i] for i in indices]
        )

    return pick(kept), pick(held)
