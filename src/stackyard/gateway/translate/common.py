"""Small helpers shared by the translators."""

from __future__ import annotations

import os
import time
from collections.abc import Collection
from typing import Any

import orjson

from stackyard.gateway.providers.base import Body, UpstreamError

#: Name of the tool forced on Anthropic to honour OpenAI's ``response_format``.
JSON_TOOL = "json_output"
#: Chat-completions parameters with the values that ask nothing of a model (their defaults):
#: a translation to an API that lacks one refuses any other value, naming it.
ASKS_NOTHING: dict[str, tuple[Any, ...]] = {
    "n": (None, 1),
    "stop": (None, [], ""),
    "seed": (None,),
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "frequency_penalty": (None, 0, 0.0),
    "presence_penalty": (None, 0, 0.0),
    "logit_bias": (None, {}),
    "modalities": (None, ["text"]),
    "audio": (None,),
    "prediction": (None,),
    "reasoning_effort": (None, "none"),
    "web_search_options": (None,),
    "functions": (None, []),
    "function_call": (None,),
    "store": (None, False),
    "metadata": (None, {}),
    "verbosity": (None, "medium"),
    "prompt_cache_key": (None, ""),
    "prompt_cache_retention": (None,),
}


def lacking(*names: str) -> dict[str, tuple[Any, ...]]:
    """The parameters an API lacks, each with the values that ask nothing of it."""
    return {name: ASKS_NOTHING[name] for name in names}


def refused(
    body: Body, carried: Collection[str], lacks: dict[str, tuple[Any, ...]]
) -> tuple[str, bool] | None:
    """The first parameter of ``body`` a translation cannot honour, and whether the API lacks
    it (sent with a value that asks something of it) rather than not knowing it at all
    (neither ``carried`` over nor in ``lacks``); None when every one is honoured."""
    for name in body:
        if name not in carried and name not in lacks:
            return name, False
    for name, harmless in lacks.items():
        if body.get(name) not in harmless:
            return name, True
    return None


def new_id(prefix: str) -> str:
    return prefix + os.urandom(12).hex()


def now() -> int:
    return int(time.time())


def text_of(content: Any) -> str:
    """The text of an OpenAI message content (a string or a list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(
        part.get("text", "")
        for part in content
        if isinstance(part, dict) and part.get("type") in ("text", "input_text")
    )


def parse_arguments(arguments: Any, where: str) -> Any:
    """A tool call's JSON arguments string as an object (Anthropic's ``input``)."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        raise UpstreamError(
            "client", f"{where}: tool call arguments are not valid JSON", status=400
        ) from None
    return value


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class ChunkStream:
    """What a translated stream's ``chat.completion.chunk`` objects share: one id, time and
    model, and ``usage: null`` on each when the client asked for a usage chunk at the end."""

    def __init__(self, *, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.id = new_id("chatcmpl-")
        self.created = now()
        self.model: str | None = None

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def _end(self, finish: str, usage: dict[str, Any]) -> list[dict[str, Any]]:
        """The last chunk with its finish reason, then the usage chunk if asked for."""
        out = [self._chunk({}, finish)]
        if self.include_usage:
            out.append({**self._chunk({}), "choices": [], "usage": usage})
        return out
