"""One small request through each door, with that door's official SDK: for the parity tests
of what runs on every door (admission, budgets, settlement, traces)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import openai

from tests.conftest import GatewayProcess, openai_sdk

#: What the request asks, on every door.
TEXT = "Hello there"


def anthropic_sdk(gateway: GatewayProcess, key: str = "unused") -> anthropic.Anthropic:
    """The official Anthropic client on ``gateway``, strict about the responses' shape."""
    return anthropic.Anthropic(
        base_url=gateway.url, api_key=key, max_retries=0, _strict_response_validation=True
    )


def _chat(gateway: GatewayProcess, key: str, model: str, headers: dict[str, str]) -> Any:
    with openai_sdk(gateway, key) as client:
        return client.chat.completions.with_raw_response.create(
            model=model,
            messages=[{"role": "user", "content": TEXT}],
            max_tokens=5,
            extra_headers=headers,
        )


def _messages(gateway: GatewayProcess, key: str, model: str, headers: dict[str, str]) -> Any:
    with anthropic_sdk(gateway, key) as client:
        return client.messages.with_raw_response.create(
            model=model,
            max_tokens=5,
            messages=[{"role": "user", "content": TEXT}],
            extra_headers=headers,
        )


def _responses(gateway: GatewayProcess, key: str, model: str, headers: dict[str, str]) -> Any:
    with openai_sdk(gateway, key) as client:
        return client.responses.with_raw_response.create(
            model=model, input=TEXT, max_output_tokens=16, extra_headers=headers
        )


def _completions(gateway: GatewayProcess, key: str, model: str, headers: dict[str, str]) -> Any:
    with openai_sdk(gateway, key) as client:
        return client.completions.with_raw_response.create(
            model=model, prompt=TEXT, max_tokens=5, extra_headers=headers
        )


def _embeddings(gateway: GatewayProcess, key: str, model: str, headers: dict[str, str]) -> Any:
    with openai_sdk(gateway, key) as client:
        return client.embeddings.with_raw_response.create(
            model=model, input=TEXT, extra_headers=headers
        )


#: Each door: one request (``gateway``, ``key``, ``model``, extra headers), the raw response.
CALLS: dict[str, Callable[[GatewayProcess, str, str, dict[str, str]], Any]] = {
    "/v1/chat/completions": _chat,
    "/v1/messages": _messages,
    "/v1/responses": _responses,
    "/v1/completions": _completions,
    "/v1/embeddings": _embeddings,
}

#: What each door's SDK raises for a 429.
RATE_LIMITED = (openai.RateLimitError, anthropic.RateLimitError)


def call(
    door: str,
    gateway: GatewayProcess,
    key: str,
    model: str,
    headers: dict[str, str] | None = None,
) -> Any:
    return CALLS[door](gateway, key, model, headers or {})


def refusal_says(door: str, error: openai.APIStatusError | anthropic.APIStatusError) -> str:
    """The words of a refusal, from the body in that door's error shape."""
    body: Any = error.body
    if door == "/v1/messages":
        assert body["type"] == "error"
        return str(body["error"]["type"]) + ": " + str(body["error"]["message"])
    return str(body["code"]) + ": " + str(body["message"])
