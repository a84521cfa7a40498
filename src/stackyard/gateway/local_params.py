"""What the in-process engine honours of a chat-completions request.

Nothing a client sends is silently dropped: a field the engine does not act on is a 400 naming
it, so a client fails at the request instead of later, on an answer it did not ask for.
Fields that only label a request (``user``, ``metadata``, ``store`` and the like) change no
output and are accepted; a field sent as ``null`` is as good as absent.
"""

from __future__ import annotations

from typing import Any

from stackyard.gateway.providers.base import UpstreamError

#: Fields the engine acts on (some only with certain values: see :func:`check`).
HONOURED = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "n",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "seed",
        "stop",
        "modalities",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "logprobs",
        "top_logprobs",
    }
)

#: Fields that label a request without changing its output.
LABELS = frozenset(
    {
        "user",
        "metadata",
        "store",
        "service_tier",
        "prompt_cache_key",
        "safety_identifier",
    }
)

#: Why a field is refused, where there is more to say than "not supported".
REASONS = {
    "audio": "local models answer in text only",
    "web_search_options": "local models do not search the web",
    "functions": "use 'tools' (the legacy 'functions' are not served)",
    "function_call": "use 'tool_choice' (the legacy 'function_call' is not served)",
    "reasoning_effort": "this is not a reasoning model",
    "prediction": "predicted outputs are not used by the local engine",
}


def refuse(param: str, why: str) -> UpstreamError:
    return UpstreamError(
        "client",
        f"'{param}' is not supported by local models: {why}",
        status=400,
        param=param,
    )


def check(body: dict[str, Any]) -> None:
    """Raise a 400 for the first field of ``body`` that the engine would not honour."""
    for name, value in body.items():
        if value is None or name in LABELS:
            continue
        if name not in HONOURED:
            raise refuse(name, REASONS.get(name, "the local engine does not act on it"))
    if body.get("top_logprobs") is not None and not body.get("logprobs"):
        raise refuse("top_logprobs", "it needs 'logprobs': true")
    modalities = body.get("modalities")
    if modalities is not None and list(modalities) != ["text"]:
        raise refuse("modalities", REASONS["audio"])
    for index, message in enumerate(body.get("messages") or ()):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for part_index, part in enumerate(content):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind not in ("text", "input_text"):
                    raise refuse(
                        f"messages[{index}].content[{part_index}]",
                        f"local models read text only, not '{kind}' parts",
                    )
