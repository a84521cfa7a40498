"""Scorers on text: exact match, contains, regex."""

from __future__ import annotations

import re
from dataclasses import dataclass

from stackyard.evals.dataset import Item
from stackyard.evals.scorers.base import Judge, Score, expected_text


def _norm(text: str, case: bool) -> str:
    text = " ".join(text.split())
    return text if case else text.lower()


@dataclass
class ExactMatch:
    name: str = "exact_match"
    threshold: float | None = None
    case_sensitive: bool = False

    async def score(self, output: str, item: Item, judge: Judge) -> Score:
        same = _norm(output, self.case_sensitive) == _norm(expected_text(item), self.case_sensitive)
        return Score(1.0 if same else 0.0)


@dataclass
class Contains:
    """The expected text (or each of a list of them) appears in the output."""

    name: str = "contains"
    threshold: float | None = None
    case_sensitive: bool = False

    async def score(self, output: str, item: Item, judge: Judge) -> Score:
        wanted = item.expected if isinstance(item.expected, list) else [expected_text(item)]
        text = _norm(output, self.case_sensitive)
        found = [w for w in wanted if _norm(str(w), self.case_sensitive) in text]
        missing = [str(w) for w in wanted if w not in found]
        return Score(len(found) / len(wanted), f"missing: {', '.join(missing)}" if missing else "")


@dataclass
class Regex:
    pattern: str = ""
    name: str = "regex"
    threshold: float | None = None

    def __post_init__(self) -> None:
        self._compiled = re.compile(self.pattern)

    async def score(self, output: str, item: Item, judge: Judge) -> Score:
        return Score(1.0 if self._compiled.search(output) else 0.0)
