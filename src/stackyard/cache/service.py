"""The cache as the gateway uses it: what a request asks for (its ``cache`` field, the
``x-stackyard-cache-*`` headers, its team's default), the lookup, and the store after a
miss. Tenants never share entries: the key starts with the team (or the key, or master)."""

from __future__ import annotations

import asyncio
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
from stackyard.config.schema import CacheConfig
from stackyard.errors import invalid_request
from stackyard.gateway.router import Router
from stackyard.observability.metrics import Counter, GatewayMetrics
from stackyard.server.http import Request

log = logging.getLogger("stackyard.cache")
MODES = ("exact", "off")


@dataclass(frozen=True, slots=True)
class Control:
    mode: str
    ttl: float
    namespace: str


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
            if mode == "semantic":
                raise invalid_request(
                    "cache mode 'semantic' is not available yet; use 'exact' or 'off'",
                    param="cache.mode",
                )
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

    async def lookup(
        self, control: Control, principal: Principal, body: dict[str, Any]
    ) -> tuple[str | None, Entry | None]:
        fingerprint = self._fingerprint(str(body.get("model")))
        if fingerprint is None:
            return None, None
        key = cache_key(tenant(principal), fingerprint, control.namespace, body)
        try:
            entry = await self.backend.get(key)
        except Exception:
            log.exception("cache lookup failed; answering from upstream")
            self.lookups.inc("error")
            return key, None
        self.lookups.inc("hit" if entry is not None else "miss")
        if entry is not None:
            self.savings.inc(entry.model, principal.team_id or "", by=entry.cost_usd)
        return key, entry

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
    ) -> None:
        """Keep an answer (in the background: the client is not kept waiting for Redis)."""
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
        task = asyncio.ensure_future(self._put(entry))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _put(self, entry: Entry) -> None:
        try:
            await self.backend.put(entry)
        except Exception:
            log.exception("could not store a cache entry")

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self.backend.aclose()
