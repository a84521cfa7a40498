"""The whole server in this process (the ASGI app with its lifespan run), for tests that must
reach inside it: a provider made to fail in a way no fake upstream can, a budget book read
directly. Other tests drive a real ``stackyard serve`` process (tests/conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import httpx

from stackyard.config.loader import validate
from stackyard.gateway.providers import registry
from stackyard.server.app import Stackyard
from stackyard.server.types import Message


@contextlib.asynccontextmanager
async def running(config: dict[str, Any]) -> AsyncIterator[tuple[Stackyard, httpx.AsyncClient]]:
    """The app started (lifespan startup done), and a client on it; shut down afterwards."""
    auth = config.setdefault("auth", {})
    auth.setdefault("spend_journal", tempfile.mkdtemp(prefix="stackyard-journal-"))
    app = Stackyard(validate(config, known_providers=registry.names()))
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()

    async def receive() -> Message:
        return await inbox.get()

    async def send(message: Message) -> None:
        await outbox.put(message)

    lifespan = asyncio.ensure_future(app({"type": "lifespan"}, receive, send))
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    assert started["type"] == "lifespan.startup.complete", started
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield app, client
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await lifespan
