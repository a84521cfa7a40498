"""The injection classifier's own upper layers: all-MiniLM-L6-v2's layers after the entity
tagger's (:data:`stackyard.guardrails.reading.PIECE_LAYER`), fine-tuned with the classifier's
head to tell injections and jailbreaks from other text (``python -m
stackyard.guardrails.training --deep``).

A text is still read once: the shared model's first layers give the tagger its states, and
these layers take over from there for the classifier, in place of the model's own (which the
embeddings API and the cache keep using unchanged). They ship as their difference from the
base model (:mod:`stackyard.guardrails.own_layers`, ``injection_layers.safetensors``, about
7 MB)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stackyard.guardrails import own_layers
from stackyard.guardrails.reading import PIECE_LAYER

LAYERS = Path(__file__).with_name("injection_layers.safetensors")


def base_layers(embedder: Any) -> Any:
    """A private copy of the embedding model's layers after the tagger's (a ``ModuleList``)."""
    return own_layers.base(embedder, PIECE_LAYER)


def load(embedder: Any, path: Path = LAYERS) -> Any:
    """The fine-tuned layers, or None when ``path`` is missing."""
    return own_layers.load(embedder, path, PIECE_LAYER)


def save(layers: Any, embedder: Any, path: Path, meta: dict[str, str]) -> None:
    own_layers.save(layers, embedder, path, meta, PIECE_LAYER)
