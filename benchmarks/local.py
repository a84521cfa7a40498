"""The in-process engine against the naive baseline, side by side in one run.

Naive: each request is its own ``model.generate`` call, one at a time (what a simple
``transformers`` server does). Engine: Stackyard's continuous-batching scheduler. Both decode
64 new tokens per request (end-of-sequence ignored, greedy), from the same chat prompts, with
1, 4 and 16 requests in flight.

    python -m benchmarks.local                 # SmolLM2-135M-Instruct on this machine's CPU
    python -m benchmarks.local --concurrency 1,4,16 --new-tokens 64 --device auto

``--grammar`` measures the engine with a ``json_schema`` grammar against free text instead,
same prompts, side by side (see ``benchmarks/_local_grammar.py``):

    python -m benchmarks.local --grammar --concurrency 1,16 --new-tokens 32
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import statistics
import sys
import time
from typing import Any

from stackyard.engine import loading, sources
from stackyard.engine.sampling import SamplingParams
from stackyard.engine.scheduler import Engine

QUESTIONS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain photosynthesis in one paragraph.",
    "List three uses of copper.",
    "Why is the sky blue?",
    "Give me a recipe for pancakes.",
    "What is a prime number?",
    "Describe a cat to someone who has never seen one.",
]


def prompts(tokenizer: Any, n: int) -> list[list[int]]:
    out = []
    for i in range(n):
        messages = [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]
        encoded: Any = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True
        )
        ids = encoded["input_ids"] if hasattr(encoded, "keys") else encoded
        out.append([int(t) for t in ids])
    return out


def naive(model: Any, batch: list[list[int]], new_tokens: int) -> tuple[float, list[float]]:
    """Sequential ``generate`` calls: (seconds for all, time to first token of each)."""
    import torch
    from transformers.generation.streamers import BaseStreamer

    class FirstToken(BaseStreamer):
        def __init__(self) -> None:
            self.calls = 0
            self.at = 0.0

        def put(self, value: Any) -> None:
            self.calls += 1
            if self.calls == 2:  # the first call carries the prompt
                self.at = time.perf_counter()

        def end(self) -> None:
            return None

    started = time.perf_counter()
    ttfts = []
    with torch.inference_mode():
        for prompt in batch:
            streamer = FirstToken()
            ids = torch.tensor([prompt], device=model.device)
            model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                streamer=streamer,
            )
            ttfts.append(streamer.at - started)
    return time.perf_counter() - started, ttfts


async def engine_run(
    engine: Engine, batch: list[list[int]], new_tokens: int
) -> tuple[float, list[float], int]:
    started = time.perf_counter()
    params = SamplingParams(max_tokens=new_tokens, temperature=0, ignore_eos=True)

    async def one(prompt: list[int]) -> tuple[float, int]:
        first = 0.0
        tokens = 0
        async for delta in engine.generate(prompt, params):
            if not first:
                first = time.perf_counter() - started
            if delta.finish_reason:
                tokens = delta.completion_tokens
        return first, tokens

    results = await asyncio.gather(*(one(p) for p in batch))
    return time.perf_counter() - started, [r[0] for r in results], sum(r[1] for r in results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--skip-naive-above", type=int, default=16)
    parser.add_argument(
        "--grammar",
        action="store_true",
        help="the engine with a json_schema grammar against free text (no naive baseline)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="with --grammar: best of these")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    device = loading.pick_device(args.device)
    source = sources.resolve(args.model, "chat")
    load_started = time.perf_counter()
    model, tokenizer = loading.load_causal_lm(source, device, "auto")
    print(
        f"loaded {source.label} on {device} in {time.perf_counter() - load_started:.1f} s",
        flush=True,
    )
    engine = Engine(model, tokenizer, device=device, max_batch=max(levels), max_queue=1024)
    command = "python -m benchmarks.local " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.grammar:
        from benchmarks import _local_grammar

        batches = {level: prompts(tokenizer, level) for level in levels}
        rows = _local_grammar.compare(engine, batches, args.new_tokens, args.rounds)
        engine.stop()
        _local_grammar.report(
            rows,
            f"{datetime.date.today().isoformat()}, {os.cpu_count()} cores, {device}, "
            f"{args.new_tokens} new tokens per request, greedy, best of {args.rounds} rounds; "
            f"command: `{command.strip()}`",
        )
        return 0
    warm = prompts(tokenizer, 2)
    naive(model, warm[:1], 4)
    asyncio.run(engine_run(engine, warm, 4))
    rows = []
    for level in levels:
        batch = prompts(tokenizer, level)
        expected = level * args.new_tokens
        seconds, ttft, produced = asyncio.run(engine_run(engine, batch, args.new_tokens))
        assert produced == expected, (produced, expected)
        row: dict[str, Any] = {
            "concurrency": level,
            "engine_tps": expected / seconds,
            "engine_ttft": statistics.mean(ttft),
        }
        if level <= args.skip_naive_above:
            naive_seconds, naive_ttft = naive(model, batch, args.new_tokens)
            row["naive_tps"] = expected / naive_seconds
            row["naive_ttft"] = statistics.mean(naive_ttft)
        rows.append(row)
        print(row, flush=True)
    engine.stop()
    print()
    print(
        f"{datetime.date.today().isoformat()}, {os.cpu_count()} cores, {device}, "
        f"{args.new_tokens} new tokens per request, greedy; command: `{command.strip()}`"
    )
    print()
    print(
        "| requests in flight | naive tokens/s | engine tokens/s | speed-up "
        "| naive mean TTFT (s) | engine mean TTFT (s) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        naive_tps = row.get("naive_tps")
        ratio = f"{row['engine_tps'] / naive_tps:.1f}x" if naive_tps else "-"
        print(
            f"| {row['concurrency']} | {naive_tps or 0:.1f} | {row['engine_tps']:.1f} | {ratio} "
            f"| {row.get('naive_ttft', 0):.2f} | {row['engine_ttft']:.2f} |"
        )
    top = rows[-1]
    if "naive_tps" in top:
        ratio = top["engine_tps"] / top["naive_tps"]
        verdict = "PASS" if ratio >= 4 and top["engine_ttft"] < top["naive_ttft"] else "FAIL"
        print(
            f"\n- at {top['concurrency']} in flight: {ratio:.1f}x the naive throughput "
            f"(target 4x), mean TTFT {top['engine_ttft']:.2f} s "
            f"vs {top['naive_ttft']:.2f} s: {verdict}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
