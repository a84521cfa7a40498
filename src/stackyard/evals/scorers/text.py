"""Scorers on text: exact match, token F1, contains, regex."""

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


def squad_words(text: str) -> list[str]:
    """SQuAD's normalisation: lower case, no punctuation, no articles."""
    text = re.sub(r"[^\w\s]", " ", text.lower())
    return [w for w in text.split() if w not in ("a", "an", "the")]


def token_f1(output: str, expected: str) -> float:
    got, want = squad_words(output), squad_words(expected)
    if not got or not want:
        return float(got == want)
    common = sum(min(got.count(w), want.count(w)) for w in set(got) & set(want))
    if not common:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


@dataclass
class TokenF1:
    """Word overlap with the expected answer, as SQuAD scores it (partial credit)."""

    name: str = "f1"
    threshold: float | None = None

    async def score(self, output: str, item: Item, judge: Judge) -> Score:
        return Score(token_f1(output, expected_text(item)))


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
