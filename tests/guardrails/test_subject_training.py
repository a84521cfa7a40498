"""The sentence gate trained through layers of its own: what training read its threshold on is
what the running tagger's gate reads, once the layers have gone through their 8-bit file; the
model's own layers are untouched; a gate file that names layers it cannot load says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackyard.guardrails import ner, ner_training, own_layers, subject_training, subjects
from stackyard.guardrails.reading import deeper, read

pytestmark = pytest.mark.slow

PUBLIC = [
    "Why did the Roman Senate send Julius Caesar to govern Gaul in 58 BC?",
    "Which club did Diego Maradona lead to the Serie A title with Napoli?",
    "How tall is the Eiffel Tower, finished in Paris for the 1889 World's Fair?",
    "When did Nelson Mandela become president of South Africa after apartheid?",
    "What did Marie Curie discover at the Sorbonne with Pierre Curie?",
    "Why did the Ming dynasty move its capital from Nanjing to Beijing?",
    "Which album did the Beatles record at Abbey Road Studios in London?",
]
PRIVATE = [
    ("My neighbour Tomasz Wrona moved to Gdynia with his wife last week.", "Tomasz Wrona"),
    ("Please send the lease to my tenant Ama Owusu, who lives in Kumasi.", "Ama Owusu"),
    ("Our nanny Lucía Ferreyra starts on Monday at our flat in Rosario.", "Lucía Ferreyra"),
    ("My cousin Dariusz Nowak works at a garage near Lodz and hates it.", "Dariusz Nowak"),
    ("Remind my dad, Kwame Boateng, that his dentist moved to Tema.", "Kwame Boateng"),
    ("Can you write a birthday card for my colleague Priya Raman in Pune?", "Priya Raman"),
    ("My landlord Hassan Karimi keeps texting me from his office in Shiraz.", "Hassan Karimi"),
]


def record(text: str, index: int, name: str | None = None) -> dict[str, Any]:
    """A record as training reads one: a private one with its person's name labelled."""
    spans = []
    if name is not None:
        start = text.index(name)
        spans = [
            {"entity_type": "PERSON", "start_position": start, "end_position": start + len(name)}
        ]
    return {
        "full_text": text,
        "spans": spans,
        "template_id": index,
        "kind": "public" if name is None else "private",
    }


def test_the_running_gate_reads_as_training_did(
    tmp_path: Path, embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(subject_training, "EPOCHS", 2)
    records = [record(t, i) for i, t in enumerate(PUBLIC)]
    records += [record(t, 100 + i, name) for i, (t, name) in enumerate(PRIVATE)]
    labels = [
        torch.tensor(ner_training.piece_labels(r, read(embedder, r["full_text"]).offsets))
        for r in records
    ]
    data = subject_training.examples(records, labels, embedder)
    assert len(data) == len(records)  # each private one holds its labelled name
    train, held = subject_training.split(data)
    assert {e.group for e in held} == {0, 105}  # whole templates, every seventh
    assert not {e.group for e in held} & {e.group for e in train}
    depth = ner_training.GATE_DEPTH
    before = [p.detach().clone() for p in embedder[0].auto_model.encoder.layer[2].parameters()]
    initial = (torch.zeros(2 * 384), 0.0)
    blocks, w, b = subject_training.fitted(embedder, train, initial, depth)
    assert not torch.equal(w, initial[0])  # it learnt
    own = embedder[0].auto_model.encoder.layer[2].parameters()
    assert all(torch.equal(a, p) for a, p in zip(before, own, strict=True))  # untouched

    layers_file = tmp_path / subjects.LAYERS.name
    own_layers.save(blocks, embedder, layers_file, {}, ner.LAYER, depth)
    loaded = own_layers.load(embedder, layers_file, ner.LAYER, depth)
    cut, check = subject_training.threshold(embedder, loaded, w, b, held, depth, 0.01)
    assert check["validation_sentences"] == 2
    # read on the held-out private sentence (one here), through the layers as loaded
    private = [e for e in held if e.sentences[0][1] == 0.0]
    scores = subject_training.probabilities(embedder, loaded, w, b, private[0], depth)
    assert cut == pytest.approx(float(scores[0]))
    assert check["validation_private_passed"] == 1.0  # at or above the threshold: one of one
    gate_file = tmp_path / subjects.WEIGHTS.name
    ner_training.save_gate(gate_file, w, b, cut, layers_file.name)

    gate = subjects.SubjectGate(gate_file, embedder)
    assert gate.blocks is not None
    assert gate.threshold == cut
    assert gate.blocks[0] is not embedder[0].auto_model.encoder.layer[2]
    for example in held:
        reading = read(embedder, example.text)
        layers = [reading.states, deeper(embedder, reading, depth, gate.blocks)]
        expected = subject_training.probabilities(embedder, loaded, w, b, example, depth)
        for number, (_, _, (start, end)) in enumerate(example.sentences):
            row = subjects.pooled(layers, reading.offsets, start, end)
            assert gate.probability(row) == pytest.approx(float(expected[number]), abs=1e-6)
    # its layers read differently from the model's own, which a plain deeper read keeps
    reading = read(embedder, PUBLIC[0])
    mine = deeper(embedder, reading, depth, gate.blocks)
    model = deeper(embedder, reading, depth)
    assert not torch.allclose(mine, model, atol=1e-3)
    assert torch.allclose(model, deeper(embedder, reading, depth), atol=0)


def test_a_gate_file_naming_missing_layers_says_so(tmp_path: Path, embedder: Any) -> None:
    import torch

    gate_file = tmp_path / subjects.WEIGHTS.name
    ner_training.save_gate(gate_file, torch.zeros(768), 0.0, 0.5, "nowhere.safetensors")
    with pytest.raises(FileNotFoundError, match=r"nowhere\.safetensors"):
        subjects.SubjectGate(gate_file, embedder)
    with pytest.raises(ValueError, match="pass the embedder"):
        subjects.SubjectGate(gate_file)
    ner_training.save_gate(gate_file, torch.zeros(768), 0.0, 0.5)  # the model's own layers
    assert subjects.SubjectGate(gate_file, embedder).blocks is None
