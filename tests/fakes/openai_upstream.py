"""A fake OpenAI server speaking the exact wire format, with fault injection.

A real aiohttp server runs in a background thread with its own event loop, so synchronous tests,
async tests and a gateway subprocess all reach it over TCP on 127.0.0.1. Routes live under
``/{deployment}/v1/...``: the first path segment names the gateway deployment that made the call,
so a test can see who was asked and queue faults for that deployment alone.

Answers are deterministic: chat content is ``"[{deployment}] echo: {last user text}"``, token
counts are whitespace-separated words, embeddings derive from a hash of the input.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import re
import socket
import struct
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from aiohttp import web

FaultKind = Literal["status", "reset", "delay", "cut_stream", "stream_error", "slow_chunks"]
Handler = Callable[[web.Request, str, Any, "Fault | None"], Awaitable[web.StreamResponse]]

_RECEIVED = web.RequestKey("fake_openai_received", float)
_FINGERPRINT = "fp_fake0001"
_DEFAULT_ERRORS: dict[int, tuple[str, str | None, str]] = {
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("service_unavailable", None, "The engine is currently overloaded, try again later."),
}


@dataclass(frozen=True)
class Fault:
    """One injected fault; each is consumed by exactly one request to its deployment.

    Stream faults on a non-streaming request: ``cut_stream`` drops the connection,
    ``stream_error`` answers 500 with its message, ``slow_chunks`` has no effect.
    """

    kind: FaultKind
    code: int = 0
    message: str = ""
    retry_after: float | None = None
    headers: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0
    after_chunks: int = 0

    @classmethod
    def status(
        cls,
        code: int,
        retry_after: float | None = None,
        message: str = "",
        headers: dict[str, str] | None = None,
    ) -> Fault:
        """Answer ``code`` with an OpenAI error body (and ``retry-after`` headers if given)."""
        extra = tuple((headers or {}).items())
        return cls("status", code=code, retry_after=retry_after, message=message, headers=extra)

    @classmethod
    def reset(cls) -> Fault:
        """Abort the TCP connection (RST) without any response."""
        return cls("reset")

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Wait ``seconds`` before sending anything, then answer normally."""
        return cls("delay", seconds=seconds)

    @classmethod
    def cut_stream(cls, after_chunks: int) -> Fault:
        """Send the headers and ``after_chunks`` chunks, then abort (no ``[DONE]``)."""
        return cls("cut_stream", after_chunks=after_chunks)

    @classmethod
    def stream_error(cls, after_chunks: int, message: str = "upstream failure") -> Fault:
        """Send ``after_chunks`` chunks, then an ``{"error": ...}`` event, and end the stream."""
        return cls("stream_error", after_chunks=after_chunks, message=message)

    @classmethod
    def slow_chunks(cls, interval: float) -> Fault:
        """Stream normally, sleeping ``interval`` seconds between chunks."""
        return cls("slow_chunks", seconds=interval)


@dataclass(frozen=True)
class RecordedRequest:
    deployment: str
    method: str
    path: str  # the full path, e.g. "/d1/v1/chat/completions"
    headers: dict[str, str]  # lower-case names
    body: Any  # the decoded JSON body; None when absent or malformed
    received: float = field(default_factory=time.monotonic)


def _error(
    status: int, message: str = "", param: str | None = None, code: str | None = None
) -> web.Response:
    kind, default_code, default_message = _DEFAULT_ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, "")
    )
    error = {
        "message": message or default_message or f"Fake upstream error {status}.",
        "type": kind,
        "param": param,
        "code": code or default_code,
    }
    return _json({"error": error}, status)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _abort(request: web.Request) -> None:
    """Drop the connection with a TCP reset, so the client sees a connection error."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _pieces(text: str) -> list[str]:
    """One "token" per word, each with its leading whitespace; they concatenate back."""
    return re.findall(r"\s*\S+", text)


def _example(schema: Any, text: str) -> Any:
    """A deterministic value that satisfies a simple JSON schema."""
    schema = schema if isinstance(schema, dict) else {}
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if kind == "object":
        properties = schema.get("properties") or {"echo": {"type": "string"}}
        return {name: _example(sub, text) for name, sub in properties.items()}
    if kind == "array":
        return [_example(schema.get("items"), text)]
    return {"integer": 1, "number": 1.5, "boolean": True, "null": None}.get(kind, text)


def _vector(item: Any, dimensions: int) -> list[float]:
    seed = orjson.dumps(item)
    digest = b"".join(
        hashlib.sha256(seed + i.to_bytes(4, "little")).digest()
        for i in range(dimensions // 32 + 1)
    )
    raw = [b - 127.5 for b in digest[:dimensions]]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    # Rounded to float32, so the float and base64 encodings decode to the same numbers.
    return list(struct.unpack(f"<{dimensions}f", struct.pack(f"<{dimensions}f", *raw)))[
        :0
    ] or [float(v) for v in struct.unpack(f"<{dimensions}f", struct.pack(f"<{dimensions}f", *(x / norm for x in raw)))]


class _Answer:
    """The deterministic answer to one chat request, whole or as stream chunks."""

    def __init__(self, deployment: str, body: dict[str, Any]) -> None:
        self.body = body
        self.id = f"chatcmpl-{uuid.uuid4().hex[:29]}"
        self.created = int(time.time())
        messages = body["messages"]
        self.prompt_tokens = sum(
            len(_text(m.get("content")).split()) for m in messages if isinstance(m, dict)
        )
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        last = _text(users[-1].get("content")) if users else ""
        content = f"[{deployment}] echo: {last}"
        response_format = body.get("response_format") or {}
        if response_format.get("type") == "json_object":
            content = orjson.dumps({"echo": content}).decode()
        elif response_format.get("type") == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema")
            content = orjson.dumps(_example(schema, content)).decode()
        stops = [body["stop"]] if isinstance(body.get("stop"), str) else body.get("stop") or []
        for stop in stops:
            content = content.split(stop, 1)[0] if stop else content
        self.finish = "stop"
        self.pieces = _pieces(content)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and len(self.pieces) > limit:
            self.pieces, self.finish = self.pieces[:limit], "length"
        self.tool_call = self._tool_call(last)
        if self.tool_call is not None:
            self.finish = "tool_calls"
            self.pieces = _pieces(self.tool_call["function"]["arguments"])
        self.n = int(body.get("n") or 1)

    def _tool_call(self, last: str) -> dict[str, Any] | None:
        tools = [t.get("function") or {} for t in self.body.get("tools") or []]
        choice = self.body.get("tool_choice")
        named = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
        wanted = choice == "required" or named or (choice != "none" and "call a tool" in last)
        if not tools or not wanted:
            return None
        tool = next((t for t in tools if t.get("name") == named), tools[0])
        arguments = orjson.dumps(_example(tool.get("parameters"), last)).decode()
        return {
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": tool.get("name", ""), "arguments": arguments},
        }

    def usage(self) -> dict[str, Any]:
        completion = len(self.pieces) * self.n
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _envelope(self, kind: str, choices: list[Any]) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.body["model"],
            "system_fingerprint": _FINGERPRINT,
            "service_tier": "default",
            "choices": choices,
        }

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(self.pieces),
            "refusal": None,
        }
        if self.tool_call is not None:
            message.update(content=None, tool_calls=[self.tool_call])
        choices = [
            {"index": i, "message": message, "logprobs": None, "finish_reason": self.finish}
            for i in range(self.n)
        ]
        return {**self._envelope("chat.completion", choices), "usage": self.usage()}

    def chunks(self) -> list[dict[str, Any]]:
        with_usage = bool((self.body.get("stream_options") or {}).get("include_usage"))

        def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
            out = self._envelope("chat.completion.chunk", [choice])
            return {**out, "usage": None} if with_usage else out

        out: list[dict[str, Any]] = []
        for i in range(self.n):
            out.append(chunk(i, {"role": "assistant", "content": "", "refusal": None}))
            if self.tool_call is not None:
                head = {**self.tool_call, "index": 0}
                head["function"] = {**self.tool_call["function"], "arguments": ""}
                out.append(chunk(i, {"tool_calls": [head]}))
                out.extend(
                    chunk(i, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                    for piece in self.pieces
                )
            else:
                out.extend(chunk(i, {"content": piece}) for piece in self.pieces)
            out.append(chunk(i, {}, self.finish))
        if with_usage:
            out.append({**self._envelope("chat.completion.chunk", []), "usage": self.usage()})
        return out
