"""A fake OpenAI server speaking the exact wire format, with fault injection.

It runs a real aiohttp server in a background thread, so synchronous tests, async tests and a
gateway subprocess all reach it over TCP. Routes live under ``/{deployment}/v1/...``: the first
path segment names the gateway deployment that made the call, so a test can see who was asked,
and queue faults for one deployment alone.

Replies are deterministic: the content is ``"[{deployment}] echo: {last user text}"``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import struct
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass(frozen=True)
class Fault:
    """One injected fault; each is consumed by exactly one request to its deployment."""

    kind: str
    http_status: int = 0
    retry_after: float | None = None
    message: str = ""
    seconds: float = 0.0
    after_chunks: int = 0

    @classmethod
    def status(cls, code: int, retry_after: float | None = None, message: str = "") -> Fault:
        """Answer with that HTTP status and an OpenAI-shaped error body."""
        return cls("status", http_status=code, retry_after=retry_after, message=message)

    @classmethod
    def reset(cls) -> Fault:
        """Close the TCP connection without any response."""
        return cls("reset")

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Wait before answering (a slow first token, for a stream)."""
        return cls("delay", seconds=seconds)

    @classmethod
    def cut_stream(cls, after_chunks: int) -> Fault:
        """Send that many chunks, then drop the connection without ``[DONE]``."""
        return cls("cut", after_chunks=after_chunks)

    @classmethod
    def stream_error(cls, after_chunks: int, message: str = "upstream failure") -> Fault:
        """Send that many chunks, then an error event, as OpenAI does mid-stream."""
        return cls("stream_error", after_chunks=after_chunks, message=message)

    @classmethod
    def slow_chunks(cls, interval: float) -> Fault:
        return cls("slow_chunks", seconds=interval)


_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("service_unavailable", None),
}


@dataclass
class RecordedRequest:
    deployment: str
    path: str
    headers: dict[str, str]
    body: Any
    received: float = field(default_factory=time.time)


def _error(status: int, message: str, param: str | None = None) -> web.Response:
    kind, code = _ERROR_TYPES.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _count(messages: list[Any]) -> int:
    return sum(len(_text(m.get("content")).split()) + 3 for m in messages if isinstance(m, dict))


class FakeOpenAI:
    def __init__(self, *, supports_base64: bool = True) -> None:
        self.supports_base64 = supports_base64
        self.port = 0
        self.requests: list[RecordedRequest] = []
        self.completed_streams = 0
        self.aborted_streams = 0  # streams whose reader went away before the end
        self._faults: dict[str, deque[Fault]] = {}
        self._keys: dict[str, str] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()

    # -- control ---------------------------------------------------------------------------

    def base_url(self, deployment: str) -> str:
        return f"http://127.0.0.1:{self.port}/{deployment}/v1"

    def enqueue(self, deployment: str, *faults: Fault) -> None:
        with self._lock:
            self._faults.setdefault(deployment, deque()).extend(faults)

    def require_key(self, deployment: str, key: str) -> None:
        self._keys[deployment] = key

    def requests_for(self, deployment: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.deployment == deployment]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._faults.clear()

    def _pop_fault(self, deployment: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(deployment)
            return queue.popleft() if queue else None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="fake-openai", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the fake OpenAI server did not start")

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[_quiet_when_gone])
        app.router.add_post("/{deployment}/v1/chat/completions", self._chat)
        app.router.add_post("/{deployment}/v1/embeddings", self._embeddings)
        app.router.add_get("/{deployment}/v1/models", self._models)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self._runner = runner
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = runner.addresses[0][1]
        self._started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = None

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- handlers --------------------------------------------------------------------------

    async def _admit(self, request: web.Request) -> tuple[str, Any, Fault | None]:
        """Record the request; return its deployment, JSON body (or an error) and fault."""
        deployment = request.match_info["deployment"]
        raw = await request.read()
        try:
            body: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = _error(400, "We could not parse the JSON body of your request.")
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    deployment,
                    request.path,
                    {k.lower(): v for k, v in request.headers.items()},
                    body,
                )
            )
        return deployment, body, self._pop_fault(deployment)

    async def _fault_response(
        self, request: web.Request, deployment: str, fault: Fault | None
    ) -> web.StreamResponse | None:
        key = self._keys.get(deployment)
        if key and request.headers.get("authorization") != f"Bearer {key}":
            return _error(401, "Incorrect API key provided.")
        if fault is None:
            return None
        if fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
            if request.transport is None or request.transport.is_closing():
                raise _ClientGone  # the gateway gave up waiting: nothing to answer
        elif fault.kind == "reset":
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError
        elif fault.kind == "status":
            code = fault.http_status
            response = _error(code, fault.message or f"fake failure {code}")
            if fault.retry_after is not None:
                response.headers["retry-after"] = str(math.ceil(fault.retry_after))
                response.headers["retry-after-ms"] = str(int(fault.retry_after * 1000))
            return response
        return None

    def _headers(self) -> dict[str, str]:
        return {
            "x-request-id": f"req_{uuid.uuid4().hex}",
            "openai-processing-ms": "1",
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-limit-tokens": "2000000",
            "x-ratelimit-remaining-tokens": "1999990",
            "x-ratelimit-reset-tokens": "0s",
        }

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        deployment, body, fault = await self._admit(request)
        if isinstance(body, web.Response):
            return body
        early = await self._fault_response(request, deployment, fault)
        if early is not None:
            return early
        if not isinstance(body, dict) or "model" not in body:
            return _error(400, "you must provide a model parameter", "model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "'messages' is a required property", "messages")
        answer = _Answer(deployment, body)
        if body.get("stream"):
            return await self._stream(request, answer, fault)
        return web.Response(
            body=orjson.dumps(answer.completion()),
            content_type="application/json",
            headers=self._headers(),
        )

    async def _stream(
        self, request: web.Request, answer: _Answer, fault: Fault | None
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={**self._headers(), "content-type": "text/event-stream; charset=utf-8"}
        )
        await response.prepare(request)
        try:
            return await self._send_chunks(request, response, answer.chunks(), fault)
        except ConnectionResetError:
            with self._lock:
                self.aborted_streams += 1
            raise

    async def _send_chunks(
        self,
        request: web.Request,
        response: web.StreamResponse,
        chunks: list[dict[str, Any]],
        fault: Fault | None,
    ) -> web.StreamResponse:
        for index, chunk in enumerate(chunks):
            ends_here = fault is not None and index == fault.after_chunks
            if fault is not None and ends_here and fault.kind == "cut":
                assert request.transport is not None
                request.transport.abort()
                return response
            if fault is not None and ends_here and fault.kind == "stream_error":
                error = {
                    "error": {
                        "message": fault.message,
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                }
                await response.write(b"data: " + orjson.dumps(error) + b"\n\n")
                await response.write_eof()
                return response
            if fault is not None and fault.kind == "slow_chunks" and index:
                await asyncio.sleep(fault.seconds)
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        self.completed_streams += 1
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        deployment, body, fault = await self._admit(request)
        if isinstance(body, web.Response):
            return body
        early = await self._fault_response(request, deployment, fault)
        if early is not None:
            return early
        inputs = body.get("input") if isinstance(body, dict) else None
        if inputs is None:
            return _error(400, "'input' is a required property", "input")
        if isinstance(inputs, str) or (inputs and isinstance(inputs[0], int)):
            inputs = [inputs]
        dimensions = int(body.get("dimensions") or 8)
        base64_wanted = body.get("encoding_format") == "base64" and self.supports_base64
        data = []
        tokens = 0
        for index, item in enumerate(inputs):
            vector = _vector(orjson.dumps(item), dimensions)
            tokens += len(item.split()) if isinstance(item, str) else len(item)
            embedding: Any = vector
            if base64_wanted:
                embedding = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        reply = {
            "object": "list",
            "data": data,
            "model": body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return web.Response(
            body=orjson.dumps(reply), content_type="application/json", headers=self._headers()
        )

    async def _models(self, request: web.Request) -> web.StreamResponse:
        data = {
            "object": "list",
            "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}],
        }
        return web.json_response(data, headers=self._headers())


class _ClientGone(Exception):
    pass


@web.middleware
async def _quiet_when_gone(request: web.Request, handler: Any) -> web.StreamResponse:
    """A client that left (a gateway timeout, a cancelled stream) is not an error here."""
    try:
        response: web.StreamResponse = await handler(request)
    except (_ClientGone, ConnectionResetError):
        return web.Response(status=499)
    return response


def _vector(seed: bytes, dimensions: int) -> list[float]:
    digest = b""
    counter = 0
    while len(digest) < dimensions:
        digest += hashlib.sha256(seed + counter.to_bytes(4, "little")).digest()
        counter += 1
    raw = [b - 127.5 for b in digest[:dimensions]]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


class _Answer:
    """The deterministic answer to one chat request, whole or as chunks."""

    def __init__(self, deployment: str, body: dict[str, Any]) -> None:
        self.body = body
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = body["model"]
        messages = body["messages"]
        self.prompt_tokens = _count(messages)
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        last = _text(users[-1].get("content")) if users else ""
        content = f"[{deployment}] echo: {last}"
        fmt = body.get("response_format") or {}
        if fmt.get("type") in ("json_object", "json_schema"):
            content = orjson.dumps({"echo": content}).decode()
        self.finish = "stop"
        for stop in [body["stop"]] if isinstance(body.get("stop"), str) else body.get("stop") or []:
            if stop in content:
                content = content[: content.index(stop)]
        words = content.split(" ")
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if limit is not None and len(words) > limit:
            words = words[:limit]
            self.finish = "length"
        self.words = words
        self.content = " ".join(words)
        self.tool_call: dict[str, Any] | None = None
        tools = body.get("tools") or []
        choice = body.get("tool_choice")
        if tools and (choice == "required" or isinstance(choice, dict) or "call a tool" in last):
            name = tools[0]["function"]["name"]
            if isinstance(choice, dict):
                name = choice.get("function", {}).get("name", name)
            self.tool_call = {
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {"name": name, "arguments": orjson.dumps({"city": last}).decode()},
            }
            self.finish = "tool_calls"
        self.completion_tokens = len(self.words) if self.tool_call is None else 8

    def _usage(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content, "refusal": None}
        if self.tool_call is not None:
            message["content"] = None
            message["tool_calls"] = [self.tool_call]
        choices = [
            {"index": i, "message": message, "logprobs": None, "finish_reason": self.finish}
            for i in range(int(self.body.get("n") or 1))
        ]
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": choices,
            "usage": self._usage(),
        }

    def chunks(self) -> list[dict[str, Any]]:
        usage_wanted = bool((self.body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            out: dict[str, Any] = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if usage_wanted:
                out["usage"] = None
            return out

        out = [chunk({"role": "assistant", "content": "", "refusal": None})]
        if self.tool_call is not None:
            call = self.tool_call
            head = {
                "index": 0,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            out.append(chunk({"tool_calls": [head]}))
            arguments = call["function"]["arguments"]
            for start in range(0, len(arguments), 5):
                piece = arguments[start : start + 5]
                out.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        else:
            for i, word in enumerate(self.words):
                out.append(chunk({"content": word if i == 0 else " " + word}))
        out.append(chunk({}, self.finish))
        if usage_wanted:
            last = chunk({})
            last["choices"] = []
            last["usage"] = self._usage()
            out.append(last)
        return out
