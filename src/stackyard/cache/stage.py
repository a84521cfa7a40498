"""The cache as a stage: looked up once the input rails have passed the request (an answer
from the cache is served at the configured price, and nothing is routed), and the answer of
a miss kept once it is complete and settled. Entries are kept in the door's own shape, under
a key that includes the door."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stackyard.gateway.pipeline.exchange import Served
from stackyard.gateway.pipeline.stage import Stage

if TYPE_CHECKING:
    from stackyard.cache.service import Cache, Control, Lookup
    from stackyard.gateway.pipeline.exchange import Body, Exchange
    from stackyard.gateway.service import Gateway

#: ``ex.state`` key: where a missed request's answer goes.
MISSED = "cache"
CACHE_MISS = (b"x-stackyard-cache", b"miss")


def saved_header(upstream_cost: float, price: float) -> tuple[bytes, bytes]:
    """``x-stackyard-cache-saved-usd``: what the first answer cost upstream, less what the hit
    is charged (never below zero)."""
    return b"x-stackyard-cache-saved-usd", f"{max(0.0, upstream_cost - price):.8f}".encode()


@dataclass(slots=True)
class Missed:
    cache: Cache
    found: Lookup
    control: Control
    model: str


class CacheStage(Stage):
    name = "cache"

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def before(self, ex: Exchange) -> Served | None:
        cache = self.gateway.cache
        if cache is None:
            return None
        ticket = ex.admitted
        control = cache.control(ex.request, ex.options.get("cache"), ticket.principal)
        if control is None:
            return None
        looked = time.time_ns()
        found = await cache.lookup(control, ticket.principal, ex.door.cache_view(ex.body))
        if ticket.trace is not None:
            span = ticket.trace.child("cache.lookup", looked)
            span.attributes["stackyard.cache.mode"] = control.mode
            span.attributes["stackyard.cache.hit"] = found.entry is not None
            span.attributes["stackyard.cache.tier"] = found.tier
            span.attributes["stackyard.cache.namespace"] = control.namespace
            if found.similarity is not None:
                span.attributes["stackyard.cache.similarity"] = round(found.similarity, 4)
                span.attributes["stackyard.cache.verifier_score"] = round(found.score or 0, 4)
            if found.skipped:
                span.attributes["stackyard.cache.semantic_skipped"] = found.skipped
        entry = found.entry
        if entry is not None:
            ex.headers.append((b"x-stackyard-cache", found.tier.encode()))
            ex.headers.append((b"x-stackyard-cache-id", entry.id.encode()))
            if found.similarity is not None:
                ex.headers.append((b"x-stackyard-cache-similarity", b"%.4f" % found.similarity))
                score = b"%.4f" % (found.score or 0.0)
                ex.headers.append((b"x-stackyard-cache-verifier-score", score))
            price = self.gateway.config.cache.cost_per_hit
            ex.headers.append(saved_header(entry.cost_usd, price))
            if ticket.trace is not None:
                ticket.trace.cache_tier = found.tier
                ticket.trace.cache_saved_usd = max(0.0, entry.cost_usd - price)
            if ex.stream:
                return Served(events=ex.door.replay_events(entry), usage=entry.usage, cost=price)
            return Served(answer=ex.door.replay(entry), usage=entry.usage, cost=price)
        if found.key is not None:
            ex.state[MISSED] = Missed(cache, found, control, str(ex.body["model"]))
            ex.headers.append(CACHE_MISS)
            if found.skipped is not None:
                why = found.skipped.encode("latin-1", "replace")
                ex.headers.append((b"x-stackyard-cache-semantic-skipped", why))
        return None

    def records(self, ex: Exchange) -> bool:
        return MISSED in ex.state

    def settled(
        self,
        ex: Exchange,
        cost: float,
        usage: dict[str, Any] | None,
        answer: Body | None,
        events: list[Any] | None,
    ) -> None:
        missed: Missed | None = ex.state.get(MISSED)
        if missed is None:
            return
        found = missed.found
        assert found.key is not None
        tools = ex.door.calls_tools(answer, events)
        missed.cache.store(
            found.key,
            missed.control,
            missed.model,
            cost=cost,
            usage=usage,
            response=answer,
            chunks=list(events) if events is not None else None,
            asked=None if tools else found.question,
            vector=found.vector,
        )
