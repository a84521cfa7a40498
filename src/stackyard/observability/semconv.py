"""Span attributes after OpenTelemetry's GenAI semantic conventions, plus Stackyard's own.

https://opentelemetry.io/docs/specs/semconv/gen-ai/ : ``gen_ai.operation.name``,
``gen_ai.provider.name``, ``gen_ai.request.*``, ``gen_ai.response.*``, ``gen_ai.usage.*``.
Every ``gen_ai.*`` name used is one the ``opentelemetry-semantic-conventions`` package lists
and does not deprecate (``tests/observability/test_semconv.py`` holds it to that).
"""

from __future__ import annotations

from typing import Any

OPERATIONS = {
    "chat": "chat",
    "messages": "chat",
    "responses": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
}

#: Our provider names, as the conventions' well-known ``gen_ai.provider.name`` values.
PROVIDERS = {"openai": "openai", "anthropic": "anthropic"}

#: Request fields and the attributes they are recorded as.
REQUEST_PARAMETERS = {
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
    "n": "gen_ai.request.choice.count",
    "dimensions": "gen_ai.embeddings.dimension.count",
}


def operation(endpoint: str) -> str:
    return OPERATIONS.get(endpoint, endpoint)


def provider_name(provider: str) -> str:
    return PROVIDERS.get(provider, provider)


def request_attributes(endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation(endpoint),
        "gen_ai.request.model": str(body.get("model")),
    }
    for field, name in REQUEST_PARAMETERS.items():
        value = body.get(field)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[name] = value
    stop = body.get("stop") or body.get("stop_sequences")
    if isinstance(stop, str):
        attributes["gen_ai.request.stop_sequences"] = [stop]
    elif isinstance(stop, list):
        attributes["gen_ai.request.stop_sequences"] = [str(s) for s in stop]
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and isinstance(response_format.get("type"), str):
        attributes["gen_ai.output.type"] = (
            "json" if response_format["type"].startswith("json") else response_format["type"]
        )
    if body.get("stream"):
        attributes["gen_ai.request.stream"] = True
    return attributes


def finish_reasons(response: dict[str, Any]) -> list[str]:
    """From an OpenAI completion (``choices[].finish_reason``) or an Anthropic message
    (``stop_reason``)."""
    reasons = [
        str(c.get("finish_reason"))
        for c in response.get("choices") or ()
        if isinstance(c, dict) and c.get("finish_reason")
    ]
    if not reasons and response.get("stop_reason"):
        reasons = [str(response["stop_reason"])]
    return reasons


def usage_tokens(usage: dict[str, Any] | None) -> tuple[int, int]:
    """(input, output) from an OpenAI or Anthropic usage object."""
    if not usage:
        return 0, 0
    prompt = usage.get("prompt_tokens", usage.get("input_tokens")) or 0
    completion = usage.get("completion_tokens", usage.get("output_tokens")) or 0
    return int(prompt), int(completion)
