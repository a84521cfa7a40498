"""Realistic request traces for the trace benchmark: a root span with the GenAI attributes the
recorder sets, the admission span, one upstream attempt (or two, after a failed first), and a
chat request body with its answer (with order numbers and emails for the redactor to find)."""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from stackyard.observability.spans import CLIENT, SERVER, RequestTrace, Span, new_span_id
from stackyard.observability.writer import Finished

VOCABULARY = (
    "the order invoice customer shipment refund policy account summary report quarterly "
    "revenue forecast table column query index latency error retry timeout budget team model "
    "prompt answer question explain translate summarise classify extract list compare draft "
    "email meeting notes contract clause warranty delivery address product review rating "
    "support ticket priority escalation schedule deadline project milestone risk owner"
)
WORDS = tuple(VOCABULARY.split())
SYSTEM_PROMPTS = (
    "You are a helpful assistant for an online shop. Answer briefly and politely, and never "
    "invent order details: when you do not know, say so and offer to open a support ticket.",
    "You are a careful analyst. Reply in plain English with short paragraphs; cite the numbers "
    "you were given and say which ones you computed. Use a table when comparing items.",
    "You extract structured data from text. Reply with JSON only, matching the schema the user "
    "gives, with null for missing fields and no commentary before or after the object.",
)
MODELS = (("gpt-4o-mini", "openai"), ("claude-haiku", "anthropic"), ("llama-3-8b", "vllm"))


def _sentence(rng: random.Random, words: int) -> str:
    chosen = [rng.choice(WORDS) for _ in range(words)]
    if rng.random() < 0.3:  # order numbers, dates and amounts: digits for the redactor to scan
        chosen.insert(rng.randrange(len(chosen)), f"#{rng.randrange(10**5, 10**7)}")
    if rng.random() < 0.05:
        chosen.insert(rng.randrange(len(chosen)), f"{rng.choice(WORDS)}@example.com")
    return " ".join(chosen).capitalize() + "."


def _text(rng: random.Random, chars: int) -> str:
    parts: list[str] = []
    while sum(len(p) + 1 for p in parts) < chars:
        parts.append(_sentence(rng, rng.randrange(6, 16)))
    return " ".join(parts)


def make_trace(rng: random.Random, now_ns: int) -> Finished:
    """One chat request as the gateway records it: the root span with the GenAI attributes the
    recorder sets, the admission span, one upstream attempt (or two, after a failed first)."""
    model, provider = rng.choice(MODELS)
    stream = rng.random() < 0.3
    start = now_ns - rng.randrange(3_600 * 10**9)
    duration = rng.randrange(150, 2_500) * 10**6
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": rng.choice(SYSTEM_PROMPTS)},
            {"role": "user", "content": _text(rng, rng.randrange(150, 450))},
        ],
        "temperature": rng.choice((0.0, 0.2, 0.7)),
        "max_tokens": rng.choice((256, 512, 1024)),
    }
    if stream:
        body["stream"] = True
    root_attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": model,
        "gen_ai.request.temperature": body["temperature"],
        "gen_ai.request.max_tokens": body["max_tokens"],
    }
    if stream:
        root_attributes["stackyard.stream"] = True
    root = Span(f"chat {model}", new_span_id(), None, start, start + duration, SERVER)
    root.attributes = root_attributes
    request_id = f"req_{uuid.UUID(int=rng.getrandbits(128)).hex[:24]}"
    trace = RequestTrace(
        request_id,
        f"{rng.getrandbits(128) or 1:032x}",
        root,
        "chat",
        model,
        body,
        session_id=f"sess_{rng.randrange(2_000)}" if rng.random() < 0.4 else None,
        metadata={"feature": rng.choice(("search", "support", "reports"))},
        tags=["prod"] if rng.random() < 0.5 else None,
        stream=stream,
    )
    admitted = start + rng.randrange(20_000, 200_000)
    trace.child("gateway.admission", start + 5_000, admitted)
    failed_first = rng.random() < 0.15
    status = 502 if rng.random() < 0.03 else 200
    deployment = f"{model}#0"
    attempts = 2 if failed_first else 1
    attempt_start = admitted + 10_000
    for index in range(attempts):
        last = index == attempts - 1
        end = start + duration - 50_000 if last else attempt_start + rng.randrange(5, 60) * 10**6
        deployment = f"{model}#{index}"
        span = trace.child(
            f"chat {model}",
            attempt_start,
            end,
            **{
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": model,
                "stackyard.deployment": deployment,
                "stackyard.model": model,
                "stackyard.attempt": index + 1,
                "stackyard.fallback": False,
                "server.address": f"https://{provider}.upstream.example/v1",
            },
        )
        span.kind = CLIENT
        if not last:
            span.fail("upstream answered 429: rate limited", "rate_limited")
        elif status != 200:
            span.fail("upstream answered 502: bad gateway", "upstream_error")
        attempt_start = end + 10_000
    input_tokens = sum(len(m["content"]) for m in body["messages"]) // 4
    output_tokens = 0
    if status == 200:
        content = _text(rng, rng.randrange(200, 700))
        output_tokens = len(content) // 4
        trace.response = {
            "id": f"chatcmpl-{rng.getrandbits(64):x}",
            "object": "chat.completion",
            "created": start // 10**9,
            "model": f"{model}-2025-01-01",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": input_tokens,
                "completion_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            },
        }
        trace.finish_reasons = ["stop"]
        trace.response_model = f"{model}-2025-01-01"
        root_attributes["gen_ai.response.model"] = trace.response_model
        root_attributes["gen_ai.response.finish_reasons"] = ["stop"]
        root_attributes["gen_ai.usage.input_tokens"] = input_tokens
        root_attributes["gen_ai.usage.output_tokens"] = output_tokens
        if stream:
            trace.first_chunk_ns = admitted + rng.randrange(80, 400) * 10**6
            root_attributes["stackyard.time_to_first_chunk_ms"] = (
                trace.first_chunk_ns - start
            ) / 1e6
            root.events.append(("gen_ai.first_chunk", trace.first_chunk_ns, {}))
    cost = input_tokens * 0.15e-6 + output_tokens * 0.6e-6
    root_attributes["http.response.status_code"] = status
    root_attributes["stackyard.request_id"] = request_id
    root_attributes["stackyard.cost_usd"] = cost
    root_attributes["stackyard.cache.hit"] = False
    root_attributes["stackyard.deployment"] = deployment
    root_attributes["gen_ai.provider.name"] = provider
    root_attributes["stackyard.key_id"] = f"key_{rng.randrange(50)}"
    root_attributes["stackyard.team_id"] = f"team_{rng.randrange(8)}"
    if trace.session_id:
        root_attributes["session.id"] = trace.session_id
    if trace.tags:
        root_attributes["stackyard.tags"] = trace.tags
    if status != 200:
        root.fail("upstream answered 502: bad gateway", "upstream_error")
    return Finished(
        trace,
        root_attributes["stackyard.key_id"],
        root_attributes["stackyard.team_id"],
        None,
        status,
        None if status == 200 else "upstream_error",
        deployment,
        provider,
        input_tokens,
        output_tokens,
        cost,
        False,
        attempts,
        "full",
    )


def make_traces(count: int, seed: int = 7) -> list[Finished]:
    rng = random.Random(seed)
    now = time.time_ns()
    return [make_trace(rng, now) for _ in range(count)]


def span_total(traces: list[Finished]) -> int:
    return sum(1 + len(f.trace.spans) for f in traces)
