"""The whole server in this process (the ASGI app with its lifespan run), for tests that must
reach inside it: a provider made to fail in a way no fake upstream can, a budget book read
directly. Other tests drive a real ``stackyard serve`` process (tests/conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import httpx2
import openai

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


@contextlib.asynccontextmanager
async def sdks(
    app: Stackyard, key: str = "unused", strict: bool = True
) -> AsyncIterator[tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic]]:
    """Both official SDKs on ``app``, with ``key`` (Bearer for OpenAI's, x-api-key for
    Anthropic's); ``strict``: they validate the responses' shape."""
    async with (
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app)) as oa_http,
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app)) as an_http,
        openai.AsyncOpenAI(
            base_url="http://gateway/v1",
            api_key=key,
            max_retries=0,
            http_client=oa_http,
            _strict_response_validation=strict,
        ) as oa,
        anthropic.AsyncAnthropic(
            base_url="http://gateway",
            api_key=key,
            max_retries=0,
            http_client=an_http,
            _strict_response_validation=strict,
        ) as an,
    ):
        yield oa, an
