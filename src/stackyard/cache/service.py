"""The cache as the gateway uses it: what a request asks for (its ``cache`` field, the
``x-stackyard-cache-*`` headers, its team's default), the lookup (the exact tier, then the
semantic tier: :mod:`stackyard.cache.semantic`), and the store after a miss. Tenants never
share entries: the key and the semantic partition start with the team (or the key, or
master)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stackyard.auth.principal import Principal
from stackyard.cache.backends import Backend
from stackyard.cache.entry import Entry
from stackyard.cache.key import cache_key
from stackyard.cache.semantic import Question, Semantic, calls_tools, question
from stackyard.config.schema import CacheConfig
from stackyard.errors import APIError, invalid_request
from stackyard.gateway.router import Router
from stackyard.observability.metrics import Counter, GatewayMetrics
from stackyard.server.http import Request

log = logging.getLogger("stackyard.cache")
MODES = ("exact", "semantic", "off")


@dataclass(frozen=True, slots=True)
class Control:
    mode: str
    ttl: float
    namespace: str


@dataclass(slots=True)
class Lookup:
    """What the cache said about a request."""

    #: The exact tier's key (None: the model is unknown, nothing is cached).
    key: str | None = None
    entry: Entry | None = None
    tier: str = "miss"  # exact | semantic | miss
    similarity: float | None = None
    score: float | None = None
    #: The semantic tier's view of the request, to keep its answer findable after a miss.
    question: Question | None = None
    vector: Any = None
    #: Why the semantic tier was not asked, when it was wanted.
    skipped: str | None = None


def tenant(principal: Principal) -> str:
    if principal.team_id:
        return f"team:{principal.team_id}"
    if principal.key_id:
        return f"key:{principal.key_id}"
    return "master" if principal.master else "open"


class Cache:
    def __init__(
        self,
        config: CacheConfig,
        backend: Backend,
        router: Router,
        metrics: GatewayMetrics,
        *,
        team_names: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self.router = router
        self.team_names = team_names or dict
        self.lookups = Counter(
            "stackyard_cache_lookups_total", "Cache lookups, by result.", ("result",)
        )
        self.savings = Counter(
            "stackyard_cache_savings_usd_total",
            "What answers from the cache would have cost upstream.",
            ("model", "team"),
        )
        metrics.registry.add(self.lookups)
        metrics.registry.add(self.savings)
        self._pending: set[asyncio.Task[None]] = set()
        options = config.semantic
        self.semantic = Semantic(
            options.embedding_model,
            error_budget=options.error_budget,
            min_similarity=options.min_similarity,
            top_k=options.top_k,
        )
        self._semantic_ready = False

    def semantic_configured(self) -> bool:
        return self.config.mode == "semantic" or any(
            p.mode == "semantic" for p in self.config.teams.values()
        )

    async def prepare(self) -> None:
        """Load the semantic tier's models now (a problem is logged, and told to requests)."""
        with contextlib.suppress(APIError):
            await self._semantic_tier()

    async def _semantic_tier(self) -> Semantic:
        if not self._semantic_ready:
            problem = await asyncio.to_thread(self.semantic.warm)
            if problem:
                raise invalid_request(
                    f"cache mode 'semantic' is unavailable on this gateway: {problem}",
                    param="cache.mode",
                )
            self._semantic_ready = True
        return self.semantic

    def control(self, request: Request, spec: Any, principal: Principal) -> Control | None:
        """What this request asks of the cache (None: not to use it)."""
        policy = None
        if principal.team_id and self.config.teams:
            policy = self.config.teams.get(principal.team_id) or self.config.teams.get(
                self.team_names().get(principal.team_id, "")
            )
        mode = (policy.mode if policy else None) or self.config.mode
        ttl = (policy.ttl if policy else None) or self.config.ttl
        namespace = "default"
        if spec is not None and not isinstance(spec, dict):
            raise invalid_request("'cache' must be an object", param="cache")
        given = dict(spec or {})
        for field in ("mode", "ttl", "namespace"):
            header = request.header(f"x-stackyard-cache-{field}".encode())
            if header is not None and field not in given:
                given[field] = header.decode("latin-1").strip()
        if "mode" in given:
            mode = given["mode"]
            if mode not in MODES:
                raise invalid_request(
                    f"cache.mode must be one of {', '.join(MODES)}", param="cache.mode"
                )
        if "ttl" in given:
            try:
                asked = float(given["ttl"])
            except (TypeError, ValueError):
                message = "cache.ttl must be a number of seconds"
                raise invalid_request(message, param="cache.ttl") from None
            if asked <= 0:
                raise invalid_request("cache.ttl must be positive", param="cache.ttl")
            ttl = min(asked, ttl)  # a request may shorten an entry's life, not lengthen it
        if "namespace" in given:
            namespace = str(given["namespace"])[:200]
        if mode == "off":
            return None
        return Control(mode, ttl, namespace)

    def _fingerprint(self, model: str) -> str | None:
        group = self.router.deployments.get(model)
        if not group:
            return None
        upstream = sorted({f"{d.entry.provider}/{d.entry.upstream_model}" for d in group})
        return model + "=" + ",".join(upstream)

    async def lookup(self, control: Control, principal: Principal, body: dict[str, Any]) -> Lookup:
        fingerprint = self._fingerprint(str(body.get("model")))
        if fingerprint is None:
            return Lookup()
        owner = tenant(principal)
        key = cache_key(owner, fingerprint, control.namespace, body)
        found = Lookup(key)
        try:
            entry = await self.backend.get(key)
            if entry is not None:
                found.entry, found.tier = entry, "exact"
            elif control.mode == "semantic":
                await self._similar(found, owner, fingerprint, control, body)
        except APIError:
            raise
        except Exception:
            log.exception("cache lookup failed; answering from upstream")
            self.lookups.inc("error")
            return Lookup(key)
        self.lookups.inc(found.tier)
        if found.entry is not None:
            self.savings.inc(found.entry.model, principal.team_id or "", by=found.entry.cost_usd)
        return found

    async def _similar(
        self, found: Lookup, owner: str, fingerprint: str, control: Control, body: dict[str, Any]
    ) -> None:
        semantic = await self._semantic_tier()
        limit = self.config.semantic.max_temperature
        asked = question(owner, fingerprint, control.namespace, body, limit)
        if isinstance(asked, str):
            found.skipped = asked
            return
        found.question = asked
        found.vector = await semantic.embed(asked.text)
        candidates = await self.backend.nearest(asked.partition, found.vector, semantic.top_k)
        match = await semantic.choose(asked.text, candidates)
        if match is None:
            return
        entry = await self.backend.get(match.candidate.key)
        if entry is not None:
            found.entry, found.tier = entry, "semantic"
            found.similarity, found.score = match.candidate.similarity, match.score

    def store(
        self,
        key: str,
        control: Control,
        model: str,
        *,
        cost: float,
        usage: dict[str, Any] | None,
        response: dict[str, Any] | None = None,
        chunks: list[dict[str, Any]] | None = None,
        asked: Question | None = None,
        vector: Any = None,
    ) -> None:
        """Keep an answer (in the background: the client is not kept waiting for Redis); for
        the semantic tier too, unless it calls tools."""
        now = time.time()
        entry = Entry(
            id=f"cache_{secrets.token_hex(10)}",
            key=key,
            namespace=control.namespace,
            model=model,
            created=now,
            expires=now + control.ttl,
            cost_usd=cost,
            usage=usage,
            response=response,
            chunks=chunks,
        )
        if asked is not None and calls_tools(response, chunks):
            asked = None
        task = asyncio.ensure_future(self._put(entry, asked, vector))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _put(self, entry: Entry, asked: Question | None, vector: Any) -> None:
        try:
            await self.backend.put(entry)
            if asked is not None and vector is not None:
                await self.backend.add_vector(
                    asked.partition, entry.key, vector, asked.text, entry.expires
                )
        except Exception:
            log.exception("could not store a cache entry")

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self.backend.aclose()
