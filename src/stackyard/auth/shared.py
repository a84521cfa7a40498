"""Rate limits and budgets shared by every instance, in Redis, one atomic script per step.

Admission checks every limit level and every budget, then counts the request, in one Lua
script: either all levels take it or none does, whichever instance it arrives at. Settlement
replaces the token estimate with the real usage and the budget reservation with the real cost,
in a second script. Windows are wall-clock minutes (the same on every instance).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stackyard.auth.budgets import period_start
from stackyard.auth.limits import WINDOW, Refusal
from stackyard.auth.principal import Budget, Limit

log = logging.getLogger("stackyard.auth")
SETTLE_INTERVAL = 0.005  # seconds between batches of settlements

ADMIT = """
local nc = tonumber(ARGV[1])
local nb = tonumber(ARGV[2])
local frac = tonumber(ARGV[3])
for i = 0, nc - 1 do
  local cap = tonumber(ARGV[4 + 2 * i])
  local amount = tonumber(ARGV[5 + 2 * i])
  local cur = tonumber(redis.call('GET', KEYS[1 + 2 * i]) or '0')
  local prev = tonumber(redis.call('GET', KEYS[2 + 2 * i]) or '0')
  if cur + prev * (1 - frac) + amount > cap then
    return {1, i, tostring(cur + prev * (1 - frac))}
  end
end
local b = 4 + 2 * nc
for j = 0, nb - 1 do
  local usd = tonumber(ARGV[b + 2 * j])
  local most = tonumber(ARGV[b + 2 * j + 1])
  local spent = tonumber(redis.call('GET', KEYS[2 * nc + 1 + 2 * j]) or '0')
  local reserved = tonumber(redis.call('GET', KEYS[2 * nc + 2 + 2 * j]) or '0')
  if spent >= usd or spent + reserved + most > usd then
    return {2, j, tostring(spent)}
  end
end
for i = 0, nc - 1 do
  redis.call('INCRBYFLOAT', KEYS[1 + 2 * i], ARGV[5 + 2 * i])
  redis.call('EXPIRE', KEYS[1 + 2 * i], 180)
end
for j = 0, nb - 1 do
  redis.call('INCRBYFLOAT', KEYS[2 * nc + 2 + 2 * j], ARGV[b + 2 * j + 1])
  redis.call('EXPIRE', KEYS[2 * nc + 2 + 2 * j], 3600)
end
return {0}
"""

SETTLE = """
local nt = tonumber(ARGV[1])
local nb = tonumber(ARGV[2])
for i = 1, nt do
  redis.call('INCRBYFLOAT', KEYS[i], ARGV[3])
end
for j = 0, nb - 1 do
  redis.call('INCRBYFLOAT', KEYS[nt + 2 + 2 * j], '-' .. ARGV[4])
  redis.call('INCRBYFLOAT', KEYS[nt + 1 + 2 * j], ARGV[5])
end
return 0
"""


@dataclass(slots=True)
class SharedReservation:
    token_keys: list[str]
    budget_keys: list[str]
    tokens: float
    reserved_usd: float
    headers: list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class SharedOverspend:
    budget: Budget
    spent: float


def _spent_key(budget: Budget, now: dt.datetime) -> str:
    start = period_start(budget.period, now)
    return f"sy:budget:{budget.scope}:{budget.id}:{budget.period}:{start:%Y%m%d}:spent"


def _reserved_key(budget: Budget) -> str:
    return f"sy:budget:{budget.scope}:{budget.id}:reserved"


class SharedCounters:
    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        # A bounded pool that waits for a free connection (the default one raises "Too many
        # connections" under a burst of concurrent requests).
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=64, timeout=5)
        self.redis: Any = aioredis.Redis(connection_pool=pool)
        self._admit = self.redis.register_script(ADMIT)
        self._settle = self.redis.register_script(SETTLE)
        self._pending: list[tuple[list[str], list[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def admit(
        self, limits: Sequence[Limit], tokens: int, budgets: Sequence[Budget], most_usd: float
    ) -> SharedReservation | Refusal | SharedOverspend:
        now = time.time()
        start = now - now % WINDOW
        frac = (now - start) / WINDOW
        keys: list[str] = []
        args: list[Any] = []
        levels: list[tuple[Limit, str, int]] = []
        for limit in limits:
            for kind, cap, amount in (("requests", limit.rpm, 1), ("tokens", limit.tpm, tokens)):
                if cap:
                    base = f"sy:rl:{limit.scope}:{limit.id}:{kind}"
                    keys += [f"{base}:{int(start)}", f"{base}:{int(start - WINDOW)}"]
                    args += [cap, amount]
                    levels.append((limit, kind, cap))
        today = dt.datetime.now(dt.UTC)
        budget_keys: list[str] = []
        for budget in budgets:
            budget_keys += [_spent_key(budget, today), _reserved_key(budget)]
            args += [budget.usd, most_usd]
        result = await self._admit(
            keys=[*keys, *budget_keys], args=[len(levels), len(budgets), frac, *args]
        )
        outcome = int(result[0])
        if outcome == 1:
            limit, kind, cap = levels[int(result[1])]
            return Refusal(limit.scope, kind, cap, max(1, math.ceil(WINDOW - (now - start))))
        if outcome == 2:
            return SharedOverspend(budgets[int(result[1])], float(result[2]))
        token_keys = [keys[2 * i] for i, level in enumerate(levels) if level[1] == "tokens"]
        headers = [
            (f"x-ratelimit-limit-{kind}".encode(), str(cap).encode())
            for limit, kind, cap in levels
            if limit.scope == "key"
        ]
        return SharedReservation(token_keys, budget_keys, float(tokens), most_usd, headers)

    async def settle(self, reservation: SharedReservation, actual_tokens: int, cost: float) -> None:
        """Queue a settlement; they are sent together, every few milliseconds, in one
        pipeline (settling is not on the request's critical path)."""
        self._pending.append(
            (
                [*reservation.token_keys, *reservation.budget_keys],
                [
                    len(reservation.token_keys),
                    len(reservation.budget_keys) // 2,
                    actual_tokens - reservation.tokens,
                    reservation.reserved_usd,
                    cost,
                ],
            )
        )
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(SETTLE_INTERVAL)
        await self.flush()

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for keys, args in pending:
                    await self._settle(keys=keys, args=args, client=pipe)
                await pipe.execute()
        except Exception:
            log.exception("could not settle %d requests in Redis", len(pending))

    async def seed_spend(self, budgets: Sequence[Budget], spent: dict[Budget, float]) -> None:
        """Start each budget's period counter from the spend log, unless an instance has."""
        now = dt.datetime.now(dt.UTC)
        for budget in budgets:
            await self.redis.set(
                _spent_key(budget, now), spent.get(budget, 0.0), nx=True, ex=40 * 86400
            )

    async def aclose(self) -> None:
        await self.flush()
        await self.redis.aclose()
        await self.redis.connection_pool.disconnect()  # a pool we made is ours to close
