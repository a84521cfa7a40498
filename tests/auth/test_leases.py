"""Leases against a real Redis: no over-admission, slices given back, a crashed instance's
slices forgotten."""

from __future__ import annotations

import asyncio
import contextlib
import os

import pytest

from stackyard.auth.budgets import Overspend
from stackyard.auth.leases import LeasedCounters, LeaseReservation
from stackyard.auth.limits import Refusal
from stackyard.auth.principal import Budget, Limit
from tests.conftest import fresh_redis

REDIS_URL = os.environ.get("STACKYARD_TEST_REDIS_LEASES", "redis://127.0.0.1:6379/12")


@pytest.fixture
def redis_ready() -> None:
    fresh_redis(REDIS_URL)


async def test_two_instances_never_admit_past_a_limit(redis_ready: None) -> None:
    a, b = LeasedCounters(REDIS_URL), LeasedCounters(REDIS_URL)
    limit = [Limit("team", "t", rpm=10, tpm=None)]
    outcomes = [await (a if i % 2 else b).admit(limit, 1, [], 0.0) for i in range(30)]
    admitted = sum(isinstance(o, LeaseReservation) for o in outcomes)
    assert 8 <= admitted <= 10  # each may strand part of its last slice (a tenth: 1)
    assert all(isinstance(o, LeaseReservation | Refusal) for o in outcomes)
    await a.aclose()
    await b.aclose()


async def test_budget_slices_are_given_back_or_forgotten(redis_ready: None) -> None:
    budget = [Budget("team", "t", usd=10.0, period="day")]
    crashed = LeasedCounters(REDIS_URL, fraction=0.9)  # takes $9 at once
    assert isinstance(await crashed.admit([], 0, budget, 1.0), LeaseReservation)
    other = LeasedCounters(REDIS_URL, fraction=0.9)
    over = await other.admit([], 0, budget, 2.0)
    assert isinstance(over, Overspend)  # only $1 is not held by the first
    # The first instance dies without a word: its heartbeat lapses, its slice is forgotten.
    assert crashed._heartbeat is not None
    crashed._heartbeat.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await crashed._heartbeat
    await crashed.redis.delete(crashed._beat_prefix + crashed.instance)
    assert isinstance(await other.admit([], 0, budget, 2.0), LeaseReservation)
    # Spend is reported and moved from the slice to the total.
    reservation = await other.admit([], 0, budget, 1.0)
    assert isinstance(reservation, LeaseReservation)
    await other.settle(reservation, 0, 0.75)
    await other.flush()
    spent_key = reservation.budget_leases[0][1]
    assert float(await other.redis.get(spent_key)) == pytest.approx(0.75)
    await other.aclose()
    await crashed.redis.aclose()
    await crashed.redis.connection_pool.disconnect()


async def test_a_redis_that_comes_back_empty_gets_its_budget_totals_from_the_store(
    redis_ready: None,
) -> None:
    """Once, spend was not seeded again when Redis restarted empty: a key with a $0.10 budget
    reached $0.176."""
    budget = [Budget("key", "k", usd=0.10, period="day")]
    store = {"spent": 0.0}  # the spend log, kept up to date as the writer does

    async def spent_in_store(_: Budget) -> float:
        return store["spent"]

    first = LeasedCounters(REDIS_URL, fraction=0.2)
    first.spent_in_store = spent_in_store
    for _ in range(9):
        reservation = await first.admit([], 0, budget, 0.01)
        assert isinstance(reservation, LeaseReservation)
        await first.settle(reservation, 0, 0.01)
        store["spent"] += 0.01
    await first.aclose()
    second = LeasedCounters(REDIS_URL, fraction=0.2)
    second.spent_in_store = spent_in_store
    await second.redis.flushdb()  # Redis restarts, with nothing
    outcomes = [await second.admit([], 0, budget, 0.01) for _ in range(5)]
    assert sum(isinstance(o, LeaseReservation) for o in outcomes) == 1  # the last cent, no more
    assert isinstance(outcomes[-1], Overspend)
    assert outcomes[-1].spent == pytest.approx(0.09)
    # A report for a total that is gone does not start it again from zero.
    await second.redis.flushdb()
    first_reservation = outcomes[0]
    assert isinstance(first_reservation, LeaseReservation)
    await second.settle(first_reservation, 0, 0.01)
    await second.flush()
    spent_key = first_reservation.budget_leases[0][1]
    assert await second.redis.get(spent_key) is None
    await second.aclose()
