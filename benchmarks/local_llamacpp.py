"""Stackyard's in-process engine against llama.cpp, both as OpenAI-compatible servers on the
same GGUF file (SmolLM2-135M-Instruct, Q4_1), side by side in one run.

llama.cpp is what users would run instead on a CPU (Ollama and LM Studio are built on it): its
server comes from ``llama-cpp-python[server]``, installed from its lock into its own venv
(``benchmarks/.venvs/llamacpp``; the first run compiles it, about 8 minutes on 2 cores, with
portable kernels: the native build crashes in decode on some CPUs). Stackyard runs as
``stackyard serve`` with the embedded default's model entry.

The same client drives both, over HTTP: greedy decoding, ``max_tokens`` new tokens per request.
Reported: time to first token (streamed, one request at a time), completion tokens per second
(from each answer's ``usage``) at 1 and 16 requests in flight, and each server's resident
memory (the process and its children) after the run.

    python -m benchmarks.local_llamacpp
    python -m benchmarks.local_llamacpp --max-tokens 64 --requests 16 --threads 2
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

from benchmarks._procs import Server, _locked_venv, free_port, stop_all
from stackyard import __version__
from stackyard.engine import sources

LLAMACPP_VERSION = "0.3.36"  # llama-cpp-python, as benchmarks/requirements/llamacpp.in pins it
#: Portable CPU kernels: llama.cpp's default native build uses AVX-512/AMX kernels that crash in
#: decode on these machines.
CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF "
    "-DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF"
)
PROMPTS = [
    "Write a long story about a lighthouse keeper.",
    "Explain in detail how a bicycle works.",
    "Describe a walk through a busy market.",
    "Write a letter to a friend about your garden.",
    "Explain how bread is made, step by step.",
    "Describe the life of a honeybee.",
    "Write a long poem about winter mornings.",
    "Explain how rain forms, in detail.",
]


@dataclass
class Result:
    ttft_ms: list[float] = field(default_factory=list)
    rates: dict[int, float] = field(default_factory=dict)  # in flight -> completion tokens/s
    rss_mib: float = 0.0
    version: str = ""


def llamacpp_python() -> Path:
    venv = Path(__file__).resolve().parent / ".venvs" / "llamacpp"
    os.environ.setdefault("CMAKE_ARGS", CMAKE_ARGS)
    os.environ.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    if not _locked_venv(venv, venv / ".ok"):
        raise SystemExit("benchmarks/requirements/llamacpp.txt is missing (make bench-lock)")
    return venv / "bin" / "python"


def start_llamacpp(gguf: str, threads: int, folder: Path) -> tuple[Server, str, str]:
    python = llamacpp_python()
    port = free_port()
    command = [
        str(python),
        "-m",
        "llama_cpp.server",
        "--model",
        gguf,
        "--model_alias",
        "smollm2",
        "--n_threads",
        str(threads),
        "--n_ctx",
        "4096",
        "--interrupt_requests",
        "False",  # else a new request cuts the one being answered
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    server = Server("llama.cpp", command, log=folder / "llamacpp.log")
    url = f"http://127.0.0.1:{port}"
    server.wait_http(f"{url}/v1/models", timeout=120)
    version = os.popen(f"{python} -c 'import llama_cpp; print(llama_cpp.__version__)'").read()
    return server, f"{url}/v1", version.strip()


def start_stackyard(folder: Path, threads: int) -> tuple[Server, str, str]:
    config = {
        "models": [
            {
                "name": "smollm2",
                "provider": "local",
                "model": "smollm2",
                "defaults": {"temperature": 0},
            }
        ]
    }  # the database: stackyard.db beside the config
    path = folder / "stackyard.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "stackyard",
        "serve",
        "--config",
        str(path),
        "--port",
        str(port),
    ]
    env = {"OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    server = Server("stackyard", command, env=env, log=folder / "stackyard.log")
    server.wait_http(f"http://127.0.0.1:{port}/ready", timeout=180)
    return server, f"http://127.0.0.1:{port}/v1", str(__version__)


async def _ask(
    session: aiohttp.ClientSession, url: str, prompt: str, max_tokens: int, stream: bool
) -> tuple[int, float]:
    """(completion tokens, seconds to the first token) of one greedy request."""
    body = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": stream,
    }
    started = time.perf_counter()
    async with session.post(f"{url}/chat/completions", data=orjson.dumps(body)) as response:
        if response.status != 200:
            raise RuntimeError(f"{url}: {response.status} {await response.text()}")
        if not stream:
            data = orjson.loads(await response.read())
            return int(data["usage"]["completion_tokens"]), 0.0
        first, tokens = 0.0, 0
        async for line in response.content:
            if not line.startswith(b"data: ") or line.strip() == b"data: [DONE]":
                continue
            chunk = orjson.loads(line[6:])
            if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                tokens += 1
                first = first or time.perf_counter() - started
        return tokens, first


async def measure(url: str, max_tokens: int, requests: int) -> tuple[list[float], dict[int, float]]:
    headers = {"content-type": "application/json", "authorization": "Bearer unused"}
    timeout = aiohttp.ClientTimeout(total=900)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        await _ask(session, url, "Hello!", 8, False)  # warm-up
        ttft = [
            (await _ask(session, url, PROMPTS[i % len(PROMPTS)], max_tokens, True))[1] * 1000
            for i in range(4)
        ]
        rates: dict[int, float] = {}
        for in_flight in (1, 16):
            started = time.perf_counter()
            semaphore = asyncio.Semaphore(in_flight)

            async def one(index: int, semaphore: asyncio.Semaphore = semaphore) -> int:
                async with semaphore:
                    prompt = PROMPTS[index % len(PROMPTS)]
                    return (await _ask(session, url, prompt, max_tokens, False))[0]

            count = requests if in_flight > 1 else max(4, requests // 4)
            tokens = sum(await asyncio.gather(*(one(i) for i in range(count))))
            rates[in_flight] = tokens / (time.perf_counter() - started)
        return ttft, rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--requests", type=int, default=16, help="requests at 16 in flight")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)
    gguf = sources.resolve("smollm2").label
    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        try:
            starts: list[tuple[str, Callable[[], tuple[Server, str, str]]]] = [
                ("llama.cpp", lambda: start_llamacpp(gguf, args.threads, folder)),
                ("stackyard", lambda: start_stackyard(folder, args.threads)),
            ]
            for name, start in starts:
                print(f"starting {name} ...", flush=True)
                server, url, version = start()
                ttft, rates = asyncio.run(measure(url, args.max_tokens, args.requests))
                results[name] = Result(ttft, rates, server.rss_mib(), version)
                server.stop()  # one at a time: each has the machine's cores to itself
        finally:
            stop_all()
    report(results, args)
    return 0


def report(results: dict[str, Result], args: Any) -> None:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"\nSmolLM2-135M-Instruct Q4_1 GGUF, {args.max_tokens} new tokens, greedy, "
        f"{args.threads} threads, {os.cpu_count()} cores ({when})"
    )
    print(f"{'server':<22}{'TTFT p50 ms':>12}{'tok/s @1':>10}{'tok/s @16':>11}{'RSS MiB':>9}")
    for name, result in results.items():
        print(
            f"{name + ' ' + result.version:<22}{statistics.median(result.ttft_ms):>12.0f}"
            f"{result.rates[1]:>10.1f}{result.rates[16]:>11.1f}{result.rss_mib:>9.0f}"
        )
    if len(results) == 2:
        ours, theirs = results["stackyard"], results["llama.cpp"]
        print(
            "stackyard / llama.cpp: "
            f"TTFT {statistics.median(ours.ttft_ms) / statistics.median(theirs.ttft_ms):.2f}x, "
            f"tok/s @1 {ours.rates[1] / theirs.rates[1]:.2f}x, "
            f"@16 {ours.rates[16] / theirs.rates[16]:.2f}x, "
            f"RSS {ours.rss_mib / theirs.rss_mib:.2f}x"
        )


if __name__ == "__main__":
    raise SystemExit(main())
