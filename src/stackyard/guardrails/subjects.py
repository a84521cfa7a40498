"""Whether a sentence is about public subjects or about private people: the PII tagger's gate
for names, places and addresses.

"Where did Napoleon die in 1821?" names a person and a place, and neither is anyone's personal
data; "Where did my tenant Ama Owusu move in 2021?" is worded almost the same, and both are.
The tagger's piece-level heads (:mod:`stackyard.guardrails.ner`) read a word with little
context, two layers deep. This gate reads a whole sentence: the mean of its word pieces' states
from the tagger's read, and beside it their mean after two more of the model's layers (run on
from that read, in 8 bits, and only once a sentence is to be read:
:func:`stackyard.guardrails.reading.deeper`), through one logistic unit (``ner_subject.npz``,
trained by ``make guardrails-ner``: private sentences from the Presidio templates and written
private texts, public ones from written questions about public subjects). The deeper read
passes 0.87 of public training sentences out of fold where the tagger's layer alone passed
0.74, each letting 1% of private ones through. Where it reads a sentence as about public
subjects, names, places and addresses found in that sentence are left alone; a sentence it does
not read so surely keeps every find. Patterns (cards, emails, phones, numbers) are never gated.

A gate file may name layers of its own (:data:`LAYERS`, trained with it by ``make
guardrails-ner ARGS=--gate-layers``): they run in place of the model's own two, at the same
cost. The shipped gate has none; the one trained so was judged and not shipped (BENCHMARKS.md,
"Guardrails: PII", eleventh session).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stackyard.guardrails import own_layers
from stackyard.guardrails.reading import PIECE_LAYER

WEIGHTS = Path(__file__).with_name("ner_subject.npz")
#: The gate's own copy of the model's layers after the tagger's up to its depth, fine-tuned
#: with it (:mod:`stackyard.guardrails.own_layers`); a gate file that names none reads the
#: model's own layers.
LAYERS = Path(__file__).with_name("ner_subject_layers.safetensors")
#: The kinds a sentence about public subjects may hold without being redacted.
KINDS = frozenset({"PERSON", "ORGANIZATION", "NRP", "LOCATION", "ADDRESS"})
#: Where a sentence may end: its closing punctuation and the space after it, or a line break.
BOUNDARY = re.compile(r"[.!?]+[\"')\]]*\s+|\n+")
#: Words after which a full stop ends no sentence ("Dr. Naomi Friedlander", "J. S. Bach").
ABBREVIATIONS = frozenset(
    re.findall(
        r"\S+",
        "mr mrs ms dr prof st jr sr vs etc no inc ltd co mt ave "
        "rd blvd gen col capt sgt lt rev hon dept fig approx e.g i.e u.s",
    )
)
LAST_WORD = re.compile(r"([\w.]+)[.!?]*[\"')\]]*\s*$")
#: Words of letters a sentence must hold besides what was found in it, for the gate to read
#: it at all: "find John Smith" or a JSON field is too little to tell whose name it is.
MIN_CONTEXT = 4
WORD = re.compile(r"[^\W\d_]+")


def sentences(text: str) -> list[tuple[int, int]]:
    """The character ranges of ``text``'s sentences, in order, covering all of it."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in BOUNDARY.finditer(text):
        if match.group().startswith("."):
            word = LAST_WORD.search(text, start, match.end())
            last = word.group(1).lower().rstrip(".") if word else ""
            if last in ABBREVIATIONS or (len(last) == 1 and last.isalpha()):
                continue  # a title or an initial, not a sentence's end
        spans.append((start, match.end()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def pieces(offsets: list[tuple[int, int]], start: int, end: int) -> list[int]:
    """The word pieces inside ``[start, end)`` (a sentence's): what the gate pools, in
    training as at run time."""
    return [i for i, (a, b) in enumerate(offsets) if b > a and a >= start and b <= end]


def pooled(layers: list[Any], offsets: list[tuple[int, int]], start: int, end: int) -> Any | None:
    """The sentence ``[start, end)``'s input to the gate: each of ``layers``' states (one row a
    word piece) averaged over its pieces, side by side, or None when it has none. Training
    reads sentences with it too."""
    import torch

    rows = pieces(offsets, start, end)
    return torch.cat([states[rows].mean(0) for states in layers]) if rows else None


class SubjectGate:
    """The trained gate: ``w`` and ``b`` read a sentence's pooled states (raw, the scaling
    folded in): after the tagger's layer, and after ``depth`` layers of the model's own
    where the file names one (the two means side by side); ``threshold`` is the probability
    of "public" it takes to leave a sentence's finds alone. Where the file names its own
    layers (``layers``, a file beside it), :attr:`blocks` holds them, loaded on ``embedder``,
    to run in place of the model's own up to ``depth``."""

    def __init__(self, weights: Path = WEIGHTS, embedder: Any = None) -> None:
        import numpy as np
        import torch

        data = np.load(weights, allow_pickle=False)
        self.w = torch.from_numpy(data["w"].astype(np.float32))
        self.b = float(data["b"])
        self.threshold = float(data["threshold"])
        self.depth: int | None = int(data["depth"]) if "depth" in data.files else None
        self.blocks: Any = None
        if "layers" in data.files:
            if embedder is None or self.depth is None:
                raise ValueError(f"{weights.name} reads its own layers: pass the embedder")
            path = weights.with_name(str(data["layers"]))
            self.blocks = own_layers.load(embedder, path, PIECE_LAYER, self.depth)
            if self.blocks is None:
                raise FileNotFoundError(f"{weights.name} names {path.name}, which is missing")

    def probability(self, pooled_state: Any) -> float:
        import torch

        with torch.inference_mode():
            return float(torch.sigmoid(pooled_state @ self.w + self.b))

    def public(
        self,
        text: str,
        offsets: list[tuple[int, int]],
        states: Any,
        found: list[tuple[int, int]],
        deep: Callable[[], Any] | None = None,
    ) -> list[bool]:
        """For each find (its characters), whether the sentence holding it reads as about
        public subjects. A sentence with fewer than :data:`MIN_CONTEXT` words besides its
        finds never does. Each sentence is read once, and only where asked; ``deep`` gives
        the pieces' states after :attr:`depth` layers, asked for once and only when a
        sentence is read."""
        spans = sentences(text)
        at = [
            next((n for n, (a, b) in enumerate(spans) if a <= s < b), len(spans) - 1)
            for s, _ in found
        ]
        layers: list[Any] = [states]
        seen: dict[int, bool] = {}
        for index in at:
            if index in seen:
                continue
            a, b = spans[index]
            inside = [(s, e) for (s, e), n in zip(found, at, strict=True) if n == index]
            context = sum(
                1
                for word in WORD.finditer(text, a, b)
                if not any(s < word.end() and word.start() < e for s, e in inside)
            )
            if context < MIN_CONTEXT:
                seen[index] = False
                continue
            if self.depth is not None and len(layers) == 1:
                if deep is None:
                    raise ValueError(f"this gate reads layer {self.depth} as well: pass deep")
                layers.append(deep())
            state = pooled(layers, offsets, a, b)
            seen[index] = state is not None and self.probability(state) >= self.threshold
        return [seen[index] for index in at]


def load(weights: Path = WEIGHTS, embedder: Any = None) -> SubjectGate | None:
    return SubjectGate(weights, embedder) if weights.exists() else None
