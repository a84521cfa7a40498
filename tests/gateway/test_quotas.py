"""Deployment quotas, counted in memory and shared through Redis leases (a real Redis)."""

from __future__ import annotations

import os

import pytest

from stackyard.auth.leases import LeasedCounters
from stackyard.auth.limits import RateLimiter
from stackyard.auth.principal import Limit
from stackyard.gateway.quotas import LocalQuotas, SharedQuotas
from tests.conftest import fresh_redis

REDIS_URL = os.environ.get("STACKYARD_TEST_REDIS_QUOTAS", "redis://127.0.0.1:6379/13")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_040.0  # 20 s into a minute

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redis_ready() -> None:
    fresh_redis(REDIS_URL)


async def test_local_quota_counts_requests_and_then_tokens() -> None:
    clock = Clock()
    quotas = LocalQuotas(RateLimiter(clock=clock))
    requests = Limit("deployment", "a", rpm=3, tpm=None)
    assert [await quotas.take(requests) for _ in range(4)] == [None, None, None, 40]
    tokens = Limit("deployment", "b", rpm=None, tpm=100)
    assert await quotas.take(tokens) is None
    quotas.charge_tokens(tokens, 99)
    assert await quotas.take(tokens) is None  # one token left
    quotas.charge_tokens(tokens, 5)
    assert await quotas.take(tokens) == 40  # spent: wait for the minute to free some
    clock.now += 120
    assert await quotas.take(tokens) is None


async def test_two_instances_share_one_request_quota(redis_ready: None) -> None:
    a, b = LeasedCounters(REDIS_URL), LeasedCounters(REDIS_URL)
    quota = Limit("deployment", "shared-rpm", rpm=10, tpm=None)
    first, second = SharedQuotas(a), SharedQuotas(b)
    waits = [await (first if i % 2 else second).take(quota) for i in range(30)]
    taken = waits.count(None)
    assert 8 <= taken <= 10  # never more; each may strand part of its last slice (1)
    assert all(w is None or 1 <= w <= 60 for w in waits)
    await a.aclose()
    await b.aclose()


async def test_tokens_charged_on_one_instance_close_the_quota_on_another(
    redis_ready: None,
) -> None:
    a, b = LeasedCounters(REDIS_URL), LeasedCounters(REDIS_URL)
    quota = Limit("deployment", "shared-tpm", rpm=None, tpm=1000)
    first, second = SharedQuotas(a), SharedQuotas(b)
    assert await first.take(quota) is None
    first.charge_tokens(quota, 900)  # what the answer used, after the fact
    assert await first.take(quota) is None  # the 900 are now counted in Redis
    assert await second.take(quota) is None  # 100 left, shared
    second.charge_tokens(quota, 300)
    assert await second.take(quota) is not None  # past the quota: refused
    await a.aclose()
    await b.aclose()


async def test_redis_away_admits_rather_than_fails() -> None:
    leases = LeasedCounters("redis://127.0.0.1:1/0")
    assert await SharedQuotas(leases).take(Limit("deployment", "x", rpm=1, tpm=None)) is None
    await leases.redis.aclose()
    await leases.redis.connection_pool.disconnect()
