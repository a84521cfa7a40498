"""Deployment quotas: the requests and tokens per minute a model deployment may receive.

A quota is counted per worker in memory, or, when ``redis_url`` is set, shared by every
instance through the same leases as the rate limits (:mod:`stackyard.auth.leases`): an
instance takes a tenth of the quota at a time and counts locally until it runs out, so the
request path pays a Redis round trip only once per slice. Tokens are charged after the fact,
with what each answer really used; a minute's tokens are spent once its charges exceed the
quota, and the deployment is skipped until the next minute frees room.
"""

from __future__ import annotations

import logging
from typing import Protocol

from stackyard.auth.leases import LeasedCounters
from stackyard.auth.limits import RateLimiter, Refusal
from stackyard.auth.principal import Limit

log = logging.getLogger("stackyard.gateway")


class Quotas(Protocol):
    async def take(self, quota: Limit) -> int | None:
        """Count one request against ``quota`` if it has room (requests, and any tokens
        left); return None if it did, or the seconds until the quota frees up."""
        ...

    def charge_tokens(self, quota: Limit, tokens: int) -> None:
        """Count the tokens a request to this deployment used."""
        ...


class LocalQuotas:
    """Counted in this worker's memory (one instance)."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def take(self, quota: Limit) -> int | None:
        if not self.limiter.room([quota]):
            return self.limiter.wait()
        if quota.rpm:
            self.limiter.charge(quota, "requests", 1)
        return None

    def charge_tokens(self, quota: Limit, tokens: int) -> None:
        if quota.tpm and tokens:
            self.limiter.charge(quota, "tokens", tokens)


class SharedQuotas:
    """Shared by every instance through Redis leases."""

    def __init__(self, leases: LeasedCounters) -> None:
        self.leases = leases

    async def take(self, quota: Limit) -> int | None:
        try:
            # No tokens are reserved: the tokens used so far are charged as they finish,
            # so a slice is short exactly when this instance's charges ran past it.
            outcome = await self.leases.admit([quota], 0, (), 0.0)
        except Exception:  # Redis away: serve rather than fail every request (logged)
            log.exception("shared deployment quotas unavailable; admitting on %s", quota.id)
            return None
        if isinstance(outcome, Refusal):
            return outcome.retry_after
        return None

    def charge_tokens(self, quota: Limit, tokens: int) -> None:
        if quota.tpm and tokens:
            self.leases.charge(quota, "tokens", tokens)
