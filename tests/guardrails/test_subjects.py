"""The sentence gate: sentences split where they end (not after a title or an initial), the
gate's training on examples it can and cannot separate, and the shipped gate on sentences about
public subjects and about private people, alone and side by side in one text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from stackyard.guardrails import ner_training, subjects
from stackyard.guardrails.ner import EntityTagger
from tests.guardrails.test_ner import finds
from tests.guardrails.test_ner import tagger as tagger  # the module's fixture


def pieces(text: str) -> list[str]:
    return [text[a:b] for a, b in subjects.sentences(text)]


def test_sentences_end_at_their_punctuation_or_a_line_break() -> None:
    text = (
        'Dr. Naomi Friedlander met J. S. Bach\'s heir. "Who?" she asked!\nNext line e.g. this one'
    )
    assert pieces(text) == [
        "Dr. Naomi Friedlander met J. S. Bach's heir. ",
        '"Who?" ',
        "she asked!\n",
        "Next line e.g. this one",
    ]
    assert "".join(pieces(text)) == text
    assert pieces("One. Two") == ["One. ", "Two"]
    assert pieces("") == []


def test_the_gate_is_trained_and_its_threshold_lets_the_set_share_of_private_pass() -> None:
    import torch

    generator = torch.Generator().manual_seed(0)
    public = torch.randn(400, 8, generator=generator, dtype=torch.float64) + 1.0
    private = torch.randn(400, 8, generator=generator, dtype=torch.float64) - 1.0
    x = torch.cat([public, private])
    y = torch.cat([torch.ones(400), torch.zeros(400)]).double()
    groups = list(range(800))
    w, b, _, check = ner_training.trained_gate(x, y, groups)
    assert check["private_passed"] <= ner_training.GATE_PRIVATE_PASSED + 1 / 400
    assert check["public_passed"] > 0.5  # well apart: most public ones pass
    scores = torch.sigmoid(x.float() @ w + b)
    assert float(scores[:400].mean()) > float(scores[400:].mean())


def test_the_threshold_is_read_off_templates_the_gate_never_read() -> None:
    """Forty templates, each its own point in space with its own label: a gate that read a
    template's sentences knows its label, one that did not cannot. Scored out of fold by
    template, little public passes at the threshold; split at random, most would."""
    import torch

    generator = torch.Generator().manual_seed(1)
    centres = torch.randn(40, 64, generator=generator, dtype=torch.float64) * 3
    groups = [g for g in range(40) for _ in range(20)]
    x = centres[groups] + 0.1 * torch.randn(800, 64, generator=generator, dtype=torch.float64)
    y = torch.tensor([float(g % 2) for g in groups], dtype=torch.float64)
    _, _, _, by_template = ner_training.trained_gate(x, y, groups)
    _, _, _, at_random = ner_training.trained_gate(x, y, list(range(800)))
    assert at_random["public_passed"] > 0.9
    assert by_template["public_passed"] < 0.5


@pytest.mark.parametrize(
    "text",
    [
        "In which city did Frederick Douglass publish The North Star?",
        "Why did the Ottoman Empire move its capital from Bursa to Edirne?",
        "Which river flows through Budapest, the capital of Hungary?",
        "Why did the Dutch East India Company trade through Nagasaki?",
    ],
)
def test_a_sentence_about_public_subjects_keeps_its_names_and_places(
    tagger: EntityTagger,
    text: str,
) -> None:
    assert tagger.gate is not None
    assert finds(tagger, text) == []
    every = {f.kind for f in tagger.find(text, public_names=False)}
    assert every & subjects.KINDS, every  # the tagger alone finds them


@pytest.mark.parametrize(
    "text",
    [
        "Look up John Smith",  # too few words to read whose name it is
        '{"q": "find John Smith"}',
        "Who did Marta Kowalczyk marry in 2019 in Gdynia?",  # a private person, asked as trivia
        "Where does Jonas Eriksen work now?",
    ],
)
def test_private_people_in_short_or_trivia_like_sentences_are_redacted(
    tagger: EntityTagger,
    text: str,
) -> None:
    assert any(kind == "PERSON" for kind, _ in finds(tagger, text)), text


def test_a_sentence_needs_words_besides_its_finds_to_be_read_at_all() -> None:
    import torch

    gate = subjects.SubjectGate.__new__(subjects.SubjectGate)
    gate.w, gate.b, gate.threshold = torch.zeros(4), 10.0, 0.5  # reads every sentence public
    gate.depth = None
    text = "Ask Ana Lima. Where did the long road to Rome start then?"
    offsets = [(m.start(), m.end()) for m in subjects.WORD.finditer(text)]
    states = torch.zeros(len(offsets), 4)
    assert gate.public(text, offsets, states, [(4, 12), (41, 45)]) == [False, True]


def test_the_deeper_states_are_asked_for_once_and_only_when_a_sentence_is_read() -> None:
    import torch

    gate = subjects.SubjectGate.__new__(subjects.SubjectGate)
    # public only where the deeper half of the input says so
    gate.w, gate.b, gate.threshold, gate.depth = torch.tensor([0.0, 0.0, 20.0, 0.0]), -10.0, 0.5, 4
    asked: list[int] = []

    def deep(value: float) -> Callable[[], Any]:
        def run() -> Any:
            asked.append(1)
            return torch.full((len(offsets), 2), value)

        return run

    text = "Ask Ana Lima. Where did the long road to Rome start then? And Milan, in the end?"
    offsets = [(m.start(), m.end()) for m in subjects.WORD.finditer(text)]
    states = torch.zeros(len(offsets), 2)
    short = [(4, 12)]
    assert gate.public(text, offsets, states, short, deep(1.0)) == [False]
    assert asked == []  # too few words to read: the deeper layers never ran
    found = [(4, 12), (41, 45), (62, 67)]
    assert gate.public(text, offsets, states, found, deep(1.0)) == [False, True, True]
    assert asked == [1]
    assert gate.public(text, offsets, states, found, deep(0.0)) == [False, False, False]
    with pytest.raises(ValueError, match="pass deep"):
        gate.public(text, offsets, states, found)


def test_a_private_sentence_beside_a_public_one_is_still_redacted(
    tagger: EntityTagger,
) -> None:
    """Each sentence is gated on its own: the public question passes alone, and the private
    sentence after it keeps its finds. (Its neighbour may keep the question's finds too: the
    model's read spans both sentences.)"""
    question = "Why did the Ottoman Empire move its capital from Bursa to Edirne?"
    assert finds(tagger, question) == []
    text = (
        f"{question} My landlord Pedro Alvarez lives at 14 Calle Mayor, Madrid, and works for "
        "Acme Corp."
    )
    found = finds(tagger, text)
    assert ("PERSON", "Pedro Alvarez") in found
    assert any(kind == "ADDRESS" and "14 Calle" in value for kind, value in found), found
    assert ("ORGANIZATION", "Acme Corp") in found


def test_the_shipped_gate_runs_the_deeper_layers_once_and_only_where_a_sentence_is_read(
    tagger: EntityTagger, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stackyard.guardrails import ner, reading

    assert tagger.gate is not None
    assert tagger.gate.depth == ner_training.GATE_DEPTH
    calls: list[int] = []
    run = reading.deeper

    def counted(embedder: Any, reading: Any, depth: int, blocks: Any = None) -> Any:
        calls.append(depth)
        return run(embedder, reading, depth, blocks)

    monkeypatch.setattr(ner, "deeper", counted)
    tagger.find("Please reset the router and send the invoice by Friday.")
    tagger.find("Look up John Smith")  # a find, but too few words to read the sentence
    assert calls == []
    text = (
        "Why did the Ottoman Empire move its capital from Bursa to Edirne? "
        "Which river flows through Budapest, the capital of Hungary?"
    )
    assert [f.kind for f in tagger.find(text) if f.kind in subjects.KINDS] == []
    assert calls == [ner_training.GATE_DEPTH]  # two sentences read, one deeper read
