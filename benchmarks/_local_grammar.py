"""Decoding speed of the in-process engine with a ``json_schema`` grammar against free text, side
by side in one run (``python -m benchmarks.local --grammar``).

Both decode the same chat prompts, greedy, the same number of new tokens per request (end of
sequence ignored). The schema's shortest answer is far longer than that (an array of at least
20 objects, each a name and a count), so a constrained output never completes early: every
request stops at ``max_tokens`` in both runs. A constrained request makes its grammar's matcher
(``Engine.constraint``, as the gateway does per request) inside the timed span, so its time to
first token includes that; every decoding step then masks its row of logits. The rounds
alternate free and constrained; each figure is the best round's (the least disturbed by
whatever else runs on the machine).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

from stackyard.engine import grammar
from stackyard.engine.sampling import SamplingParams
from stackyard.engine.scheduler import Engine

#: A schema whose shortest answer is hundreds of tokens: objects, strings and integers.
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array",
            "minItems": 20,
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 20},
                    "count": {"type": "integer", "minimum": 0, "maximum": 1000},
                },
                "required": ["name", "count"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["items"],
    "additionalProperties": False,
}


async def run(
    engine: Engine, batch: list[list[int]], new_tokens: int, spec: str | None
) -> tuple[float, list[float], list[str]]:
    """(seconds for all, time to first token of each, each output's text)."""
    params = SamplingParams(max_tokens=new_tokens, temperature=0, ignore_eos=True)
    started = time.perf_counter()

    async def one(prompt: list[int]) -> tuple[float, str, int]:
        constraint = None if spec is None else await engine.constraint(spec)
        first = 0.0
        parts = []
        tokens = 0
        async for delta in engine.generate(prompt, params, constraint=constraint):
            if not first:
                first = time.perf_counter() - started
            parts.append(delta.text)
            if delta.error:
                raise RuntimeError(delta.error)
            if delta.finish_reason:
                tokens = delta.completion_tokens
        assert tokens == new_tokens, (tokens, new_tokens)
        return first, "".join(parts), tokens

    results = await asyncio.gather(*(one(p) for p in batch))
    return time.perf_counter() - started, [r[0] for r in results], [r[1] for r in results]


def compare(
    engine: Engine, batches: dict[int, list[list[int]]], new_tokens: int, rounds: int
) -> list[dict[str, Any]]:
    """Per level of requests in flight: tokens/s and mean TTFT, free and constrained."""
    spec = grammar.json_schema(SCHEMA)
    warm = next(iter(batches.values()))[:1]
    asyncio.run(run(engine, warm, 4, None))
    asyncio.run(run(engine, warm, 4, spec))  # llguidance's view of the tokenizer, made once
    rows = []
    for level, batch in batches.items():
        best: dict[str, tuple[float, float]] = {}
        for _ in range(rounds):
            for kind, used in (("free", None), ("json_schema", spec)):
                seconds, firsts, texts = asyncio.run(run(engine, batch, new_tokens, used))
                if used is not None:  # the mask held: each output is the schema's beginning
                    assert all(t.startswith('{"items": [{"name": "') for t in texts), texts[0]
                tps = level * new_tokens / seconds
                if kind not in best or tps > best[kind][0]:
                    best[kind] = (tps, statistics.mean(firsts))
        row: dict[str, Any] = {"concurrency": level}
        for kind, (tps, ttft) in best.items():
            row[f"{kind}_tps"], row[f"{kind}_ttft"] = tps, ttft
        rows.append(row)
        print(row, flush=True)
    return rows


def report(rows: list[dict[str, Any]], heading: str) -> None:
    print()
    print(heading)
    print(f"\nSchema: `{json.dumps(SCHEMA)}`\n")
    print(
        "| requests in flight | free text tokens/s | json_schema tokens/s | json_schema / free "
        "| free mean TTFT (s) | json_schema mean TTFT (s) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        ratio = row["json_schema_tps"] / row["free_tps"]
        print(
            f"| {row['concurrency']} | {row['free_tps']:.1f} | {row['json_schema_tps']:.1f} "
            f"| {ratio:.2f} | {row['free_ttft']:.2f} | {row['json_schema_ttft']:.2f} |"
        )
