"""The in-process provider's own prompt counts (admission's token estimate), without loading
a model: a stand-in engine whose tokenizer gives one token per character."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackyard.config.schema import ModelEntry
from stackyard.gateway.providers.local import LocalProvider
from stackyard.gateway.token_counts import counter_for
from tests.conftest import need_module


class CharTemplate:
    def apply_chat_template(self, messages: list[dict[str, Any]], **_: Any) -> list[int]:
        text = "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"
        if "{{" in text:
            raise ValueError("the template cannot take this")
        return [ord(c) for c in text]


class StandInEngine:
    tokenizer = CharTemplate()


@pytest.fixture
def provider(tmp_path: Path) -> LocalProvider:
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"")
    return LocalProvider(ModelEntry(name="m", provider="local", model=str(weights)), None)  # type: ignore[arg-type]


def test_counts_with_the_models_own_template_once_loaded(provider: LocalProvider) -> None:
    body = {"messages": [{"role": "user", "content": "Hi"}]}
    assert provider.prompt_tokens(body) is None  # not loaded: the caller estimates
    provider._engine = StandInEngine()  # type: ignore[assignment]
    assert provider.prompt_tokens(body) == len("<user>Hi<assistant>")
    assert counter_for(provider)(body) == len("<user>Hi<assistant>")


def test_a_body_the_template_refuses_falls_back_to_tiktoken(provider: LocalProvider) -> None:
    provider._engine = StandInEngine()  # type: ignore[assignment]
    body = {"messages": [{"role": "user", "content": "{{ broken"}]}
    assert provider.prompt_tokens(body) is None
    assert counter_for(provider)(body) > 0


def test_batched_encodes_use_bfloat16_only_where_it_pays() -> None:
    torch = need_module("torch", module=True)
    from stackyard.engine.loading import batch_dtype

    assert batch_dtype("cpu", "float32") is None
    assert batch_dtype("cpu", "bfloat16") is torch.bfloat16
    assert batch_dtype("cuda", "auto") is torch.bfloat16
    amx = torch.cpu._is_amx_tile_supported()
    assert batch_dtype("cpu", "auto") is (torch.bfloat16 if amx else None)


@pytest.mark.slow
async def test_a_batch_embeds_like_its_texts_one_by_one() -> None:
    """A batch big enough for the bfloat16 weights (where the CPU has AMX) gives the vectors
    the float32 model gives each text alone, within 1e-3 in cosine."""
    from tests.conftest import require_local_models

    require_local_models()
    np = need_module("numpy", module=True)
    local = LocalProvider(ModelEntry(name="e", provider="local", model="all-minilm-l6-v2"), None)  # type: ignore[arg-type]
    texts = [
        f"Sentence number {i} says something different about topic {i * 7}." for i in range(48)
    ]
    batch = await local.embeddings({"input": texts})
    assert batch["usage"]["prompt_tokens"] >= 512  # past BATCH_PRECISION_MIN_TOKENS
    for i in (0, 17, 47):
        (alone,) = (await local.embeddings({"input": texts[i]}))["data"]
        a = np.asarray(alone["embedding"])
        b = np.asarray(batch["data"][i]["embedding"])
        assert float(a @ b) > 0.999


def test_defaults_the_engine_would_refuse_are_refused_at_start(tmp_path: Path) -> None:
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"")
    entry = ModelEntry.model_validate(
        {
            "name": "m",
            "provider": "local",
            "model": str(weights),
            "defaults": {"temperature": 0.2, "presence_penalty": 0.5},
        }
    )
    with pytest.raises(ValueError, match="presence_penalty"):
        LocalProvider(entry, None)  # type: ignore[arg-type]
    fine = entry.model_copy(
        update={"defaults": entry.defaults.model_copy(update={"presence_penalty": None})}
    )
    assert LocalProvider(fine, None).name == "m"  # type: ignore[arg-type]
