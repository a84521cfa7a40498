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

from tests.fakes import openai_responses

FaultKind = Literal["status", "reset", "delay", "cut_stream", "stream_error", "slow_chunks"]
Handler = Callable[[web.Request, str, Any, "Fault | None"], Awaitable[web.StreamResponse]]

_RECEIVED = web.RequestKey("fake_openai_received", float)
FAULT = web.RequestKey("fake_openai_fault", object)
_FINGERPRINT = "fp_fake0001"
_MALFORMED = object()
_COMPLETION_DETAILS = (
    "reasoning_tokens",
    "audio_tokens",
    "accepted_prediction_tokens",
    "rejected_prediction_tokens",
)
_REQUIRED = {"chat/completions": ("model", "messages"), "embeddings": ("model", "input")}
_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
_BAD_KEY = (
    "Incorrect API key provided. You can find your API key at "
    "https://platform.openai.com/account/api-keys."
)
_RATE_LIMITS = {
    "openai-version": "2020-10-01",
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-reset-requests": "6ms",
    "x-ratelimit-limit-tokens": "30000000",
    "x-ratelimit-remaining-tokens": "29999990",
    "x-ratelimit-reset-tokens": "0s",
}
_DEFAULT_ERRORS: dict[int, tuple[str, str | None, str]] = {
    401: ("invalid_request_error", "invalid_api_key", _BAD_KEY),
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


def _fault_error(fault: Fault) -> web.Response:
    response = _error(fault.code, fault.message)
    if fault.retry_after is not None:
        response.headers["retry-after"] = str(math.ceil(fault.retry_after))
        response.headers["retry-after-ms"] = str(int(fault.retry_after * 1000))
    if fault.code == 429:
        response.headers["x-ratelimit-remaining-requests"] = "0"
    response.headers.update(dict(fault.headers))
    return response


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
        hashlib.sha256(seed + i.to_bytes(4, "little")).digest() for i in range(dimensions // 32 + 1)
    )
    raw = [b - 127.5 for b in digest[:dimensions]]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    # Rounded to float32, so the float and base64 encodings decode to the same numbers.
    packed = struct.pack(f"<{dimensions}f", *(x / norm for x in raw))
    return list(struct.unpack(f"<{dimensions}f", packed))


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
            "prompt_tokens_details": dict.fromkeys(("cached_tokens", "audio_tokens"), 0),
            "completion_tokens_details": dict.fromkeys(_COMPLETION_DETAILS, 0),
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
        message: dict[str, Any] = {"role": "assistant", "refusal": None}
        message["content"] = "".join(self.pieces)
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


class FakeOpenAI:
    """The fake server. ``with FakeOpenAI() as fake:`` starts and stops it."""

    def __init__(self, *, supports_base64: bool = True) -> None:
        self.supports_base64 = supports_base64  # False: ignore encoding_format, send floats
        self.models = ["gpt-4o-mini", "text-embedding-3-small"]
        self.port = 0
        self._records: list[RecordedRequest] = []
        self._faults: dict[str, deque[Fault]] = {}
        self._keys: dict[str, str] = {}
        self._counts: Counter[str] = Counter()
        self.aborted_streams = 0  # streams whose reader went away before the end
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._routes: dict[tuple[str, str], Handler] = {
            ("POST", "chat/completions"): self._chat,
            ("POST", "embeddings"): self._embeddings,
            ("POST", "rerank"): self._rerank,
            ("POST", "responses"): self._responses,
            ("GET", "models"): self._list_models,
        }

    # -- control -------------------------------------------------------------------------------

    def base_url(self, deployment: str) -> str:
        return f"http://127.0.0.1:{self.port}/{deployment}/v1"

    def enqueue(self, deployment: str, *faults: Fault) -> None:
        """Each later request to ``deployment`` pops one fault, in order."""
        with self._lock:
            self._faults.setdefault(deployment, deque()).extend(faults)

    def require_key(self, deployment: str, key: str) -> None:
        """Requests to ``deployment`` without ``Authorization: Bearer {key}`` get a 401."""
        with self._lock:
            self._keys[deployment] = key

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received, oldest first."""
        with self._lock:
            return list(self._records)

    def requests_for(self, deployment: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._records if r.deployment == deployment]

    def reset(self) -> None:
        """Forget recorded requests and queued faults (required keys stay)."""
        with self._lock:
            self._records.clear()
            self._faults.clear()
            self._counts.clear()

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._ready.clear()
        self._failure = None
        self._thread = threading.Thread(target=self._run, name="fake-openai", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._failure is not None or not self.port:
            self._thread.join(1)
            self._thread = None
            raise RuntimeError("the fake OpenAI server did not start") from self._failure

    def stop(self) -> None:
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None:
            loop.call_soon_threadsafe(stopping.set)
        thread.join(10)
        self._thread = None
        self.port = 0

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start()
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{deployment}/v1/{endpoint:.*}", self._dispatch)
        app.router.add_route("*", "/{path:.*}", self._dispatch)
        app.on_response_prepare.append(self._add_headers)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self.port = runner.addresses[0][1]
            self._ready.set()
            await self._stopping.wait()
        finally:
            await runner.cleanup()

    # -- handlers ------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        request[_RECEIVED] = time.monotonic()
        deployment = request.match_info.get("deployment", "")
        raw = await request.read()
        try:
            body: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = _MALFORMED
        headers = {k.lower(): v for k, v in request.headers.items()}
        record = RecordedRequest(
            deployment, request.method, request.path, headers, None if body is _MALFORMED else body
        )
        with self._lock:
            self._records.append(record)
            self._counts[deployment] += 1
            queue = self._faults.get(deployment)
            fault = queue.popleft() if queue else None
            key = self._keys.get(deployment)
        streaming = isinstance(body, dict) and bool(body.get("stream"))
        kind = fault.kind if fault is not None else None
        if kind == "reset" or (kind == "cut_stream" and not streaming):
            _abort(request)
            return web.Response()  # never sent: the transport is gone
        if fault is not None and kind == "status":
            return _fault_error(fault)
        if fault is not None and kind == "delay":
            await asyncio.sleep(fault.seconds)
        if key is not None and request.headers.get("Authorization") != f"Bearer {key}":
            return _error(401, _BAD_KEY)
        endpoint = request.match_info.get("endpoint", "")
        route = self._routes.get((request.method, endpoint))
        if route is None or not deployment:
            return _error(404, f"Invalid URL ({request.method} {request.path})")
        if body is _MALFORMED:
            return _error(400, "We could not parse the JSON body of your request.")
        for param in _REQUIRED.get(endpoint, ()):
            if not isinstance(body, dict) or not body.get(param):
                message = f"Missing required parameter: '{param}'."
                return _error(400, message, param, "missing_required_parameter")
        if fault is not None and kind == "stream_error" and not streaming:
            return _error(500, fault.message)
        request[FAULT] = fault
        return await route(request, deployment, body, fault)

    async def _add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        started = request.get(_RECEIVED, time.monotonic())
        with self._lock:
            used = self._counts[request.match_info.get("deployment", "")]
        defaults = {
            **_RATE_LIMITS,
            "x-request-id": f"req_{uuid.uuid4().hex}",
            "openai-processing-ms": str(int((time.monotonic() - started) * 1000)),
            "x-ratelimit-remaining-requests": str(max(0, 10000 - used)),
        }
        for name, value in defaults.items():
            response.headers.setdefault(name, value)

    async def _chat(
        self, request: web.Request, deployment: str, body: Any, fault: Fault | None
    ) -> web.StreamResponse:
        answer = _Answer(deployment, body)
        if not body.get("stream"):
            return _json(answer.completion())
        response = web.StreamResponse(headers=_SSE_HEADERS)
        await response.prepare(request)
        cut_at = (
            fault.after_chunks if fault and fault.kind in ("cut_stream", "stream_error") else -1
        )
        interval = fault.seconds if fault and fault.kind == "slow_chunks" else 0.0
        try:
            for index, chunk in enumerate([*answer.chunks(), None]):
                if index == cut_at and fault is not None and fault.kind == "cut_stream":
                    _abort(request)
                    return response
                if index == cut_at and fault is not None:
                    error = {"message": fault.message, "type": "server_error"}
                    chunk = {"error": {**error, "param": None, "code": None}}
                if index and interval:
                    await asyncio.sleep(interval)
                await response.write(
                    b"data: %s\n\n" % (orjson.dumps(chunk) if chunk else b"[DONE]")
                )
                if index == cut_at:
                    break
            await response.write_eof()
        except ConnectionError:  # the client went away mid-stream
            with self._lock:
                self.aborted_streams += 1
        return response

    async def _responses(
        self, request: web.Request, deployment: str, body: Any, fault: Fault | None
    ) -> web.StreamResponse:
        unknown = openai_responses.unknown_field(body)
        if unknown is not None:
            return _error(400, f"Unrecognized request argument supplied: {unknown}", unknown)
        chat = _Answer(deployment, openai_responses.chat_view(body))
        return await openai_responses.serve(request, openai_responses.ResponseAnswer(body, chat))

    async def _embeddings(
        self, request: web.Request, deployment: str, body: Any, fault: Fault | None
    ) -> web.StreamResponse:
        inputs = body["input"]
        if isinstance(inputs, str) or (isinstance(inputs, list) and isinstance(inputs[0], int)):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(i, str | list) for i in inputs):
            return _error(400, "'input' must be a string, strings or token ids.", "input")
        dimensions = body.get("dimensions") or 8
        as_base64 = body.get("encoding_format") == "base64" and self.supports_base64
        data, tokens = [], 0
        for index, item in enumerate(inputs):
            vector = _vector(item, dimensions)
            tokens += len(item.split()) if isinstance(item, str) else len(item)
            embedding: Any = vector
            if as_base64:
                embedding = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return _json({"object": "list", "data": data, "model": body["model"], "usage": usage})

    async def _rerank(
        self, request: web.Request, deployment: str, body: Any, fault: Fault | None
    ) -> web.StreamResponse:
        """vLLM's (and Jina's) ``/rerank``: a document's score is the share of the query's
        words it contains, results sorted by score, the first ``top_n``."""
        query, documents = body.get("query"), body.get("documents")
        if not isinstance(query, str) or not isinstance(documents, list) or not documents:
            return _error(400, "'query' and 'documents' are required.", "documents")
        texts = [d if isinstance(d, str) else (d or {}).get("text", "") for d in documents]
        words = set(re.findall(r"\w+", query.lower()))
        scores = [
            len(words & set(re.findall(r"\w+", text.lower()))) / (len(words) or 1) for text in texts
        ]
        order = sorted(range(len(texts)), key=lambda i: -scores[i])
        results = [
            {"index": i, "document": {"text": texts[i]}, "relevance_score": scores[i]}
            for i in order
        ]
        top_n = body.get("top_n") or len(results)
        tokens = sum(len(t.split()) + len(query.split()) for t in texts)
        return _json(
            {
                "id": f"rerank-{uuid.uuid4().hex}",
                "model": body.get("model"),
                "usage": {"total_tokens": tokens},
                "results": results[:top_n],
            }
        )

    async def _list_models(
        self, request: web.Request, deployment: str, body: Any, fault: Fault | None
    ) -> web.StreamResponse:
        data = [
            {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "openai"}
            for m in self.models
        ]
        return _json({"object": "list", "data": data})
