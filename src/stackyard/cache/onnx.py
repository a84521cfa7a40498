"""The semantic tier's two models run by ONNX Runtime on CPU, in full precision.

PyTorch runs these small models one operator at a time; ONNX Runtime fuses the layer norms,
GELUs and attention of the same graph and spends less per call. On two cores the pair
classifier scores a lookup's two pairs 1.6 times faster at the median (22 to 14 ms) and the
query embedder embeds one question in 5.0 ms (6.2 ms for PyTorch in 8 bits, 16 in full
precision), with the same numbers as PyTorch in full precision to 0.000003.

The graphs are exported from the loaded models when the tier loads (about 2 s each; nothing
is written to disk). Without ``onnxruntime`` and ``onnx`` (both in the ``local`` extra), off
the CPU, or for an embedding model that does not mean-pool a BERT-like encoder, the tier stays
on PyTorch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from stackyard import onnxgraph

log = logging.getLogger("stackyard.cache")

#: Off only to measure the tier without it (the benchmark's anchor).
ENABLED = True

#: The tokenizer's outputs the graphs take, in order.
INPUTS = ("input_ids", "attention_mask", "token_type_ids")

Runner = Callable[[dict[str, Any]], list[float]]


def available() -> bool:
    return ENABLED and onnxgraph.available()


def session(module: Any, sample: dict[str, Any]) -> Any:
    """An ONNX Runtime session for ``module(*INPUTS)``, exported with ``sample`` (a tokenized
    batch), its pairs or texts and tokens of any number."""
    axes = {name: {0: "rows", 1: "tokens"} for name in INPUTS}
    inputs = {name: sample[name] for name in INPUTS}
    return onnxgraph.session(module, inputs, ["out"], {**axes, "out": {0: "rows"}})


def feed(batch: Any) -> dict[str, Any]:
    import numpy as np

    return {name: np.asarray(batch[name], dtype=np.int64) for name in INPUTS}


def runner(model: Any, tokenizer: Any, forward: Callable[[Any, dict[str, Any]], Any]) -> Runner:
    """Export ``forward(model, batch)`` (one logit per pair) and return a function from a
    tokenized batch (numpy arrays) to each pair's probability."""
    import torch

    class Probability(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            return torch.sigmoid(forward(self.model, dict(zip(INPUTS, tensors, strict=True))))

    sample = tokenizer(["How are you?"], ["Who are you?"], return_tensors="pt")
    graph = session(Probability(), sample)

    def run(batch: dict[str, Any]) -> list[float]:
        found: list[float] = graph.run(None, feed(batch))[0].tolist()
        return found

    return run


class Embedder:
    """A sentence-transformers model's ``encode``, for a BERT-like encoder with mean pooling."""

    def __init__(self, model: Any) -> None:
        import torch

        encoder = model[0].auto_model

        class MeanPooled(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.encoder = encoder

            def forward(self, *tensors: Any) -> Any:
                named = dict(zip(INPUTS, tensors, strict=True))
                out = self.encoder(**named).last_hidden_state
                mask = named["attention_mask"].unsqueeze(-1).to(out.dtype)
                return (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

        self.tokenizer = model.tokenizer
        self.max_length = int(model.max_seq_length)
        self.graph = session(MeanPooled(), self.tokenizer(["Hello there"], return_tensors="pt"))

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        normalize_embeddings: bool = False,
        **_: Any,
    ) -> Any:
        """One row per text, as numpy (the keywords sentence-transformers takes for its
        progress bar and output type are accepted and ignored)."""
        import numpy as np

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding
        rows: list[Any] = [None] * len(texts)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = self.tokenizer(
                [texts[i] for i in chunk],
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_tensors="np",
            )
            for i, row in zip(chunk, self.graph.run(None, feed(batch))[0], strict=True):
                rows[i] = row
        vectors = np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)
        if normalize_embeddings and len(rows):
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors


def embedder(model: Any) -> Embedder | None:
    """``model`` (sentence-transformers) on ONNX Runtime, or None where it cannot be."""
    if not available():
        return None
    try:
        modules = list(model)
        config = modules[1].get_config_dict() if len(modules) > 1 else {}
        mean = config.get("pooling_mode") == "mean" or config.get("pooling_mode_mean_tokens")
        rest = {type(m).__name__ for m in modules[2:]}
        if not mean or not hasattr(modules[0], "auto_model") or rest - {"Normalize"}:
            return None
        return Embedder(model)
    except Exception as exc:  # an encoder the exporter cannot trace: PyTorch it is
        log.warning("the cache's embedder stays on PyTorch: %s", exc)
        return None
