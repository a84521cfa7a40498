"""The stream invariant for the in-process engine: a generation that fails after its first
tokens (an out-of-memory in a decoding step, say) ends every streaming door's response with
that door's error event, after the text that came, and never with its terminal event.

The whole server runs in this process (a fault no fake upstream can make): a ``local`` model
whose engine decodes with a tiny random Llama that raises on its fourth forward pass. The
clients are the official SDKs, strict about the responses' shape."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import need_module

torch = need_module("torch", module=True)
transformers = need_module("transformers", module=True)

from stackyard.engine.scheduler import Engine  # noqa: E402
from tests.gateway.tiny_local import serving as tiny_serving  # noqa: E402
from tests.gateway.tiny_local import tiny_config  # noqa: E402

EOS = 1


class Tokenizer:
    """Token t is one character of its own (0 pads, 1 ends); the chat template is the text's
    characters, so any prompt encodes."""

    eos_token_id = EOS
    pad_token_id = 0

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(ord("A") + t % 26) for t in ids if t > 1)

    def apply_chat_template(self, messages: list[dict[str, Any]], **_: Any) -> list[int]:
        text = "".join(str(m["content"]) for m in messages)
        return [2 + ord(c) % 40 for c in text][-32:]


class FailingLlama(transformers.LlamaForCausalLM):  # type: ignore[misc,name-defined]
    """A real (tiny, random) Llama that never ends its text, and whose decoding fails after a
    few steps, as a GPU out of memory would."""

    fail_at = 4

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.calls = 0

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls >= self.fail_at:
            raise RuntimeError("CUDA out of memory (injected)")
        out = super().forward(*args, **kwargs)
        out.logits[..., EOS] = -1e9
        return out


def failing_engine() -> Engine:
    torch.manual_seed(0)
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
    model = FailingLlama(config)
    model.eval()
    return Engine(model, Tokenizer(), max_batch=4, max_queue=4)


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    return tiny_config(tmp_path)


def serving(
    config: dict[str, Any],
) -> contextlib.AbstractAsyncContextManager[tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic]]:
    return tiny_serving(config, failing_engine)


ASK: Any = [{"role": "user", "content": "Tell me a story"}]


async def test_chat_completions_ends_with_an_error_chunk(config: dict[str, Any]) -> None:
    texts: list[str] = []
    finishes: list[str | None] = []

    async def read(oa: openai.AsyncOpenAI) -> None:
        stream = await oa.chat.completions.create(
            model="tiny", messages=ASK, max_tokens=50, stream=True
        )
        async for chunk in stream:
            for choice in chunk.choices:
                texts.append(choice.delta.content or "")
                finishes.append(choice.finish_reason)

    async with serving(config) as (oa, _):
        with pytest.raises(openai.APIError, match="out of memory") as info:
            await read(oa)
    assert "".join(texts)  # the tokens before the failure reached the client
    assert not any(finishes)  # and nothing pretended the answer was whole
    body: Any = info.value.body
    assert body["type"] == "server_error"


async def test_messages_ends_with_an_error_event(config: dict[str, Any]) -> None:
    kinds: list[str] = []

    async def read(an: anthropic.AsyncAnthropic) -> None:
        async with an.messages.stream(model="tiny", max_tokens=50, messages=ASK) as stream:
            async for event in stream:
                kinds.append(event.type)

    async with serving(config) as (_, an):
        with pytest.raises(anthropic.APIStatusError, match="out of memory"):
            await read(an)
    assert "content_block_delta" in kinds  # text came first
    assert "message_delta" not in kinds
    assert "message_stop" not in kinds


async def test_responses_ends_with_an_error_event(config: dict[str, Any]) -> None:
    async with serving(config) as (oa, _):
        kinds: list[str] = []
        async with oa.responses.stream(model="tiny", input="Tell me a story") as stream:
            async for event in stream:
                kinds.append(event.type)
            with pytest.raises(RuntimeError, match=r"response\.completed"):
                await stream.get_final_response()
    assert "response.output_text.delta" in kinds
    assert kinds[-1] == "error"
    assert not {"response.completed", "response.incomplete"} & set(kinds)
