"""Constrained decoding in the batching engine: a grammar's sequences follow it, and the
sequences batched beside them without one come out as they would alone."""

from __future__ import annotations

import asyncio
import json
import re

from stackyard.engine import grammar
from stackyard.engine.sampling import SamplingParams
from stackyard.engine.scheduler import Delta, Engine
from tests.engine.test_scheduler import PROMPTS, greedy, run


async def constrained(
    engine: Engine, prompt: list[int], params: SamplingParams, spec: str
) -> list[Delta]:
    constraint = await engine.constraint(spec)
    return [d async for d in engine.generate(prompt, params, constraint=constraint)]


def text(deltas: list[Delta]) -> str:
    return "".join(d.text for d in deltas)


async def test_the_output_matches_the_grammar_and_ends_with_it(engine: Engine) -> None:
    spec = grammar.lark("start: /C[D-H]{2,5}I/")
    for prompt in PROMPTS:
        deltas = await constrained(engine, prompt, SamplingParams(max_tokens=50), spec)
        assert re.fullmatch(r"C[D-H]{2,5}I", text(deltas)), text(deltas)
        assert deltas[-1].finish_reason == "stop"


async def test_sampled_output_follows_a_json_schema(engine: Engine) -> None:
    """The character tokenizer's letters are A to v: a schema whose strings fit them."""
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "pattern": "^[A-Z]{1,6}$"}},
        "required": ["name"],
        "additionalProperties": False,
    }
    tokens = [b"<pad>", b"<eos>"] + [bytes([c]) for c in b'{}":, nameABCDEFGHIJKLMNOPQRSTUVWXYZ']
    json_engine = Engine(engine.model, JsonTokenizer(tokens))
    try:
        for seed in range(4):
            params = SamplingParams(max_tokens=60, temperature=1.0, seed=seed)
            deltas = await constrained(json_engine, [3, 4], params, grammar.json_schema(schema))
            value = json.loads(text(deltas))
            assert set(value) == {"name"}
            assert re.fullmatch("[A-Z]{1,6}", value["name"])
    finally:
        json_engine.stop()


class JsonTokenizer:
    """One token per character of a small alphabet that JSON can be written in (the schema's
    property names included: llguidance cannot write a text its tokenizer cannot encode)."""

    eos_token_id = 1
    pad_token_id = 0
    bos_token_id = None
    special_token_ids = [0, 1]

    def __init__(self, tokens: list[bytes]) -> None:
        self.tokens = tokens

    def __call__(self, text: str | bytes) -> list[int]:
        raw = text if isinstance(text, bytes) else text.encode()
        return [self.tokens.index(bytes([c])) for c in raw]

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return b"".join(self.tokens[t] for t in ids if 1 < t < len(self.tokens)).decode()


async def test_unconstrained_neighbours_are_unchanged(engine: Engine) -> None:
    alone = [text(await run(engine, p, greedy(12))) for p in PROMPTS]
    spec = grammar.lark("start: /[D-F]+/")
    mixed = await asyncio.gather(
        *(
            constrained(engine, p, greedy(12), spec) if i % 2 else run(engine, p, greedy(12))
            for i, p in enumerate(PROMPTS)
        )
    )
    for i, deltas in enumerate(mixed):
        if i % 2:
            assert re.fullmatch("[D-F]+", text(deltas))
        else:
            assert text(deltas) == alone[i]


async def test_logprobs_are_those_sampled_from(engine: Engine) -> None:
    params = SamplingParams(max_tokens=8, temperature=0, ignore_eos=True, logprobs=3)
    deltas = await run(engine, PROMPTS[0], params)
    scores = [s for d in deltas for s in d.logprobs]
    assert len(scores) == 8
    for score in scores:
        assert score.logprob <= 0
        assert len(score.top) == 3
        assert score.top[0][0] == score.token  # greedy: the likeliest
        assert score.top[0][1] == score.logprob
        assert [v for _, v in score.top] == sorted((v for _, v in score.top), reverse=True)
    assert text(deltas) == "".join(chr(ord("A") + s.token) for s in scores)


async def test_logprobs_under_a_grammar_name_only_allowed_tokens(engine: Engine) -> None:
    params = SamplingParams(max_tokens=8, temperature=0.7, seed=1, logprobs=5)
    deltas = await constrained(engine, PROMPTS[1], params, grammar.lark("start: /[D-E]{4}/"))
    scores = [s for d in deltas for s in d.logprobs]
    assert len(scores) == 4
    for score in scores:
        assert {t for t, _ in score.top} <= {3, 4}
        total = sum(2.718281828**v for _, v in score.top)
        assert abs(total - 1) < 1e-4  # all the mass is on the allowed tokens
