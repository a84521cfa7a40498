"""Server-Sent Events responses that stop work as soon as the client goes away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from stackyard.server.types import Headers, Receive, Send

SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class EventStream:
    """Streams ``events`` (each already encoded as an SSE event) to the client.

    A task watches for ``http.disconnect``; when the client leaves, the producer is cancelled,
    so its ``finally`` blocks close the upstream request at once.
    """

    __slots__ = ("events", "headers", "status")

    def __init__(self, events: AsyncIterator[bytes], headers: Headers, status: int = 200) -> None:
        self.events = events
        self.headers = headers
        self.status = status

    async def __call__(self, send: Send, receive: Receive, request_id: str) -> None:
        headers = [*SSE_HEADERS, (b"x-request-id", request_id.encode("latin-1")), *self.headers]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        pump = asyncio.ensure_future(self._pump(send))
        watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            await asyncio.wait((pump, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, watcher):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        if pump.done() and not pump.cancelled():
            pump.result()  # re-raise a failure of the producer itself (a bug), to be logged

    async def _pump(self, send: Send) -> None:
        events = self.events
        try:
            async for event in events:
                await send({"type": "http.response.body", "body": event, "more_body": True})
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
