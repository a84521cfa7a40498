"""The semantic tier's embedder in 8 bits: its linear layers are quantized, its embeddings
stay near those of the full model, the ranking of a paraphrase above an
unrelated question holds, and nothing changes off the CPU."""

from __future__ import annotations

from stackyard.cache.int8 import int8
from tests.conftest import need_module, unavailable

torch = need_module("torch", module=True)


def test_the_embedder_in_8_bits_embeds_as_the_full_one() -> None:
    from stackyard.engine.loading import load_embedder
    from stackyard.engine.sources import ModelSourceError, resolve

    try:
        source = resolve("all-minilm-l6-v2", "embeddings")
    except ModelSourceError as exc:
        unavailable(str(exc))
    full = load_embedder(source, "cpu")
    small = int8(full, "cpu")
    assert small is not full  # a copy: the gateway's /v1/embeddings keeps the full model
    linear = [m for m in small.modules() if type(m) is torch.nn.Linear]
    quantized = [
        m
        for m in small.modules()
        if type(m).__name__ == "Linear" and "quantized" in type(m).__module__
    ]
    assert not linear
    assert len(quantized) == 37  # six layers of six linear layers each, and the pooler
    texts = [
        "How do I learn to cook rice?",
        "What is the best way to cook rice?",
        "Why is the sky blue during the day?",
    ]
    ours = small.encode(texts, normalize_embeddings=True)
    theirs = full.encode(texts, normalize_embeddings=True)
    for a, b in zip(ours, theirs, strict=True):
        # Activations are scaled per tensor: about 0.96 cosine to the full model's vector.
        # Entries and lookups are embedded by the same 8-bit model; the classifier reads text.
        assert float(a @ b) > 0.9
    assert float(ours[0] @ ours[1]) > float(ours[0] @ ours[2])


def test_nothing_changes_off_the_cpu() -> None:
    layer = torch.nn.Linear(4, 4)
    assert int8(layer, "cuda") is layer
