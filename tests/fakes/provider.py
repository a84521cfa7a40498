"""An in-process provider with queued outcomes, for router and handler tests."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from stackyard.config.schema import ModelEntry
from stackyard.gateway.providers.base import Body, Capabilities, UpstreamError
from stackyard.gateway.providers.http import HttpClient


@dataclass
class Delay:
    seconds: float


Outcome = UpstreamError | Delay | Body


class FakeProvider:
    """Answers from a queue: an ``UpstreamError`` is raised, a ``Delay`` sleeps first (then
    the next outcome applies), a dict is returned; an empty queue answers a default reply."""

    capabilities = Capabilities(embeddings=True)

    def __init__(self, name: str = "fake") -> None:
        self.name = name
        self.calls: list[Body] = []
        self._queue: deque[Outcome] = deque()

    @classmethod
    def factory(cls, entry: ModelEntry, http: HttpClient) -> FakeProvider:
        return cls(entry.id or entry.name)

    def enqueue(self, *outcomes: Outcome) -> None:
        self._queue.extend(outcomes)

    async def _next(self, body: Body) -> Body:
        self.calls.append(body)
        while self._queue:
            outcome = self._queue.popleft()
            if isinstance(outcome, Delay):
                await asyncio.sleep(outcome.seconds)
                continue
            if isinstance(outcome, UpstreamError):
                raise outcome
            return outcome
        return {"served_by": self.name}

    async def chat(self, body: Body) -> Body:
        return await self._next(body)

    async def embeddings(self, body: Body) -> Body:
        return await self._next(body)

    async def chat_stream(self, body: Body) -> AsyncGenerator[Body, None]:
        yield await self._next(body)

    async def start(self) -> None:
        return None

    def ready(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None
