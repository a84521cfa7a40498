"""The ASGI application: routes, lifespan, and the error boundary.

Every failure reaches the client in OpenAI's error shape; an unexpected exception is logged
with its traceback and answered with a 500 that carries only the request id.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from stackyard import __version__
from stackyard.auth.admission import Governance
from stackyard.auth.budgets import BudgetBook
from stackyard.auth.leases import LeasedCounters
from stackyard.auth.principal import Budget
from stackyard.auth.snapshot import KeySnapshot
from stackyard.config import StackyardConfig, load
from stackyard.errors import APIError, internal_error
from stackyard.gateway.chat import chat_completions
from stackyard.gateway.embeddings import embeddings
from stackyard.gateway.messages import count_tokens, messages
from stackyard.gateway.models import ModelsEndpoint
from stackyard.gateway.providers import registry
from stackyard.gateway.service import Gateway
from stackyard.server.admin import AdminAPI
from stackyard.server.http import ClientDisconnected, Request, Response
from stackyard.server.routing import Reply, Routes
from stackyard.server.types import Receive, Scope, Send
from stackyard.store.db import Database, default_url
from stackyard.store.spend_writer import SpendWriter

log = logging.getLogger("stackyard")

CONFIG_ENV = "STACKYARD_CONFIG"


class Stackyard:
    """The whole server as one ASGI callable."""

    def __init__(
        self,
        config: StackyardConfig,
        *,
        source: str = "<config>",
        config_file: Path | None = None,
    ) -> None:
        self.config = config
        self.gateway = Gateway(config, source=source)
        self.db = Database(config.database_url or default_url(config_file))
        self.snapshot = KeySnapshot(self.db, refresh_seconds=config.auth.refresh_seconds)
        self.writer = SpendWriter(self.db)
        self.budgets = BudgetBook(self.db)
        redis_url = config.redis_url or os.environ.get("STACKYARD_REDIS_URL") or None
        self.redis_url = redis_url
        self.shared = LeasedCounters(redis_url) if redis_url else None
        self.gateway.governance = Governance(
            self.gateway.router,
            self.snapshot,
            self.writer,
            master_key=master_key(config),
            budgets=self.budgets,
            shared=self.shared,
        )
        self._background: list[asyncio.Task[None]] = []
        self.ready = False
        self.max_body_bytes = config.server.max_body_bytes
        self.routes = Routes()
        gateway = self.gateway
        models = ModelsEndpoint(gateway)

        async def chat(request: Request) -> Reply:
            return await chat_completions(gateway, request)

        async def embed(request: Request) -> Reply:
            return await embeddings(gateway, request)

        async def list_models(request: Request) -> Reply:
            return await models(gateway, request)

        async def anthropic_messages(request: Request) -> Reply:
            return await messages(gateway, request)

        async def anthropic_count_tokens(request: Request) -> Reply:
            return await count_tokens(gateway, request)

        self.routes.add("POST", ["/v1/chat/completions", "/chat/completions"], chat)
        self.routes.add("POST", ["/v1/embeddings", "/embeddings"], embed)
        self.routes.add("GET", ["/v1/models", "/models"], list_models)
        self.routes.add("POST", ["/v1/messages", "/messages"], anthropic_messages)
        self.routes.add(
            "POST", ["/v1/messages/count_tokens", "/messages/count_tokens"], anthropic_count_tokens
        )
        admin = AdminAPI(self.db, self.gateway.governance, redis_url=redis_url)
        admin.register(self.routes)
        self.routes.add("GET", ["/health"], self._health)
        self.routes.add("GET", ["/ready"], self._ready)
        self.routes.add("GET", ["/"], self._index)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, max_body_bytes=self.max_body_bytes)
        reply: Reply
        try:
            handler = self.routes.find(scope["method"], scope["path"])
            reply = await handler(request)
        except APIError as exc:
            reply = Response.error(exc)
        except ClientDisconnected:
            return
        except Exception:
            log.exception("unhandled error (request id %s)", request.request_id)
            reply = Response.error(internal_error(request.request_id))
        try:
            await reply(send, receive, request.request_id)
        except Exception:
            log.exception("error while sending a response (request id %s)", request.request_id)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._startup()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                self.ready = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.ready = False
                for task in self._background:
                    task.cancel()
                await self.writer.close()  # every accepted spend row is written
                await self.gateway.aclose()
                if self.shared is not None:
                    await self.shared.aclose()
                self.db.dispose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _startup(self) -> None:
        await asyncio.to_thread(self.db.migrate)
        await asyncio.to_thread(self.snapshot.load)
        budgets = [b for p in self.snapshot.keys.values() for b in p.budgets]
        await asyncio.to_thread(self.budgets.load, budgets)
        self.snapshot.on_change = self.budgets.load
        if self.shared is not None:
            await self._seed_shared(budgets)
            self.snapshot.after_change = self._seed_shared
        self.writer.start()
        self._background.append(asyncio.ensure_future(self.snapshot.run(self.redis_url)))
        for deployment in self.gateway.router.all_deployments():
            await deployment.provider.start()

    async def _seed_shared(self, budgets: list[Budget]) -> None:
        if self.shared is not None:
            await self.shared.seed_spend(budgets, {b: self.budgets.spent(b) for b in budgets})

    async def _health(self, request: Request) -> Reply:
        return Response.json({"status": "ok"})

    async def _ready(self, request: Request) -> Reply:
        loading = [d.id for d in self.gateway.router.all_deployments() if not d.provider.ready()]
        ready = self.ready and not loading
        body: dict[str, Any] = {
            "status": "ready" if ready else "starting",
            "models": len(self.gateway.router.model_names),
        }
        if loading:
            body["loading"] = loading
        return Response.json(body, status=200 if ready else 503)

    async def _index(self, request: Request) -> Reply:
        return Response.json(
            {
                "name": "stackyard",
                "version": __version__,
                "openai_base_url": "/v1",
                "models": self.gateway.router.model_names,
            }
        )


def master_key(config: StackyardConfig) -> str | None:
    return config.auth.master_key or os.environ.get("STACKYARD_MASTER_KEY") or None


def create_app() -> Stackyard:
    """The factory uvicorn calls in each worker; the config path comes from the environment."""
    path = os.environ.get(CONFIG_ENV) or None
    config, file = load(path, known_providers=registry.names())
    return Stackyard(config, source=str(file) if file else "<embedded default>", config_file=file)
