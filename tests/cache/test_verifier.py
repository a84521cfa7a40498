"""The verifier rejects near-misses and lets paraphrases through."""

from __future__ import annotations

import pytest

from stackyard.cache.verifier import features, same_question


@pytest.mark.parametrize(
    ("first", "second", "reason"),
    [
        ("What is 2 + 2?", "What is 2 + 3?", "different numbers"),
        (
            "Best laptop under 500 dollars?",
            "Best laptop under five hundred dollars?",
            "different numbers",
        ),
        ("Is coffee bad for you?", "Is coffee not bad for you?", "one is negated"),
        ("Why can't I sleep?", "Why can I sleep?", "one is negated"),
        ("Who founded Microsoft?", "Who founded Apple?", "different names"),
        ("Why is the sky blue?", "Where is the sky blue?", "a different kind of question"),
        (
            "How many legs does a spider have?",
            "How do spiders walk?",
            "a different kind of question",
        ),
    ],
)
def test_near_misses_are_rejected(first: str, second: str, reason: str) -> None:
    assert same_question(first, second) == reason


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("How do I learn Python fast?", "What is the fastest way to learn Python?"),
        ("Can I learn French in 3 months?", "How can I learn French in 3 months?"),
        ("Why is Donald Trump so popular?", "Why do people like Trump?"),
        ("What are good tips for self study?", "What are the smart tips for self studying?"),
    ],
)
def test_paraphrases_pass(first: str, second: str) -> None:
    assert same_question(first, second) is None


def test_features() -> None:
    found = features("Didn't NASA launch 3 rockets in May?")
    assert found.negated
    assert found.numbers == {"3"}
    assert found.entities == {"nasa", "may"}
    assert found.kind == "yesno"
