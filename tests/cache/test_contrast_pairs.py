"""Generated training pairs: each contrast edit changes what is asked (and the contrast guard
refuses the result), each paraphrase edit keeps it (and the guard lets it through)."""

from __future__ import annotations

import random

import pytest

from stackyard.cache import contrast_pairs as pairs
from stackyard.cache.contrast import guard
from stackyard.cache.semantic import rejects

RNG = random.Random(0)


@pytest.mark.parametrize(
    ("edit", "question"),
    [
        (pairs.antonym_or_sibling, "When does the last train depart?"),
        (pairs.number, "Is 17 a prime number?"),
        (pairs.negation, "Why is the sky blue?"),
        (pairs.negation, "Why doesn't my phone charge?"),
        (pairs.role, "How do I get from Oslo to Bergen?"),
        (pairs.role, "Is tea healthier than coffee?"),
    ],
)
def test_contrast_edits_change_the_question(edit: pairs.Contrast, question: str) -> None:
    edited = edit(question, RNG, ["Lisbon"])
    assert edited is not None
    assert edited != question
    assert rejects(question, edited)


def test_a_name_is_swapped_for_another() -> None:
    pairs.COMMON = frozenset({"does", "have", "a", "beach"})
    assert pairs.name("Does Porto have a beach?", RNG, ["Lisbon"]) == "Does Lisbon have a beach?"
    assert pairs.name("Does it have a beach?", RNG, ["Lisbon"]) is None


@pytest.mark.parametrize(
    ("change", "question", "expected"),
    [
        (pairs.contraction, "I do not know my password.", "I don't know my password."),
        (pairs.function_words, "How do I learn Python?", "How can I learn Python?"),
        (pairs.synonym, "Where can I buy a ticket?", "Where can I purchase a ticket?"),
        (
            pairs.reorder,
            "How do I reset my password if I forgot it?",
            "If I forgot it, how do I reset my password?",
        ),
    ],
)
def test_paraphrase_edits_keep_the_question(
    change: pairs.Paraphrase, question: str, expected: str
) -> None:
    assert change(question, RNG) == expected
    assert guard().refusal(question, expected) is None


def test_generation_labels_and_draws_only_from_the_given_questions() -> None:
    questions = [
        "How do I learn Python fast?",
        "Why is the sky blue?",
        "Is 17 a prime number?",
        "Where can I buy a ticket?",
        "How do I reset my password if I forgot it?",
    ]
    found = pairs.generate(questions, 3, random.Random(1))
    assert sum(same for _, _, same in found) == 3
    assert sum(not same for _, _, same in found) == 3
    assert all(a in questions and b != a for a, b, _ in found)
