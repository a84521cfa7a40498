"""Experiments: a prompt version (or a model, or both) over a dataset, through the gateway,
with bounded concurrency; every output, score, token count, cost and latency is kept."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp

from stackyard.evals.dataset import Item
from stackyard.evals.scorers.base import Scorer


@dataclass
class Target:
    """What is evaluated: a registry prompt (by label or version), a model, or both."""

    prompt: dict[str, Any] | None = None
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        parts = []
        if self.prompt:
            ref = self.prompt.get("version") or self.prompt.get("label") or "production"
            sep = "@" if self.prompt.get("version") else ":"
            parts.append(f"{self.prompt['name']}{sep}{ref}")
        if self.model:
            parts.append(self.model)
        return " on ".join(parts) or "?"


@dataclass
class ItemResult:
    item_id: str
    output: str
    scores: dict[str, float]
    reasons: dict[str, str]
    latency_ms: float
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    prompt_version: str | None = None
    error: str | None = None


@dataclass
class Run:
    name: str
    target: str
    results: list[ItemResult]
    started_at: float
    seconds: float

    def scores(self, scorer: str) -> dict[str, float]:
        return {r.item_id: r.scores.get(scorer, 0.0) for r in self.results}

    def mean(self, scorer: str) -> float:
        values = list(self.scores(scorer).values())
        return sum(values) / len(values) if values else 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Run:
        results = [ItemResult(**r) for r in data["results"]]
        return cls(data["name"], data["target"], results, data["started_at"], data["seconds"])


class GatewayClient:
    """Chat and embeddings through the gateway (also the model-based scorers' judge)."""

    def __init__(self, base_url: str, api_key: str | None, *, timeout: float = 300) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/v1") + "/v1"
        self.headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> GatewayClient:
        self._session = aiohttp.ClientSession(headers=self.headers, timeout=self.timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(self, path: str, body: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        assert self._session is not None, "use 'async with GatewayClient(...)'"
        async with self._session.post(f"{self.base_url}{path}", json=body) as response:
            data = await response.json(content_type=None)
            if response.status != 200:
                error = (data or {}).get("error", {}) if isinstance(data, dict) else {}
                raise RuntimeError(f"{response.status}: {error.get('message') or data}")
            return data, response.headers

    async def chat(self, model: str, messages: list[dict[str, Any]]) -> str:
        data, _ = await self.post(
            "/chat/completions", {"model": model, "messages": messages, "temperature": 0}
        )
        return str(data["choices"][0]["message"]["content"] or "")

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        data, _ = await self.post(
            "/embeddings", {"model": model, "input": texts, "encoding_format": "float"}
        )
        return [d["embedding"] for d in sorted(data["data"], key=lambda d: d["index"])]


def request_body(target: Target, item: Item) -> dict[str, Any]:
    body: dict[str, Any] = dict(target.params)
    if target.prompt is not None:
        variables = item.input if isinstance(item.input, dict) else {"input": item.input}
        body["prompt"] = {**target.prompt, "variables": variables}
        body["messages"] = []
    else:
        text = item.input if isinstance(item.input, str) else json.dumps(item.input)
        body["messages"] = [{"role": "user", "content": text}]
    if target.model:
        body["model"] = target.model
    return body


async def run_experiment(
    name: str,
    items: Sequence[Item],
    target: Target,
    scorers: Sequence[Scorer],
    gateway: GatewayClient,
    *,
    concurrency: int = 8,
    progress: Callable[[int], None] | None = None,
) -> Run:
    started = time.time()
    clock = time.perf_counter()
    limit = asyncio.Semaphore(concurrency)

    async def one(item: Item) -> ItemResult:
        async with limit:
            began = time.perf_counter()
            try:
                data, headers = await gateway.post("/chat/completions", request_body(target, item))
            except Exception as exc:
                result = ItemResult(item.id, "", {}, {}, 0.0, error=str(exc)[:500])
            else:
                usage = data.get("usage") or {}
                result = ItemResult(
                    item.id,
                    str(data["choices"][0]["message"].get("content") or ""),
                    {},
                    {},
                    (time.perf_counter() - began) * 1000,
                    int(usage.get("prompt_tokens") or 0),
                    int(usage.get("completion_tokens") or 0),
                    float(headers.get("x-stackyard-cost-usd") or 0),
                    headers.get("x-stackyard-prompt"),
                )
            for scorer in scorers:
                if result.error is not None:
                    result.scores[scorer.name] = 0.0
                    continue
                try:
                    scored = await scorer.score(result.output, item, gateway)
                except Exception as exc:
                    result.scores[scorer.name] = 0.0
                    result.reasons[scorer.name] = f"scorer failed: {exc}"[:300]
                else:
                    result.scores[scorer.name] = scored.value
                    if scored.reason:
                        result.reasons[scorer.name] = scored.reason
            if progress is not None:
                progress(1)
            return result

    results = await asyncio.gather(*(one(item) for item in items))
    return Run(name, target.describe(), list(results), started, time.perf_counter() - clock)
