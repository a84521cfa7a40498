import asyncio

import pytest

from stackyard.engine.sampling import SamplingParams
from stackyard.engine.scheduler import Delta, Engine, EngineStopped, QueueFull

PROMPTS = [[5, 6, 7], [9] * 11, [3, 4], [12, 13, 14, 15, 16, 17, 18], [20], [30, 31, 32, 33]]


def greedy(n: int, **extra: object) -> SamplingParams:
    return SamplingParams(max_tokens=n, temperature=0, ignore_eos=True, **extra)  # type: ignore[arg-type]


async def run(engine: Engine, prompt: list[int], params: SamplingParams) -> list[Delta]:
    return [d async for d in engine.generate(prompt, params)]


async def wait_idle(engine: Engine) -> None:
    for _ in range(200):
        if engine.load == (0, 0):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"engine still busy: {engine.load}")


async def test_batched_output_equals_each_sequence_alone(engine: Engine) -> None:
    alone = [await run(engine, p, greedy(12)) for p in PROMPTS]
    together = await asyncio.gather(*(run(engine, p, greedy(12)) for p in PROMPTS))
    for solo, batched in zip(alone, together, strict=True):
        assert "".join(d.text for d in batched) == "".join(d.text for d in solo)
        assert batched[-1].completion_tokens == 12
        assert batched[-1].finish_reason == "length"


async def test_sequences_join_a_running_batch(engine: Engine) -> None:
    alone = await run(engine, PROMPTS[1], greedy(20))

    async def late() -> list[Delta]:
        await asyncio.sleep(0.05)  # joins while the first ones are decoding
        return await run(engine, PROMPTS[1], greedy(20))

    results = await asyncio.gather(run(engine, PROMPTS[0], greedy(40)), late())
    assert "".join(d.text for d in results[1]) == "".join(d.text for d in alone)


async def test_usage_is_exact(engine: Engine) -> None:
    deltas = await run(engine, PROMPTS[3], greedy(9))
    assert (deltas[-1].prompt_tokens, deltas[-1].completion_tokens) == (7, 9)


async def test_stop_string_ends_the_output_and_is_never_shown(engine: Engine) -> None:
    full = "".join(d.text for d in await run(engine, PROMPTS[0], greedy(30)))
    stop = full[5:7]
    deltas = await run(engine, PROMPTS[0], greedy(30, stop=[stop]))
    text = "".join(d.text for d in deltas)
    assert text == full[: full.index(stop)]
    assert deltas[-1].finish_reason == "stop"


async def test_seeded_sampling_repeats(engine: Engine) -> None:
    params = SamplingParams(max_tokens=15, temperature=1.0, top_p=0.9, seed=42, ignore_eos=True)
    first = "".join(d.text for d in await run(engine, PROMPTS[2], params))
    second = "".join(d.text for d in await run(engine, PROMPTS[2], params))
    assert first == second


async def test_a_cancelled_client_frees_its_slot(engine: Engine) -> None:
    stream = engine.generate(PROMPTS[0], greedy(10_000))
    await anext(stream)
    await stream.aclose()
    await wait_idle(engine)


async def test_stopping_fails_what_runs_and_waits_never_leaves_it_hanging(
    model: object,
) -> None:
    from tests.engine.conftest import CharTokenizer

    one = Engine(model, CharTokenizer(), max_batch=1, max_queue=4)
    running = one.generate(PROMPTS[0], greedy(10_000))
    waiting = one.generate(PROMPTS[1], greedy(10_000))
    first = await anext(running)
    assert first.error is None
    pending = asyncio.ensure_future(anext(waiting))  # queued behind the running one
    await asyncio.sleep(0.05)
    one.stop()
    async with asyncio.timeout(10):
        ended = [d async for d in running]
        late = await pending
    assert ended[-1].error == "the local engine stopped"
    assert late.error == "the local engine stopped"
    with pytest.raises(EngineStopped):
        await anext(one.generate(PROMPTS[0], greedy(5)))


async def test_queue_has_a_bound(model: object) -> None:
    from tests.engine.conftest import CharTokenizer

    small = Engine(model, CharTokenizer(), max_batch=1, max_queue=1)
    try:
        streams = [small.generate(PROMPTS[0], greedy(200)) for _ in range(4)]
        outcomes = await asyncio.gather(*(anext(s) for s in streams), return_exceptions=True)
        assert any(isinstance(o, QueueFull) for o in outcomes)
        for stream in streams:
            await stream.aclose()
    finally:
        small.stop()


async def test_context_length_ends_generation(model: object) -> None:
    from tests.engine.conftest import CharTokenizer

    short = Engine(model, CharTokenizer(), context_length=10)
    try:
        deltas = await run(short, [5, 6, 7], greedy(100))
        assert deltas[-1].completion_tokens == 7
        assert deltas[-1].finish_reason == "length"
    finally:
        short.stop()


async def test_end_of_sequence_token_ends_with_stop(model: object) -> None:
    from tests.engine.conftest import CharTokenizer

    plain = Engine(model, CharTokenizer())
    try:
        produced = "".join(d.text for d in await run(plain, PROMPTS[4], greedy(30)))
    finally:
        plain.stop()
    # Make the 4th greedy token the end-of-sequence token: generation stops right there.
    fourth = ord(produced[3]) - ord("A")
    eos_engine = Engine(model, CharTokenizer())
    eos_engine.eos_ids = {fourth}
    try:
        deltas = await run(eos_engine, PROMPTS[4], SamplingParams(max_tokens=30, temperature=0))
    finally:
        eos_engine.stop()
    assert deltas[-1].finish_reason == "stop"
    assert "".join(d.text for d in deltas) == produced[:3]
    assert deltas[-1].completion_tokens == 4
