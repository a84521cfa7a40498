"""A GGUF model converted once into a plain directory: the same tokens and the same logits as
the GGUF file, a second call reuses the directory, and a cache that cannot be written falls
back to the GGUF file."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard.engine import unpacked as unpacked_module
from stackyard.engine.sources import Source, resolve
from stackyard.engine.unpacked import unpacked
from tests.conftest import require_local_models

pytestmark = pytest.mark.slow


def test_the_plain_copy_tokenizes_and_predicts_as_the_gguf_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_local_models()
    import torch
    import transformers

    monkeypatch.setenv("STACKYARD_CACHE_DIR", str(tmp_path / "cache"))
    gguf = resolve("smollm2", "chat")
    plain = unpacked(gguf)
    assert plain.gguf_file is None
    assert plain.directory.parent == tmp_path / "cache" / "gguf"
    assert (plain.directory / "model.safetensors").exists()
    assert unpacked(gguf) == plain  # converted once

    kwargs = {"gguf_file": gguf.gguf_file}
    original = transformers.AutoTokenizer.from_pretrained(str(gguf.directory), **kwargs)
    copy = transformers.AutoTokenizer.from_pretrained(str(plain.directory))
    chat = [{"role": "user", "content": "Quelle heure est-il? 3.14 ünïcödé 🙂"}]
    for text in ("Hello there, world!", "  def f(x):\n\treturn x**2", chat[0]["content"]):
        assert copy(text)["input_ids"] == original(text)["input_ids"]
    assert copy.apply_chat_template(chat, tokenize=False) == original.apply_chat_template(
        chat, tokenize=False
    )
    assert (copy.eos_token_id, copy.pad_token_id) == (original.eos_token_id, original.pad_token_id)

    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(gguf.directory), dtype=torch.float32, **kwargs
    )
    same = transformers.AutoModelForCausalLM.from_pretrained(
        str(plain.directory), dtype=torch.float32
    )
    ids = torch.tensor([original("The capital of France is")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, same(ids).logits)


def test_a_cache_that_cannot_be_written_loads_the_gguf_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("STACKYARD_CACHE_DIR", str(blocker))
    gguf_file = tmp_path / "model.gguf"
    gguf_file.write_bytes(b"GGUF")
    source = Source("chat", tmp_path, "model.gguf")
    assert unpacked(source) == source
    plain = Source("chat", tmp_path)
    assert unpacked(plain) is plain
    assert unpacked_module.cache_root() == blocker
