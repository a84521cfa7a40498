"""The ASGI application: routes, lifespan, and the error boundary.

Every failure reaches the client in OpenAI's error shape; an unexpected exception is logged
with its traceback and answered with a 500 that carries only the request id.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import logging
import os
from pathlib import Path
from typing import Any

from stackyard import __version__
from stackyard.auth.admission import Governance
from stackyard.auth.alerts import BudgetAlerts
from stackyard.auth.budgets import BudgetBook
from stackyard.auth.leases import LeasedCounters
from stackyard.auth.principal import Budget
from stackyard.auth.snapshot import KeySnapshot
from stackyard.batches.api import BatchesAPI
from stackyard.batches.messages_api import MessageBatchesAPI
from stackyard.batches.runner import BatchRunner
from stackyard.batches.store import BatchStore
from stackyard.cache.api import CacheAPI
from stackyard.cache.service import Cache
from stackyard.config import StackyardConfig, load
from stackyard.errors import APIError, internal_error
from stackyard.evals.api import ExperimentsAPI
from stackyard.evals.experiments import Experiments
from stackyard.finetune.files import Files
from stackyard.gateway.doors.chat import CHAT
from stackyard.gateway.doors.completions import COMPLETIONS
from stackyard.gateway.doors.embeddings import EMBEDDINGS
from stackyard.gateway.doors.messages import MESSAGES, count_tokens
from stackyard.gateway.doors.responses import ResponsesDoor
from stackyard.gateway.models import ModelsEndpoint
from stackyard.gateway.providers import registry
from stackyard.gateway.providers.http import HttpClient
from stackyard.gateway.quotas import SharedQuotas
from stackyard.gateway.rerank import rerank
from stackyard.gateway.responses_api import ResponsesAPI
from stackyard.gateway.service import Gateway, build_router
from stackyard.gateway.stored_responses import ResponseStore
from stackyard.gateway.token_counts import TIKTOKEN
from stackyard.guardrails.ner import load_tagger
from stackyard.observability import query
from stackyard.observability.api import TracesAPI
from stackyard.observability.metrics import GatewayMetrics
from stackyard.observability.otlp import OTLPExporter, resolve
from stackyard.observability.recorder import Recorder
from stackyard.observability.redact import Redactor
from stackyard.observability.writer import TraceWriter
from stackyard.prompts.api import PromptsAPI
from stackyard.prompts.snapshot import PromptSnapshot
from stackyard.server.admin import AdminAPI
from stackyard.server.http import ClientDisconnected, Request, Response
from stackyard.server.parts import (
    build_finetuning,
    build_rag,
    cache_backend,
)
from stackyard.server.routing import Reply, Routes
from stackyard.server.types import Receive, Scope, Send
from stackyard.store.audit_writer import AuditWriter
from stackyard.store.batch_writer import ERRORS as WRITER_ERRORS
from stackyard.store.db import Database, default_url, store_error
from stackyard.store.journal import SpendJournal, replay
from stackyard.store.spend_writer import SpendWriter
from stackyard.store.spill_replay import replay_spill
from stackyard.ui.pages import Console
from stackyard.ui.sessions import Sessions

log = logging.getLogger("stackyard")

CONFIG_ENV = "STACKYARD_CONFIG"
PURGE_EVERY = 3600.0  # seconds between retention purges


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
        # The composition root: the router first, then the parts that need it, then the
        # gateway that receives them.
        http = HttpClient()
        router = build_router(config, http, source=source)
        self.db = Database(config.database_url or default_url(config_file))
        self.snapshot = KeySnapshot(self.db, refresh_seconds=config.auth.refresh_seconds)
        beside = config_file.resolve().parent if config_file else Path.cwd()
        folder = config.auth.spend_journal
        self.journal = SpendJournal(
            Path(folder) if folder else beside / "stackyard-journal",
            fsync=config.auth.spend_journal_fsync,
        )
        self.writer = SpendWriter(self.db, journal=self.journal)
        self.audit = AuditWriter(self.db)  # the guardrails' decisions
        self.budgets = BudgetBook(self.db)
        redis_url = config.redis_url or os.environ.get("STACKYARD_REDIS_URL") or None
        self.redis_url = redis_url
        self.shared = LeasedCounters(redis_url) if redis_url else None
        if self.shared is not None:

            async def spent_in_store(budget: Budget) -> float:
                return await asyncio.to_thread(self.budgets.spent_in_store, budget)

            self.shared.spent_in_store = spent_in_store
        if self.shared is not None:  # deployment quotas are shared by every instance too
            router.share_quotas(SharedQuotas(self.shared))
        observability = config.observability
        self.metrics = GatewayMetrics()
        self.traces = TraceWriter(
            self.db,
            max_queue=observability.queue_size,
            interval=observability.flush_interval,
            redactor=Redactor(pii=observability.redact_pii, patterns=observability.redact_patterns),
            metrics=self.metrics,
        )
        otlp = resolve(observability.otlp, os.environ)  # the file, then OTEL_EXPORTER_OTLP_*
        self.exporter = OTLPExporter(otlp, self.metrics) if otlp is not None else None
        self.recorder = Recorder(
            observability,
            metrics=self.metrics,
            writer=self.traces,
            exporter=self.exporter,
            team_names=lambda: self.snapshot.team_names,
        )
        # Stored responses (/v1/responses), redacted and purged as traces are.
        self.responses = ResponseStore(
            self.db,
            redactor=Redactor(pii=observability.redact_pii, patterns=observability.redact_patterns),
        )
        self.metrics.registry.add(WRITER_ERRORS)
        # Each worker has its own queues: the server's depth is the sum over live workers.
        self.metrics.gauge(
            "stackyard_trace_queue_depth",
            "Traces waiting to be written.",
            lambda: self.traces.depth,
            mode="livesum",
        )
        self.metrics.gauge(
            "stackyard_spend_queue_depth",
            "Spend rows waiting to be written.",
            lambda: self.writer.depth,
            mode="livesum",
        )
        self.alerts = BudgetAlerts(
            config.alerts.budget_thresholds,
            webhook_url=config.alerts.webhook_url,
            webhook_headers=config.alerts.webhook_headers,
            metrics=self.metrics,
        )
        self.budgets.on_spend = self.alerts.spent
        snapshot = self.snapshot

        def team_names() -> dict[str, str]:
            return snapshot.team_names

        prompts = PromptSnapshot(self.db)
        self.snapshot.followers.append(prompts.load)
        rag = build_rag(config, self.db, router, config_file)
        cache = Cache(
            config.cache,
            cache_backend(config, redis_url),
            router,
            self.metrics,
            team_names=team_names,
        )
        if rag is not None:
            self.snapshot.followers.append(rag.collections.load)
        self.gateway = Gateway(
            config,
            source=source,
            http=http,
            router=router,
            governance=Governance(
                router,
                self.snapshot,
                self.writer,
                master_key=master_key(config),
                budgets=self.budgets,
                shared=self.shared,
                recorder=self.recorder,
                audit=self.audit,
                redis_outage=config.auth.redis_outage,
            ),
            prompts=prompts,
            cache=cache,
            rag=rag,
            team_names=team_names,
            key_names=lambda: snapshot.key_names,
        )
        self._background: list[asyncio.Task[None]] = []
        self.ready = False
        self.max_body_bytes = config.server.max_body_bytes
        self.max_json_depth = config.server.max_json_depth
        self.routes = Routes()
        gateway = self.gateway
        self.models = ModelsEndpoint(gateway)

        pipeline = gateway.pipeline

        async def chat(request: Request) -> Reply:
            return await pipeline.handle(CHAT, request)

        async def embed(request: Request) -> Reply:
            return await pipeline.handle(EMBEDDINGS, request)

        async def rerank_documents(request: Request) -> Reply:
            return await rerank(gateway, request)

        async def anthropic_messages(request: Request) -> Reply:
            return await pipeline.handle(MESSAGES, request)

        recorder = self.recorder
        responses_door = ResponsesDoor(
            self.responses, lambda team: recorder.policy(team)[0] == "full"
        )

        async def responses(request: Request) -> Reply:
            return await pipeline.handle(responses_door, request)

        async def completions(request: Request) -> Reply:
            return await pipeline.handle(COMPLETIONS, request)

        async def anthropic_count_tokens(request: Request) -> Reply:
            return await count_tokens(gateway, request)

        self.routes.add("POST", ["/v1/chat/completions", "/chat/completions"], chat)
        self.routes.add("POST", ["/v1/embeddings", "/embeddings"], embed)
        self.routes.add("POST", ["/v1/rerank", "/rerank"], rerank_documents)
        self.models.register(self.routes)
        self.routes.add("POST", ["/v1/messages", "/messages"], anthropic_messages)
        self.routes.add("POST", ["/v1/responses", "/responses"], responses)
        self.routes.add("POST", ["/v1/completions", "/completions"], completions)
        ResponsesAPI(self.responses, gateway.governance).register(self.routes)
        # Batches: run in the background, each line through the routes above.
        self.batches = BatchStore(self.db)
        files = Files(self.db)
        BatchesAPI(self.batches, files, gateway.governance).register(self.routes)
        MessageBatchesAPI(self.batches, files, gateway.governance).register(self.routes)
        governance = gateway.governance
        self.batch_runner = BatchRunner(
            self.batches,
            files,
            self.routes,
            config.batches,
            principal_of=lambda record: governance.current(record.key_id),
            interactive=lambda: governance.interactive,
            max_body_bytes=self.max_body_bytes,
        )
        # In flight: each worker counts its own, the server's is the sum over live workers.
        self.metrics.gauge(
            "stackyard_requests_in_flight",
            "Interactive requests admitted and not yet settled (batch lines wait while many).",
            lambda: governance.interactive,
            mode="livesum",
        )
        self.metrics.gauge(
            "stackyard_batch_lines_in_flight",
            "Lines of batches running on this instance.",
            lambda: self.batch_runner.running,
            mode="livesum",
        )
        self.routes.add(
            "POST", ["/v1/messages/count_tokens", "/messages/count_tokens"], anthropic_count_tokens
        )
        admin = AdminAPI(self.db, self.gateway.governance, redis_url=redis_url)
        admin.register(self.routes)
        TracesAPI(
            self.db,
            self.gateway.governance,
            self.metrics,
            metrics_token=config.observability.metrics_token,
        ).register(self.routes)
        CacheAPI(cache, self.gateway.governance).register(self.routes)
        PromptsAPI(
            self.db, self.gateway.governance, self.gateway.prompts, redis_url=redis_url
        ).register(self.routes)
        ExperimentsAPI(Experiments(self.db), self.gateway.governance).register(self.routes)
        self.supervisor = build_finetuning(self, config, config_file)
        if self.gateway.rag is not None:
            from stackyard.rag.api import CollectionsAPI

            CollectionsAPI(self.gateway.rag, self.gateway.governance).register(self.routes)
        server = config.server
        Console(
            self.routes,
            chat,
            gateway.governance,
            gateway.router,
            max_body_bytes=self.max_body_bytes,
            sessions=Sessions(
                self.db,
                lifetime=dt.timedelta(hours=server.console_session_hours),
                idle=dt.timedelta(minutes=server.console_idle_minutes),
            ),
            secure_cookies=server.secure_cookies,
        ).register(self.routes)
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
        request = Request(
            scope,
            receive,
            max_body_bytes=self.max_body_bytes,
            max_json_depth=self.max_json_depth,
        )
        reply: Reply
        try:
            handler = self.routes.find(scope["method"], scope["path"])
            reply = await handler(request)
        except APIError as exc:
            reply = Response.error(exc)
        except ClientDisconnected:
            return
        except Exception as exc:
            known = store_error(exc)
            if known is None:
                log.exception("unhandled error (request id %s)", request.request_id)
                known = internal_error(request.request_id)
            else:
                log.warning("request %s: %s (%s)", request.request_id, known.message, exc)
            reply = Response.error(known)
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
                if self.supervisor is not None:
                    await self.supervisor.aclose()  # workers checkpoint and stop
                await self.writer.close()  # every accepted spend row is written
                self.journal.close()  # and the journal no longer needed
                await self.audit.close()  # and every guardrail decision
                await self.traces.close()  # and every queued trace
                await self.responses.close()  # and every stored response
                if self.exporter is not None:
                    await self.exporter.close()
                if self.gateway.cache is not None:
                    await self.gateway.cache.aclose()
                await self.alerts.aclose()
                if self.gateway.rag is not None:
                    self.gateway.rag.close()
                await self.gateway.aclose()
                if self.shared is not None:
                    await self.shared.aclose()
                self.db.dispose()
                self.metrics.close()  # this worker's gauges leave the sums, its counts stay
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _startup(self) -> None:
        await asyncio.to_thread(self.db.migrate)
        await asyncio.to_thread(self.snapshot.load)
        await asyncio.to_thread(self.gateway.prompts.load)
        if self.gateway.rag is not None:
            await asyncio.to_thread(self.gateway.rag.collections.load)
        budgets = [b for p in self.snapshot.keys.values() for b in p.budgets]
        await asyncio.to_thread(self.budgets.load, budgets)
        await asyncio.to_thread(TIKTOKEN.load)  # admission's prompt counts (a fraction of a s)
        await asyncio.to_thread(self._replay_spend)
        await asyncio.to_thread(self._replay_spills)
        self.snapshot.on_change = self.budgets.load
        if self.shared is not None:
            await self._seed_shared(budgets)
            self.snapshot.after_change = self._seed_shared
        self.writer.start()
        self.audit.start()
        self.traces.start()
        self.responses.start()
        if self.exporter is not None:
            self.exporter.start()
        self._background.append(asyncio.ensure_future(self.snapshot.run(self.redis_url)))
        self._background.append(asyncio.ensure_future(self._purge_forever()))
        self._background.append(asyncio.ensure_future(self.batch_runner.run()))
        if self.metrics.multiprocess:  # other workers' scrapes read this one's gauges
            self._background.append(asyncio.ensure_future(self.metrics.refresh_forever()))
        if self.supervisor is not None:
            self._background.append(asyncio.ensure_future(self.supervisor.run()))
        if self.gateway.rag is not None:
            from stackyard.rag.schedule import run_schedule

            self._background.append(asyncio.ensure_future(run_schedule(self.gateway.rag)))
        for deployment in self.gateway.router.all_deployments():
            await deployment.provider.start()
        if self.gateway.injection is not None:
            await asyncio.to_thread(self.gateway.injection.load)
        if self.gateway.topics is not None:
            await asyncio.to_thread(self.gateway.topics.load)
        if self.gateway.policies.tags_names():
            self.gateway.tagger = await asyncio.to_thread(load_tagger)
        if self.gateway.cache is not None and self.gateway.cache.semantic_configured():
            await self.gateway.cache.prepare()  # the semantic tier's models, before traffic
        # What start-up built (modules, config, models) lives as long as the process: keep it
        # out of the collector's full passes, which otherwise rescan it every few hundred
        # requests once traces queue up between writes.
        gc.collect()
        gc.freeze()

    def _replay_spend(self) -> None:
        """Spend a crashed process accepted and never wrote (its journal), and rows the
        database once refused (the spill file): written now, each once. Then this process's
        own journal opens."""
        try:
            written = replay(
                self.journal.folder,
                self.writer.spill_path,
                self.writer.columns,
                self.writer.present,
                self.writer.insert,
            )
            if written:
                log.warning("wrote %d spend rows from the journal and the spill file", written)
        except Exception:
            log.exception("could not replay the spend journal; it is kept for the next start")
        self.journal.open()

    def _replay_spills(self) -> None:
        """Traces, guardrail decisions and stored responses the database once refused (their
        spill files), written now, each once, before their writers start."""
        for writer in (self.traces, self.audit, self.responses.writer):
            try:
                done = replay_spill(writer)
            except Exception:
                log.exception("could not replay the %s spill file; it is kept", writer.what)
                continue
            if done.written:
                log.warning("wrote %d %s from the spill file", done.written, writer.what)
            if done.rejected:
                log.error(
                    "set aside %d lines of the %s spill file in %s",
                    done.rejected,
                    writer.what,
                    ", ".join(str(p) for p in done.rejects),
                )

    async def _purge_forever(self) -> None:
        """Delete traces past their retention, now and every hour."""
        observability = self.config.observability
        while True:
            ids = {name: team_id for team_id, name in self.snapshot.team_names.items()}
            team_days = {
                ids.get(team, team): policy.retention_days
                for team, policy in observability.teams.items()
                if policy.retention_days is not None
            }
            try:
                purged = await asyncio.to_thread(
                    query.purge,
                    self.db,
                    default_days=observability.retention_days,
                    team_days=team_days,
                )
                if purged:
                    log.info("purged %d traces past their retention", purged)
                gone = await asyncio.to_thread(
                    self.responses.purge,
                    default_days=observability.retention_days,
                    team_days=team_days,
                )
                self.responses.forget_old(
                    default_days=observability.retention_days, team_days=team_days
                )
                if gone:
                    log.info("purged %d stored responses past their retention", gone)
            except Exception:
                log.exception("the trace purge failed; it runs again in an hour")
            await asyncio.sleep(PURGE_EVERY)

    async def _seed_shared(self, budgets: list[Budget]) -> None:
        if self.shared is not None:
            await self.shared.seed_spend(budgets, {b: self.budgets.spent(b) for b in budgets})

    async def _health(self, request: Request) -> Reply:
        return Response.json({"status": "ok"})

    async def _ready(self, request: Request) -> Reply:
        loading = [d.id for d in self.gateway.router.all_deployments() if not d.provider.ready()]
        writers = (self.writer, self.audit, self.traces, self.responses.writer)
        stopped = [w.problem for w in writers if w.problem and w.stopped]
        failing = [w.problem for w in writers if w.problem and not w.stopped]
        ready = self.ready and not loading and not stopped
        status = "ready" if ready else ("starting" if not self.ready or loading else "down")
        if ready and failing:
            status = "degraded"  # serving, with rows going to the spill files
        body: dict[str, Any] = {"status": status, "models": len(self.gateway.router.model_names)}
        if loading:
            body["loading"] = loading
        if stopped or failing:
            body["writers"] = [*stopped, *failing]
        return Response.json(body, status=200 if ready else 503)

    async def _index(self, request: Request) -> Reply:
        if b"text/html" in (request.header(b"accept") or b""):  # a browser: the console
            return Response(303, b"", [(b"location", b"/ui")])
        return Response.json(
            {
                "name": "stackyard",
                "version": __version__,
                "openai_base_url": "/v1",
                "console": "/ui",
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
