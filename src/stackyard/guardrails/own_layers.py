"""A rail's own copy of some of the embedding model's layers, fine-tuned for that rail and
shipped as their difference from the base model (:mod:`stackyard.deltas`): the injection
classifier's upper layers (:mod:`stackyard.guardrails.injection_layers`) and the PII sentence
gate's deeper ones (:mod:`stackyard.guardrails.subjects`). The embeddings API and the cache
keep using the model's own layers unchanged."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from stackyard import deltas


def base(embedder: Any, start: int, stop: int | None = None) -> Any:
    """A private copy of the embedding model's layers ``start`` to ``stop`` (a
    ``ModuleList``; to the last layer when ``stop`` is None)."""
    import torch

    full = embedder[0].auto_model
    return copy.deepcopy(torch.nn.ModuleList(list(full.encoder.layer)[start:stop]))


def load(embedder: Any, path: Path, start: int, stop: int | None = None) -> Any:
    """The fine-tuned layers ``start`` to ``stop``, or None when ``path`` is missing."""
    if not path.exists():
        return None
    import torch
    from safetensors import safe_open

    layers = base(embedder, start, stop)
    with safe_open(str(path), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    with torch.no_grad():
        deltas.apply(layers.named_parameters(), tensors)
    return layers.eval()


def save(
    layers: Any,
    embedder: Any,
    path: Path,
    meta: dict[str, str],
    start: int,
    stop: int | None = None,
) -> None:
    """``layers`` (fine-tuned from :func:`base`'s ``start`` to ``stop``) as their 8-bit
    difference from the base model."""
    from safetensors.torch import save_file

    reference = {name: p.detach() for name, p in base(embedder, start, stop).named_parameters()}
    save_file(deltas.quantize(layers.named_parameters(), reference), str(path), metadata=meta)
