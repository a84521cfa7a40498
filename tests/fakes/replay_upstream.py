"""A scripted upstream: each request gets the next recorded reply, and is itself recorded.

Used by the translation conformance suite, whose recordings are written from the providers'
API references: a JSON body with a status, or an SSE stream given event by event (OpenAI's
``data:`` lines and ``[DONE]``, or Anthropic's named events).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass(frozen=True)
class Reply:
    status: int = 200
    json: Any = None
    #: ``(event name or None, data)``; data is a dict (sent as JSON) or a raw string.
    sse: list[tuple[str | None, Any]] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Recorded:
    deployment: str
    path: str
    headers: dict[str, str]
    body: Any


class ReplayUpstream:
    def __init__(self) -> None:
        self.port = 0
        self.requests: list[Recorded] = []
        self._replies: dict[str, deque[Reply]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()

    def base_url(self, deployment: str) -> str:
        return f"http://127.0.0.1:{self.port}/{deployment}/v1"

    def script(self, deployment: str, *replies: Reply) -> None:
        with self._lock:
            self._replies.setdefault(deployment, deque()).extend(replies)

    def forget(self, deployment: str) -> None:
        """Drop what is scripted for, and recorded from, ``deployment``."""
        with self._lock:
            self._replies.pop(deployment, None)
            self.requests = [r for r in self.requests if r.deployment != deployment]

    def take(self, deployment: str) -> list[Recorded]:
        """The requests ``deployment`` received since the last call, removed from the log."""
        with self._lock:
            mine = [r for r in self.requests if r.deployment == deployment]
            self.requests = [r for r in self.requests if r.deployment != deployment]
            return mine

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="replay-upstream", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the replay upstream did not start")

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application()
        app.router.add_post("/{deployment}/{path:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = runner.addresses[0][1]
        self._started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        deployment = request.match_info["deployment"]
        body = orjson.loads(await request.read() or b"null")
        with self._lock:
            self.requests.append(
                Recorded(
                    deployment,
                    "/" + request.match_info["path"],
                    {k.lower(): v for k, v in request.headers.items()},
                    body,
                )
            )
            queue = self._replies.get(deployment)
            reply = queue.popleft() if queue else None
        if reply is None:
            return web.json_response({"error": {"message": "no reply scripted"}}, status=500)
        if reply.sse is None:
            return web.Response(
                status=reply.status,
                body=orjson.dumps(reply.json),
                content_type="application/json",
                headers=reply.headers,
            )
        response = web.StreamResponse(
            status=reply.status,
            headers={"content-type": "text/event-stream; charset=utf-8", **reply.headers},
        )
        await response.prepare(request)
        for event, data in reply.sse:
            payload = data if isinstance(data, str) else orjson.dumps(data).decode()
            text = (f"event: {event}\n" if event else "") + f"data: {payload}\n\n"
            await response.write(text.encode())
        await response.write_eof()
        return response
