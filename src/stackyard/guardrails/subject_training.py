"""Fine-tune the PII sentence gate with its own deeper layers (issue 32): part of ``make
guardrails-ner`` (:mod:`stackyard.guardrails.ner_training`).

The gate (:mod:`stackyard.guardrails.subjects`) reads each sentence's mean state after the
tagger's layer and after :data:`stackyard.guardrails.ner_training.GATE_DEPTH` layers, through
one logistic unit. Here the layers in between get a copy of their own, trained with the unit:
both start from the model's own layers and the unit fitted on them, and are trained together,
class-balanced, on the templates not held out. Every :data:`HOLD_OUT`-th template is held out;
the threshold is read on its private sentences (at most ``passed`` of them may read as
public), through the same 8-bit read as at run time, and the shipped weights are the ones it
was read on. With the model's own layers, a logistic unit could not tell a fan talking about
Messi from a friend talking about Kofi; trained through two layers, it passes more public
sentences at the same share of private ones (BENCHMARKS.md, "Guardrails: PII")."""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass
from typing import Any

from stackyard.guardrails import own_layers, subjects
from stackyard.guardrails.reading import PIECE_LAYER, deeper, merged, read, run_blocks

#: Every this-many-th template (by its id) is held out to read the threshold on.
HOLD_OUT = 7
EPOCHS = 3
#: Texts a step.
BATCH = 16
LAYER_LR = 3e-5
HEAD_LR = 1e-4


@dataclass(frozen=True, slots=True)
class Example:
    """One text's read after the tagger's layer (half precision: only read), and its
    sentences: each one's word pieces, its label (1 public, 0 private) and its characters."""

    text: str
    windows: Any
    starts: tuple[int, ...]
    count: int
    states: Any
    sentences: list[tuple[list[int], float, tuple[int, int]]]
    group: int


def taught(
    text: str, offsets: list[tuple[int, int]], labels: Any, public: bool
) -> list[tuple[list[int], tuple[int, int]]]:
    """The sentences of ``text`` the gate learns from, each as its word pieces (never none)
    and its characters: every sentence of a public text, and each sentence of a private text
    holding a labelled detail (``labels``: the word pieces' labels; a private sentence
    without one teaches nothing). The logistic gate's rows
    (:func:`stackyard.guardrails.ner_training.gate_rows`) are picked by it too."""
    found = []
    for start, end in subjects.sentences(text):
        rows = subjects.pieces(offsets, start, end)
        if rows and (public or bool((labels[rows] > 0).any())):
            found.append((rows, (start, end)))
    return found


def examples(
    records: list[dict[str, Any]], labels: list[Any], embedder: Any, layer: int = PIECE_LAYER
) -> list[Example]:
    """The gate's examples: each record's sentences that :func:`taught` picks
    (``labels``: each record's word-piece labels)."""
    out = []
    for record, piece_labels in zip(records, labels, strict=True):
        text = record["full_text"]
        reading = read(embedder, text, layer)
        public = record.get("kind") == "public"
        y = 1.0 if public else 0.0
        found = [
            (rows, y, span) for rows, span in taught(text, reading.offsets, piece_labels, public)
        ]
        if found:
            out.append(
                Example(
                    text,
                    reading.windows.half(),
                    reading.starts,
                    len(reading.offsets),
                    reading.states.half(),
                    found,
                    int(record["template_id"]),
                )
            )
    return out


def logits(blocks: Any, head: Any, example: Example) -> tuple[Any, Any]:
    """The gate's logit for each of ``example``'s sentences (differentiable), and labels."""
    import torch

    deep = merged(run_blocks(example.windows.float(), blocks), example.starts, example.count)
    states = example.states.float()
    rows = torch.stack(
        [torch.cat([states[r].mean(0), deep[r].mean(0)]) for r, _, _ in example.sentences]
    )
    return head(rows).squeeze(-1), torch.tensor([y for _, y, _ in example.sentences])


def fit(blocks: Any, head: Any, train: list[Example], seed: int = 0) -> None:
    """Train ``blocks`` and ``head`` together on ``train``, in place, class-balanced."""
    import torch

    torch.manual_seed(seed)
    rng = random.Random(seed)
    labels = [y for e in train for _, y, _ in e.sentences]
    positives = sum(labels) / len(labels)
    weight = {1.0: 0.5 / positives, 0.0: 0.5 / (1 - positives)}
    optimizer = torch.optim.AdamW(
        [
            {"params": blocks.parameters(), "lr": LAYER_LR},
            {"params": head.parameters(), "lr": HEAD_LR},
        ],
        weight_decay=0.01,
    )
    order = list(range(len(train)))
    started = time.monotonic()
    blocks.train()
    for epoch in range(EPOCHS):
        rng.shuffle(order)
        total = 0.0
        for at in range(0, len(order), BATCH):
            optimizer.zero_grad()
            loss: Any = torch.zeros(())
            for i in order[at : at + BATCH]:
                z, y = logits(blocks, head, train[i])
                w = torch.tensor([weight[float(v)] for v in y])
                bce = torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none")
                loss = loss + (bce * w).sum()
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
        print(
            f"gate epoch {epoch + 1}/{EPOCHS}: loss {total:.1f}, "
            f"{time.monotonic() - started:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    blocks.eval()


def probabilities(
    embedder: Any, blocks: Any, w: Any, b: float, example: Example, depth: int
) -> Any:
    """``example``'s sentences' probability of "public", read as at run time (the text read
    again, the gate's layers on ONNX Runtime in 8 bits where the read is)."""
    import torch

    reading = read(embedder, example.text, PIECE_LAYER)
    layers = [reading.states, deeper(embedder, reading, depth, blocks)]
    rows = []
    for _, _, (start, end) in example.sentences:
        row = subjects.pooled(layers, reading.offsets, start, end)
        assert row is not None
        rows.append(row)
    with torch.inference_mode():
        return torch.sigmoid(torch.stack(rows) @ w + b)


def split(data: list[Example]) -> tuple[list[Example], list[Example]]:
    """(trained on, held out to read the threshold on): whole templates on either side."""
    return (
        [e for e in data if e.group % HOLD_OUT != 0],
        [e for e in data if e.group % HOLD_OUT == 0],
    )


def fitted(
    embedder: Any, train: list[Example], initial: tuple[Any, float], depth: int, seed: int = 0
) -> tuple[Any, Any, float]:
    """The gate's layers and unit (``w``, ``b`` on raw pooled states), trained from the
    model's own layers and ``initial`` (the unit fitted on them)."""
    import torch

    blocks = own_layers.base(embedder, PIECE_LAYER, depth)
    w0, b0 = initial
    head = torch.nn.Linear(w0.shape[0], 1)
    with torch.no_grad():
        head.weight.copy_(w0.reshape(1, -1))
        head.bias.fill_(b0)
    fit(blocks, head, train, seed)
    return blocks, head.weight.detach()[0].clone(), float(head.bias.detach()[0])


def threshold(
    embedder: Any,
    blocks: Any,
    w: Any,
    b: float,
    held: list[Example],
    depth: int,
    passed: float,
) -> tuple[float, dict[str, float]]:
    """The probability at which at most ``passed`` of ``held``'s private sentences read as
    public, and the shares of each that pass there. Give it the layers as the gate will load
    them (from their 8-bit file): what it reads is what runs."""
    import torch

    scores = torch.cat([probabilities(embedder, blocks, w, b, e, depth) for e in held])
    labels = torch.tensor([y for e in held for _, y, _ in e.sentences])
    private = scores[labels == 0].double()
    cut = float(torch.quantile(private, 1 - passed))
    return cut, {
        "validation_sentences": len(labels),
        "validation_private_passed": round(float((private >= cut).double().mean()), 4),
        "validation_public_passed": round(float((scores[labels == 1] >= cut).double().mean()), 4),
    }
