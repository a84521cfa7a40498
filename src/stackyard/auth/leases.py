"""Shared limits and budgets without a Redis round trip per request: leases.

Each instance takes slices ("leases") of every shared limit and budget from Redis, a tenth of
the limit at a time, and admits requests locally until its slice runs out; then it takes
another, in one atomic script for all the levels a request needs. Nothing is over-admitted:
a slice is counted in Redis before any of it is used.

- Rate limits: a slice is counted in the current minute's shared counter; what an instance
  does not use of it is simply not used by anyone (at most a tenth of a limit per instance
  and minute is stranded).
- Budgets: slices are held per instance in a Redis hash beside the budget's spent total;
  admission needs ``spent + all live slices + this slice <= budget``. Spend is reported in
  batches and moved from the instance's slice to the spent total. An instance that stops
  (its heartbeat key expires after 15 s) has its slices forgotten, so a crash cannot hold a
  budget hostage.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from stackyard.auth.budgets import Overspend, period_start
from stackyard.auth.limits import WINDOW, Refusal
from stackyard.auth.principal import Budget, Limit

log = logging.getLogger("stackyard.auth")

FRACTION = 0.1  # of a limit or budget, per lease
HEARTBEAT_TTL = 15  # seconds an instance's slices survive it

# KEYS: per rate level: current, previous; per budget: spent, slices (hash)
# ARGV: n_rate, n_budget, frac, instance, heartbeat prefix,
#       per rate: cap, chunk, minimum; per budget: usd, chunk, minimum
ACQUIRE = """
local nr = tonumber(ARGV[1])
local nb = tonumber(ARGV[2])
local frac = tonumber(ARGV[3])
local instance = ARGV[4]
local beat = ARGV[5]
local grants = {}
for i = 0, nr - 1 do
  local cap = tonumber(ARGV[6 + 3 * i])
  local chunk = tonumber(ARGV[7 + 3 * i])
  local minimum = tonumber(ARGV[8 + 3 * i])
  local cur = tonumber(redis.call('GET', KEYS[1 + 2 * i]) or '0')
  local prev = tonumber(redis.call('GET', KEYS[2 + 2 * i]) or '0')
  local room = cap - cur - prev * (1 - frac)
  if room >= chunk then grants[#grants + 1] = chunk
  elseif room >= minimum then grants[#grants + 1] = room
  else return {1, i} end
end
local b = 6 + 3 * nr
for j = 0, nb - 1 do
  local usd = tonumber(ARGV[b + 3 * j])
  local chunk = tonumber(ARGV[b + 3 * j + 1])
  local minimum = tonumber(ARGV[b + 3 * j + 2])
  local raw = redis.call('GET', KEYS[2 * nr + 1 + 2 * j])
  if not raw then return {3, j} end
  local spent = tonumber(raw)
  local slices = redis.call('HGETALL', KEYS[2 * nr + 2 + 2 * j])
  local held = 0
  for k = 1, #slices, 2 do
    if redis.call('EXISTS', beat .. slices[k]) == 1 or slices[k] == instance then
      held = held + tonumber(slices[k + 1])
    else
      redis.call('HDEL', KEYS[2 * nr + 2 + 2 * j], slices[k])
    end
  end
  local room = usd - spent - held
  if spent >= usd then return {2, j, tostring(spent)} end
  if room >= chunk then grants[#grants + 1] = chunk
  elseif room >= minimum then grants[#grants + 1] = room
  else return {2, j, tostring(spent)} end
end
for i = 0, nr - 1 do
  redis.call('INCRBYFLOAT', KEYS[1 + 2 * i], tostring(grants[1 + i]))
  redis.call('EXPIRE', KEYS[1 + 2 * i], 180)
end
for j = 0, nb - 1 do
  redis.call('HINCRBYFLOAT', KEYS[2 * nr + 2 + 2 * j], instance, tostring(grants[nr + 1 + j]))
  redis.call('EXPIRE', KEYS[2 * nr + 2 + 2 * j], 3456000)
end
local out = {0}
for k = 1, #grants do out[#out + 1] = tostring(grants[k]) end
return out
"""

# KEYS: spent, slices; ARGV: instance, cost (moves spend from the slice to the total; a total
# that is gone, Redis having restarted empty, is left for the next admission to seed again)
REPORT = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('INCRBYFLOAT', KEYS[1], ARGV[2]) end
redis.call('HINCRBYFLOAT', KEYS[2], ARGV[1], '-' .. ARGV[2])
return 0
"""


@dataclass(slots=True)
class _RateLease:
    window: float = 0.0
    remaining: float = 0.0


@dataclass(slots=True)
class _BudgetLease:
    remaining: float = 0.0


@dataclass(slots=True)
class LeaseReservation:
    token_leases: list[tuple[_RateLease, float]]
    tokens: float
    budget_leases: list[tuple[_BudgetLease, str, str]]  # lease, spent key, slices key
    most_usd: float
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@functools.cache
def _limit_header(kind: str, cap: int) -> tuple[bytes, bytes]:
    return f"x-ratelimit-limit-{kind}".encode(), str(cap).encode()


def _budget_keys(budget: Budget, now: dt.datetime) -> tuple[str, str, str]:
    start = period_start(budget.period, now)
    base = f"sy:budget:{budget.scope}:{budget.id}:{budget.period}:{start:%Y%m%d}"
    return base, f"{base}:spent", f"{base}:slices"


class LeasedCounters:
    def __init__(self, url: str, *, fraction: float = FRACTION) -> None:
        import redis.asyncio as aioredis

        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=64, timeout=5)
        self.redis: Any = aioredis.Redis(connection_pool=pool)
        self.fraction = fraction
        self.instance = uuid.uuid4().hex[:16]
        self._beat_prefix = "sy:instance:"
        self._acquire = self.redis.register_script(ACQUIRE)
        self._report = self.redis.register_script(REPORT)
        self._rates: dict[tuple[str, str, str], _RateLease] = {}
        self._budgets: dict[str, _BudgetLease] = {}
        self._budget_keys: dict[str, tuple[str, str]] = {}
        self._periods: dict[Budget, tuple[float, _BudgetLease, str, str]] = {}
        self._pending: list[tuple[str, str, float]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._closing = False
        #: A budget's spend in its current period, read from the store: what a budget's total
        #: is seeded with when Redis has none (it restarted empty).
        self.spent_in_store: Callable[[Budget], Awaitable[float]] | None = None

    async def _beat(self) -> None:
        while not self._closing:
            try:
                await self.redis.set(self._beat_prefix + self.instance, 1, ex=HEARTBEAT_TTL)
            except Exception:
                log.exception("could not renew this instance's heartbeat in Redis")
            await asyncio.sleep(1.0)

    async def admit(
        self, limits: Sequence[Limit], tokens: int, budgets: Sequence[Budget], most_usd: float
    ) -> LeaseReservation | Refusal | Overspend:
        if self._heartbeat is None:
            await self.redis.set(self._beat_prefix + self.instance, 1, ex=HEARTBEAT_TTL)
            self._heartbeat = asyncio.ensure_future(self._beat())
        now = time.time()
        start = now - now % WINDOW
        rate_needs: list[tuple[Limit, str, int, _RateLease, float]] = []
        headers: list[tuple[bytes, bytes]] = []
        for limit in limits:
            for kind, cap, amount in (("requests", limit.rpm, 1), ("tokens", limit.tpm, tokens)):
                if not cap:
                    continue
                key = (limit.scope, limit.id, kind)
                lease = self._rates.get(key)
                if lease is None:
                    lease = self._rates[key] = _RateLease()
                if lease.window != start:
                    lease.window, lease.remaining = start, 0.0
                rate_needs.append((limit, kind, cap, lease, float(amount)))
                if limit.scope == "key":
                    headers.append(_limit_header(kind, cap))
        budget_needs: list[tuple[Budget, _BudgetLease, str, str]] = []
        for budget in budgets:
            period = self._periods.get(budget)
            if period is None or now >= period[0]:  # the first time, or a new period began
                period = self._periods[budget] = self._period(budget, now)
            _, slice_, spent_key, slices_key = period
            budget_needs.append((budget, slice_, spent_key, slices_key))
        if any(self._short(rate_needs, budget_needs, most_usd)):
            # One top-up at a time: a burst that finds its slices empty waits for the one
            # refill instead of each taking a slice of its own (which would strand them).
            async with self._lock:
                short_rates, short_budgets = self._short(rate_needs, budget_needs, most_usd)
                if short_rates or short_budgets:
                    outcome = await self._top_up(start, now, short_rates, short_budgets, most_usd)
                    if outcome is not None:
                        return outcome
        for _, _, _, rate, need in rate_needs:
            rate.remaining -= need
        for _, held, _, _ in budget_needs:
            held.remaining -= most_usd
        token_leases = [(n[3], n[4]) for n in rate_needs if n[1] == "tokens"]
        return LeaseReservation(
            token_leases,
            float(tokens),
            [(held, spent, slices) for _, held, spent, slices in budget_needs],
            most_usd,
            headers,
        )

    def _period(self, budget: Budget, now: float) -> tuple[float, _BudgetLease, str, str]:
        """A budget's current period: until when it holds, this instance's slice of it, and
        its keys in Redis. Kept per budget, so a request does not rebuild them."""
        base, spent_key, slices_key = _budget_keys(budget, dt.datetime.fromtimestamp(now, dt.UTC))
        slice_ = self._budgets.setdefault(base, _BudgetLease())
        self._budget_keys[base] = (spent_key, slices_key)
        # Days and months both end at a midnight (UTC): look again then.
        until = math.inf if budget.period == "total" else (now // 86400 + 1) * 86400
        return until, slice_, spent_key, slices_key

    @staticmethod
    def _short(
        rate_needs: list[tuple[Limit, str, int, _RateLease, float]],
        budget_needs: list[tuple[Budget, _BudgetLease, str, str]],
        most_usd: float,
    ) -> tuple[
        list[tuple[Limit, str, int, _RateLease, float]],
        list[tuple[Budget, _BudgetLease, str, str]],
    ]:
        return (
            [n for n in rate_needs if n[3].remaining < n[4]],
            [n for n in budget_needs if n[1].remaining < most_usd],
        )

    async def _top_up(
        self,
        start: float,
        now: float,
        rates: list[tuple[Limit, str, int, _RateLease, float]],
        budgets: list[tuple[Budget, _BudgetLease, str, str]],
        most_usd: float,
    ) -> Refusal | Overspend | None:
        keys: list[str] = []
        args: list[Any] = [len(rates), len(budgets), (now - start) / WINDOW, self.instance]
        args.append(self._beat_prefix)
        for limit, kind, cap, rate, amount in rates:
            base = f"sy:rl:{limit.scope}:{limit.id}:{kind}"
            keys += [f"{base}:{int(start)}", f"{base}:{int(start - WINDOW)}"]
            needed = amount - rate.remaining
            args += [cap, max(needed, math.ceil(cap * self.fraction)), needed]
        for budget, held, spent_key, slices_key in budgets:
            keys += [spent_key, slices_key]
            short = most_usd - held.remaining
            args += [budget.usd, max(short, budget.usd * self.fraction), short]
        result = await self._acquire(keys=keys, args=args)
        if int(result[0]) == 3:  # a budget's total is gone (Redis restarted empty): seed it
            budget, _, spent_key, _ = budgets[int(result[1])]
            await self._seed(budget, spent_key)
            result = await self._acquire(keys=keys, args=args)
            if int(result[0]) == 3:  # seeded and gone again: a Redis that keeps losing data
                raise RuntimeError("a budget's total keeps vanishing from Redis")
        if int(result[0]) == 1:
            limit, kind, cap, _, _ = rates[int(result[1])]
            return Refusal(limit.scope, kind, cap, max(1, math.ceil(WINDOW - (now - start))))
        if int(result[0]) == 2:
            return Overspend(budgets[int(result[1])][0], float(result[2]))
        grants = [float(g) for g in result[1:]]
        for (_, _, _, rate, _), grant in zip(rates, grants, strict=False):
            rate.remaining += grant
        for (_, held, _, _), grant in zip(budgets, grants[len(rates) :], strict=True):
            held.remaining += grant
        return None

    async def settle(self, reservation: LeaseReservation, actual_tokens: int, cost: float) -> None:
        now = time.time()
        window = now - now % WINDOW
        for rate, _ in reservation.token_leases:
            if rate.window == window:
                rate.remaining += reservation.tokens - actual_tokens
        for held, spent_key, slices_key in reservation.budget_leases:
            held.remaining += reservation.most_usd - cost
            if cost:
                self._pending.append((spent_key, slices_key, cost))
        if self._pending and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.ensure_future(self._flush_soon())

    def charge(self, limit: Limit, kind: str, amount: float) -> None:
        """Count ``amount`` against this instance's slice of a limit, after the fact (a
        deployment's tokens). A slice run below zero is topped up by the deficit, from the
        shared counter, at the next admission; if the counter has no room for it, that
        admission is refused until the minute frees some."""
        now = time.time()
        window = now - now % WINDOW
        lease = self._rates.setdefault((limit.scope, limit.id, kind), _RateLease())
        if lease.window != window:
            lease.window, lease.remaining = window, 0.0
        lease.remaining -= amount

    async def _flush_soon(self) -> None:
        await asyncio.sleep(0.05)
        await self.flush()

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        totals: dict[tuple[str, str], float] = {}
        for spent_key, slices_key, cost in pending:  # one report per budget and batch
            totals[spent_key, slices_key] = totals.get((spent_key, slices_key), 0.0) + cost
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for (spent_key, slices_key), cost in totals.items():
                    await self._report(
                        keys=[spent_key, slices_key], args=[self.instance, cost], client=pipe
                    )
                await pipe.execute()
        except Exception:
            log.exception("could not report %d costs to Redis", len(pending))

    async def _seed(self, budget: Budget, spent_key: str) -> None:
        """Rebuild a budget's period total from the store (the spend log), when Redis has lost
        it: without this, a restarted Redis forgot every budget's spend (a key with a $0.10
        budget reached $0.176). Spend still on its way to the store (at most one writer
        interval's worth) is not in it."""
        spent = await self.spent_in_store(budget) if self.spent_in_store is not None else 0.0
        log.warning(
            "Redis had no spend for the %s budget of %s %s: seeded with $%.6f from the store",
            budget.period,
            budget.scope,
            budget.id,
            spent,
        )
        await self.redis.set(spent_key, spent, nx=True, ex=40 * 86400)

    async def seed_spend(self, budgets: Sequence[Budget], spent: dict[Budget, float]) -> None:
        """Start each budget's period total from the spend log, unless an instance has."""
        now = dt.datetime.now(dt.UTC)
        for budget in budgets:
            _, spent_key, _ = _budget_keys(budget, now)
            await self.redis.set(spent_key, spent.get(budget, 0.0), nx=True, ex=40 * 86400)

    async def aclose(self) -> None:
        """Report what is pending and give back every unused budget slice."""
        await self.flush()
        self._closing = True
        if self._heartbeat is not None:
            # redis-py can swallow a cancellation that lands inside a command, so the loop
            # also checks ``_closing``, and the wait is bounded.
            self._heartbeat.cancel()
            await asyncio.wait([self._heartbeat], timeout=2.0)
        with contextlib.suppress(Exception):
            for _, slices_key in self._budget_keys.values():
                await self.redis.hdel(slices_key, self.instance)
            await self.redis.delete(self._beat_prefix + self.instance)
        await self.redis.aclose()
        await self.redis.connection_pool.disconnect()  # a pool we made is ours to close
