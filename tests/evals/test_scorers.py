"""Every scorer, on outputs that should pass and fail."""

from __future__ import annotations

from typing import Any

import pytest

from stackyard.evals.dataset import Item
from stackyard.evals.scorers.registry import SCORERS, build


class FakeJudge:
    def __init__(self, reply: str = "GRADE: 4\nGood.") -> None:
        self.reply = reply
        self.asked: list[str] = []

    async def chat(self, model: str, messages: list[dict[str, Any]]) -> str:
        self.asked.append(messages[-1]["content"])
        return self.reply

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        return [[1.0, 0.0] if "cat" in t else [0.6, 0.8] for t in texts]


CASES: list[tuple[dict[str, Any], str, Any, float]] = [
    ({"type": "exact_match"}, "  Paris ", "paris", 1.0),
    ({"type": "exact_match", "case_sensitive": True}, "paris", "Paris", 0.0),
    ({"type": "f1"}, "The Eiffel Tower!", "eiffel tower", 1.0),
    ({"type": "f1"}, "in Paris France", "Paris", 0.5),
    ({"type": "f1"}, "London", "Paris", 0.0),
    ({"type": "contains"}, "The capital is Paris.", "paris", 1.0),
    ({"type": "contains"}, "Paris and Lyon", ["Paris", "Nice"], 0.5),
    ({"type": "regex", "pattern": r"^\d{4}-\d{2}-\d{2}$"}, "2024-05-01", None, 1.0),
    ({"type": "regex", "pattern": r"^\d{4}$"}, "May", None, 0.0),
    ({"type": "json_valid"}, '```json\n{"a": 1}\n```', None, 1.0),
    ({"type": "json_valid"}, "{a: 1}", None, 0.0),
    (
        {
            "type": "json_schema",
            "schema": {
                "type": "object",
                "required": ["a"],
                "properties": {"a": {"type": "integer"}},
            },
        },
        '{"a": 2}',
        None,
        1.0,
    ),
    (
        {
            "type": "json_schema",
            "schema": {
                "type": "object",
                "required": ["a"],
                "properties": {"a": {"type": "integer"}},
            },
        },
        '{"a": "2"}',
        None,
        0.0,
    ),
    ({"type": "numeric", "tolerance": 0.01}, "It is about 3.1416.", "3.14159", 1.0),
    ({"type": "numeric"}, "It is 4", "3", 0.0),
    ({"type": "embedding_similarity"}, "a cat", "the cat", 1.0),
    ({"type": "llm_judge", "model": "judge", "rubric": "Is it right?"}, "x", "y", 0.75),
]


@pytest.mark.parametrize(("spec", "output", "expected", "score"), CASES)
async def test_scorer(spec: dict[str, Any], output: str, expected: Any, score: float) -> None:
    scorer = build(spec)
    result = await scorer.score(output, Item("1", {"q": "?"}, expected), FakeJudge())
    assert result.value == pytest.approx(score)


def test_every_registered_scorer_is_tested() -> None:
    assert {spec["type"] for spec, *_ in CASES} == set(SCORERS)


async def test_the_judge_sees_the_rubric_and_a_reply_without_a_grade_scores_zero() -> None:
    judge = FakeJudge("I cannot say.")
    scorer = build({"type": "llm_judge", "model": "m", "rubric": "Be polite."})
    result = await scorer.score("hello", Item("1", "greet me", None), judge)
    assert result.value == 0.0
    assert "Be polite." in judge.asked[0]


def test_bad_scorer_specs() -> None:
    with pytest.raises(ValueError, match="unknown scorer 'psychic'"):
        build({"type": "psychic"})
    with pytest.raises(ValueError, match="scorer 'regex'"):
        build({"type": "regex", "colour": "red"})


async def test_numeric_with_a_non_numeric_expectation_says_so() -> None:
    result = await build({"type": "numeric"}).score("4", Item("1", "?", "four"), FakeJudge())
    assert result.value == 0.0
    assert "is not a number" in result.reason
