"""LoRA adapters served on the base's weights, sharing its batches."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from stackyard.engine.scheduler import Engine
from tests.conftest import need_module
from tests.engine.conftest import CharTokenizer, tiny_model
from tests.engine.test_scheduler import PROMPTS, greedy, run

peft = need_module("peft", module=True)


def make_adapter(directory: Path, seed: int) -> str:
    import torch

    model = tiny_model()
    torch.manual_seed(seed)  # after the base's own seeding: each adapter its own weights
    config = peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft.get_peft_model(model, config).save_pretrained(str(directory))
    return str(directory)


def text(deltas: list[Any]) -> str:
    return "".join(d.text for d in deltas)


@pytest.fixture
def adapted(tmp_path: Path) -> Any:
    engine = Engine(tiny_model(), CharTokenizer(), max_batch=8, max_queue=16)
    engine.add_adapter("one", make_adapter(tmp_path / "one", 1))
    engine.add_adapter("two", make_adapter(tmp_path / "two", 2))
    yield engine
    engine.stop()


async def test_an_adapter_changes_the_output(adapted: Engine) -> None:
    base = text(await run(adapted, PROMPTS[0], greedy(12)))
    one = [d async for d in adapted.generate(PROMPTS[0], greedy(12), adapter="one")]
    assert text(one) != base
    plain = Engine(tiny_model(), CharTokenizer())
    try:
        assert text(await run(plain, PROMPTS[0], greedy(12))) == base  # base rows stay the base
    finally:
        plain.stop()


async def test_base_and_adapters_share_a_batch_without_changing_answers(adapted: Engine) -> None:
    async def ask(adapter: str | None, prompt: list[int]) -> str:
        return text([d async for d in adapted.generate(prompt, greedy(10), adapter=adapter)])

    jobs = [(a, p) for a in (None, "one", "two") for p in PROMPTS[:3]]
    alone = [await ask(a, p) for a, p in jobs]
    together = await asyncio.gather(*(ask(a, p) for a, p in jobs))
    assert list(together) == alone
    assert len({alone[0], alone[3], alone[6]}) == 3  # three different models


async def test_unknown_adapter(adapted: Engine) -> None:
    with pytest.raises(KeyError):
        await anext(adapted.generate(PROMPTS[0], greedy(2), adapter="three"))
