"""The semantic tier's partition and eligibility: everything but the last user turn's text
separates entries; hot sampling, non-text turns and tool calls stay in the exact tier; the
choice among candidates is the best decision on both orders' scores and the similarity."""

from __future__ import annotations

from typing import Any

import pytest

from stackyard.cache.entry import Candidate
from stackyard.cache.semantic import (
    Question,
    Semantic,
    calls_tools,
    question,
    question_text,
    rejects,
)
from tests.conftest import need_module, unavailable


def body(text: str = "How do I reset my password?", **extra: Any) -> dict[str, Any]:
    return {
        "model": "m",
        "temperature": 0,
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": text},
        ],
        **extra,
    }


def asked(request: dict[str, Any], tenant: str = "team:1", model: str = "m=openai/x") -> Question:
    found = question(tenant, model, "default", request, 0.0)
    assert isinstance(found, Question), found
    return found


def test_only_the_last_user_text_is_left_out_of_the_partition() -> None:
    one = asked(body("How do I reset my password?"))
    two = asked(body("What is the way to change a forgotten password?"))
    assert one.partition == two.partition
    assert one.text == "How do I reset my password?"


@pytest.mark.parametrize(
    "change",
    [
        {"tenant": "team:2"},
        {"model": "m=openai/y"},
        {"namespace": "faq"},
        {"system": "You are terse."},
        {"earlier": True},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
        {"response_format": {"type": "json_object"}},
        {"max_tokens": 5},
    ],
)
def test_every_other_difference_is_another_partition(change: dict[str, Any]) -> None:
    base = asked(body())
    request = body()
    if "system" in change:
        request["messages"][0]["content"] = change["system"]
    elif "earlier" in change:
        request["messages"][1:1] = [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
        ]
    else:
        request.update(
            {k: v for k, v in change.items() if k not in {"tenant", "model", "namespace"}}
        )
    found = question(
        change.get("tenant", "team:1"),
        change.get("model", "m=openai/x"),
        change.get("namespace", "default"),
        request,
        0.0,
    )
    assert isinstance(found, Question)
    assert found.partition != base.partition


def test_hot_sampling_and_other_turns_stay_exact() -> None:
    assert "temperature" in str(question("t", "m", "d", body(temperature=0.7), 0.0))
    without = body()
    del without["temperature"]  # OpenAI's default is 1
    assert isinstance(question("t", "m", "d", without, 0.0), str)
    assert isinstance(question("t", "m", "d", without, 1.0), Question)
    tool_turn = body()
    tool_turn["messages"].append({"role": "tool", "tool_call_id": "c1", "content": "42"})
    assert isinstance(question("t", "m", "d", tool_turn, 0.0), str)
    assert isinstance(question("t", "m", "d", body(n=2), 0.0), str)


def test_question_text() -> None:
    assert question_text({"role": "user", "content": "hi"}) == "hi"
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert question_text({"role": "user", "content": parts}) == "a\nb"
    image = [{"type": "image_url", "image_url": {"url": "data:,"}}]
    assert question_text({"role": "user", "content": image}) is None
    assert question_text({"role": "assistant", "content": "hi"}) is None


def test_answers_that_call_tools_are_recognised() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    assert calls_tools({"choices": [{"message": {"tool_calls": [call]}}]}, None)
    assert calls_tools(None, [{"choices": [{"delta": {"tool_calls": [call]}}]}])
    assert not calls_tools({"choices": [{"message": {"content": "x"}}]}, [{"choices": []}])


def test_numbers_and_negation_are_rejected_outright() -> None:
    assert rejects("Is 7 a prime number?", "Is 9 a prime number?")
    assert rejects("Can I eat eggs when pregnant?", "Can I not eat eggs when pregnant?")
    assert not rejects("How do I learn Python?", "What is the best way to learn Python?")


def test_the_choice_is_the_best_mean_of_both_orders() -> None:
    need_module("torch")
    tier = Semantic()
    if tier.warm():
        unavailable(tier.problem or "no models")
    text = "How can I lose weight fast?"
    questions = [
        "What is the quickest way to lose weight?",
        "How can I lose weight quickly?",
        "How do I gain weight fast?",
    ]
    candidates = [Candidate(f"k{i}", 0.9, q) for i, q in enumerate(questions)]
    # The decision: both orders' mean, combined with the similarity (0.9 for each here).
    both = [tier._pairs.decide(s, 0.9) for s in tier._pairs.scores([(text, q) for q in questions])]
    best = max(range(len(both)), key=both.__getitem__)
    # Around every score: the first order alone may rule a candidate out, never wrongly.
    for threshold in sorted({0.0, 1.0, *(s + d for s in both for d in (-1e-4, 1e-4))}):
        tier._threshold = threshold
        tier.cutoff = False
        scored = tier.choose_sync(text, candidates)  # both orders of every candidate
        tier.cutoff = True
        match = tier.choose_sync(text, candidates)
        assert (match and match.candidate) == (scored and scored.candidate)
        if both[best] >= threshold:
            assert match is not None
            assert match.candidate.key == f"k{best}"
            assert match.score == pytest.approx(both[best], abs=1e-5)
        else:
            assert match is None


def test_a_budget_no_threshold_met_never_hits(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_module("torch")
    from stackyard.cache.pairs import PairModel

    monkeypatch.setattr(PairModel, "threshold", lambda self, budget: 1.0)  # none met it
    tier = Semantic(error_budget=0.01)
    with caplog.at_level("WARNING", logger="stackyard.cache"):
        if tier.warm():
            unavailable(tier.problem or "no models")
    assert tier.threshold == 1.0
    assert "will not hit" in caplog.text
    same = "How can I lose weight fast?"
    assert tier.choose_sync(same, [Candidate("k", 1.0, same)]) is None
    tier._threshold = 0.5  # the same question, with a budget that was met
    match = tier.choose_sync(same, [Candidate("k", 1.0, same)])
    assert match is not None
