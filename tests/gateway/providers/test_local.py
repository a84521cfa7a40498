"""The in-process provider's own prompt counts (admission's token estimate), without loading
a model: a stand-in engine whose tokenizer gives one token per character."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackyard.config.schema import ModelEntry
from stackyard.gateway.providers.local import LocalProvider
from stackyard.gateway.token_counts import counter_for


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
