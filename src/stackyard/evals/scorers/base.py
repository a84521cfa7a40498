"""What a scorer is: given an output and its item, a score in [0, 1] (and a reason)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from stackyard.evals.dataset import Item


@dataclass(frozen=True)
class Score:
    value: float
    reason: str = ""


class Judge(Protocol):
    """What model-backed scorers call (the runner provides it, through the gateway)."""

    async def chat(self, model: str, messages: list[dict[str, Any]]) -> str: ...

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]: ...


class Scorer(Protocol):
    name: str
    #: The lowest mean score that passes (None: reported, never gating).
    threshold: float | None

    async def score(self, output: str, item: Item, judge: Judge) -> Score: ...


def expected_text(item: Item) -> str:
    expected = item.expected
    if expected is None:
        raise ValueError(f"item {item.id} has no 'expected' output to compare with")
    return expected if isinstance(expected, str) else str(expected)
