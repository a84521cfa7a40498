"""The engine on a CUDA device, in float32 and bfloat16: batching, seeded sampling, stop strings
and adapters must behave there as the CPU tests check they do here. Skipped without CUDA (CI)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stackyard.engine.loading import pick_device, pick_dtype
from stackyard.engine.sampling import SamplingParams
from stackyard.engine.scheduler import Engine
from tests.conftest import need_module
from tests.engine.conftest import CharTokenizer, tiny_model
from tests.engine.test_scheduler import PROMPTS, greedy, run, wait_idle

torch = need_module("torch", module=True)
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


async def answer(
    engine: Engine, prompt: list[int], params: SamplingParams, adapter: str | None = None
) -> str:
    return "".join([d.text async for d in engine.generate(prompt, params, adapter=adapter)])


@pytest.fixture(scope="module", params=list(DTYPES))
def cuda_model(request: pytest.FixtureRequest) -> Any:
    return tiny_model().to("cuda", DTYPES[request.param])


@pytest.fixture
def cuda_engine(cuda_model: Any) -> Iterator[Engine]:
    engine = Engine(cuda_model, CharTokenizer(), device="cuda", max_batch=8, max_queue=32)
    yield engine
    engine.stop()


def test_auto_picks_cuda_in_bfloat16() -> None:
    assert pick_device("auto") == "cuda"
    assert pick_device("cuda:0") == "cuda:0"
    assert pick_dtype("auto", "cuda") is torch.bfloat16
    assert pick_dtype("auto", "cuda:0") is torch.bfloat16


async def test_batched_output_equals_each_sequence_alone(cuda_engine: Engine) -> None:
    # More requests than max_batch, of different lengths: rows leave the running batch while
    # waiting ones join it (kv.merge and kv.keep_rows on the device).
    jobs = [(prompt, 6 + 3 * i) for i, prompt in enumerate(PROMPTS * 2)]
    alone = [await run(cuda_engine, p, greedy(n)) for p, n in jobs]
    together = await asyncio.gather(*(run(cuda_engine, p, greedy(n)) for p, n in jobs))
    for (_, n), solo, batched in zip(jobs, alone, together, strict=True):
        assert "".join(d.text for d in batched) == "".join(d.text for d in solo)
        assert batched[-1].completion_tokens == n
        assert batched[-1].finish_reason == "length"
    await wait_idle(cuda_engine)


async def test_a_sequence_joins_a_running_batch(cuda_engine: Engine) -> None:
    alone = await answer(cuda_engine, PROMPTS[1], greedy(20))

    async def late() -> str:
        await asyncio.sleep(0.05)  # joins while the first one is decoding
        return await answer(cuda_engine, PROMPTS[1], greedy(20))

    results = await asyncio.gather(answer(cuda_engine, PROMPTS[0], greedy(60)), late())
    assert results[1] == alone


async def test_seeded_sampling_repeats_alone_and_in_a_batch(cuda_engine: Engine) -> None:
    def params(seed: int) -> SamplingParams:
        return SamplingParams(max_tokens=15, temperature=1.0, top_p=0.9, seed=seed, ignore_eos=True)

    first = await answer(cuda_engine, PROMPTS[2], params(42))
    again, other, *_ = await asyncio.gather(
        answer(cuda_engine, PROMPTS[2], params(42)),
        answer(cuda_engine, PROMPTS[2], params(7)),
        *(answer(cuda_engine, p, greedy(15)) for p in PROMPTS),
    )
    assert again == first
    assert other != first  # 15 draws over 48 tokens: another seed gives another text


async def test_stop_string_ends_the_output_and_is_never_shown(cuda_engine: Engine) -> None:
    full = await answer(cuda_engine, PROMPTS[0], greedy(30))
    stop = full[5:7]
    deltas = await run(cuda_engine, PROMPTS[0], greedy(30, stop=[stop]))
    assert "".join(d.text for d in deltas) == full[: full.index(stop)]
    assert deltas[-1].finish_reason == "stop"


@pytest.mark.parametrize("dtype", list(DTYPES))
async def test_adapters_share_a_batch_without_changing_answers(dtype: str, tmp_path: Path) -> None:
    need_module("peft")
    from tests.engine.test_adapters import make_adapter

    # A model of its own: adding an adapter injects LoRA layers into the base model.
    engine = Engine(tiny_model().to("cuda", DTYPES[dtype]), CharTokenizer(), device="cuda")
    try:
        engine.add_adapter("one", make_adapter(tmp_path / "one", 1))
        engine.add_adapter("two", make_adapter(tmp_path / "two", 2))
        jobs = [(a, p) for a in (None, "one", "two") for p in PROMPTS[:3]]
        alone = [await answer(engine, p, greedy(10), adapter=a) for a, p in jobs]
        together = await asyncio.gather(
            *(answer(engine, p, greedy(10), adapter=a) for a, p in jobs)
        )
        assert list(together) == alone
        assert len({alone[0], alone[3], alone[6]}) == 3  # three different models
    finally:
        engine.stop()
