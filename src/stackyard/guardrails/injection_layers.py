"""The injection classifier's own upper layers: all-MiniLM-L6-v2's layers after the entity
tagger's (:data:`stackyard.guardrails.reading.PIECE_LAYER`), fine-tuned with the classifier's
head to tell injections and jailbreaks from other text (``python -m
stackyard.guardrails.training --deep``).

A text is still read once: the shared model's first layers give the tagger its states, and
these layers take over from there for the classifier, in place of the model's own (which the
embeddings API and the cache keep using unchanged). They ship as their difference from the
base model (:mod:`stackyard.deltas`, ``injection_layers.safetensors``, about 7 MB)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from stackyard import deltas
from stackyard.guardrails.reading import PIECE_LAYER

LAYERS = Path(__file__).with_name("injection_layers.safetensors")


def base_layers(embedder: Any) -> Any:
    """A private copy of the embedding model's layers after the tagger's (a ``ModuleList``)."""
    import torch

    full = embedder[0].auto_model
    return copy.deepcopy(torch.nn.ModuleList(list(full.encoder.layer)[PIECE_LAYER:]))


def load(embedder: Any, path: Path = LAYERS) -> Any:
    """The fine-tuned layers, or None when ``path`` is missing."""
    if not path.exists():
        return None
    import torch
    from safetensors import safe_open

    layers = base_layers(embedder)
    with safe_open(str(path), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    with torch.no_grad():
        deltas.apply(layers.named_parameters(), tensors)
    return layers.eval()


def save(layers: Any, embedder: Any, path: Path, meta: dict[str, str]) -> None:
    from safetensors.torch import save_file

    base = {name: p.detach() for name, p in base_layers(embedder).named_parameters()}
    save_file(deltas.quantize(layers.named_parameters(), base), str(path), metadata=meta)
