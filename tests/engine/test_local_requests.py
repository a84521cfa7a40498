"""Nothing a client sends to an in-process model is silently dropped: what the engine does not
act on is a 400 naming the field, before any model is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackyard.config.schema import ModelEntry
from stackyard.gateway.providers.base import UpstreamError
from stackyard.gateway.providers.local import LocalProvider

MESSAGES = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def provider(tmp_path: Path) -> LocalProvider:
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"")
    entry = ModelEntry(name="m", provider="local", model=str(weights), options={"load": "lazy"})
    return LocalProvider(entry, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"web_search_options": {}}, "web_search_options"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"reasoning_effort": "low"}, "reasoning_effort"),
        ({"prediction": {"type": "content", "content": "x"}}, "prediction"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"top_k": 5}, "top_k"),
        ({"top_logprobs": 2}, "top_logprobs"),  # without logprobs: true
        ({"tools": [{"type": "file_search"}]}, "tools[0].type"),
        (
            {
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "tool_choice": {"type": "function", "function": {"name": "g"}},
            },
            "tool_choice",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "messages[0].content[0]",
        ),
    ],
)
async def test_what_the_engine_does_not_do_is_a_400_naming_it(
    provider: LocalProvider, extra: dict[str, Any], param: str
) -> None:
    body = {"model": "m", "messages": MESSAGES, **extra}
    for call in (provider.chat(body), anext(provider.chat_stream({**body, "stream": True}))):
        with pytest.raises(UpstreamError) as refused:
            await call
        assert (refused.value.status, refused.value.param) == (400, param)
        assert param.split("[")[0] in refused.value.message


def test_labels_and_nulls_are_accepted() -> None:
    from stackyard.gateway import local_params

    local_params.check(
        {
            "model": "m",
            "messages": MESSAGES,
            "user": "u",
            "metadata": {"a": "b"},
            "store": False,
            "logit_bias": None,
            "modalities": ["text"],
            "response_format": {"type": "text"},
            "tool_choice": "none",
        }
    )
