"""A tiny random Llama and a character tokenizer: the engine's logic, tested in milliseconds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import need_module

torch = need_module("torch", module=True)
transformers = need_module("transformers", module=True)

from stackyard.engine.scheduler import Engine  # noqa: E402

EOS = 1


class CharTokenizer:
    """Token t decodes to one character of its own; 0 pads, 1 ends a sequence."""

    eos_token_id = EOS
    pad_token_id = 0
    bos_token_id = None
    #: Each token's bytes, and the special ones: what llguidance reads of a tokenizer.
    tokens = [b"<pad>", b"<eos>"] + [bytes([ord("A") + t]) for t in range(2, 48)]
    special_token_ids = [0, EOS]

    def __call__(self, text: str | bytes) -> list[int]:
        chars = text.decode() if isinstance(text, bytes) else text
        return [ord(c) - ord("A") for c in chars]

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(ord("A") + t) for t in ids if t > 1)


def tiny_model(seed: int = 0) -> Any:
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=48,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        eos_token_id=EOS,
        pad_token_id=0,
    )
    model = transformers.LlamaForCausalLM(config)
    model.eval()
    return model


@pytest.fixture(scope="session")
def model() -> Any:
    return tiny_model()


@pytest.fixture
def engine(model: Any) -> Iterator[Engine]:
    running = Engine(model, CharTokenizer(), max_batch=8, max_queue=16)
    yield running
    running.stop()
