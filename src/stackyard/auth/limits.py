"""Requests and tokens per minute, per key, user, team and deployment, in memory.

Each counter is a sliding minute (the current fixed minute plus the previous one, weighted by
how much of it still overlaps). A request must pass every level; if one refuses, what the others
counted is given back. Tokens are reserved at admission from an estimate and reconciled with
the real usage afterwards.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stackyard.auth.principal import Limit

WINDOW = 60.0


class _Counter:
    __slots__ = ("current", "previous", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.current = 0.0
        self.previous = 0.0

    def roll(self, now: float) -> None:
        elapsed = now - self.start
        if elapsed >= WINDOW:
            windows = int(elapsed // WINDOW)
            self.previous = self.current if windows == 1 else 0.0
            self.current = 0.0
            self.start += windows * WINDOW

    def used(self, now: float) -> float:
        overlap = 1.0 - (now - self.start) / WINDOW
        return self.current + self.previous * max(0.0, overlap)


@dataclass(frozen=True, slots=True)
class Refusal:
    scope: str
    kind: str  # "requests" or "tokens"
    limit: int
    retry_after: int


@dataclass(slots=True)
class Reservation:
    counters: list[tuple[_Counter, float]]
    token_counters: list[_Counter]
    tokens: float
    headers: list[tuple[bytes, bytes]]


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._counters: dict[tuple[str, str, str], _Counter] = {}

    def _counter(self, key: tuple[str, str, str], now: float) -> _Counter:
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = _Counter(now - now % WINDOW)
        counter.roll(now)
        return counter

    def admit(self, limits: Sequence[Limit], tokens: int) -> Reservation | Refusal:
        now = self.clock()
        taken: list[tuple[_Counter, float]] = []
        token_counters: list[_Counter] = []
        headers: list[tuple[bytes, bytes]] = []
        for limit in limits:
            for kind, cap, amount in (("requests", limit.rpm, 1.0), ("tokens", limit.tpm, tokens)):
                if not cap:
                    continue
                counter = self._counter((limit.scope, limit.id, kind), now)
                used = counter.used(now)
                if used + amount > cap:
                    for taken_counter, taken_amount in taken:
                        taken_counter.current -= taken_amount
                    wait = math.ceil(WINDOW - (now - counter.start))
                    return Refusal(limit.scope, kind, cap, max(1, wait))
                counter.current += amount
                taken.append((counter, amount))
                if kind == "tokens":
                    token_counters.append(counter)
                if not headers or limit.scope == "key":
                    reset = f"{max(0.0, WINDOW - (now - counter.start)):.0f}s".encode()
                    headers += [
                        (f"x-ratelimit-limit-{kind}".encode(), str(cap).encode()),
                        (
                            f"x-ratelimit-remaining-{kind}".encode(),
                            str(max(0, int(cap - used - amount))).encode(),
                        ),
                        (f"x-ratelimit-reset-{kind}".encode(), reset),
                    ]
        return Reservation(taken, token_counters, float(tokens), headers)

    def room(self, limits: Sequence[Limit]) -> bool:
        """Whether one more request fits every limit (tokens: whether any are left)."""
        now = self.clock()
        for limit in limits:
            for kind, cap, amount in (("requests", limit.rpm, 1.0), ("tokens", limit.tpm, 0.0)):
                if cap:
                    used = self._counter((limit.scope, limit.id, kind), now).used(now)
                    if (used + amount > cap) if amount else (used >= cap):
                        return False
        return True

    def charge(self, limit: Limit, kind: str, amount: float) -> None:
        """Count ``amount`` (requests or tokens) against one limit, unconditionally."""
        now = self.clock()
        self._counter((limit.scope, limit.id, kind), now).current += amount

    def wait(self) -> int:
        """Seconds until the current minute ends (when counters start to free up)."""
        now = self.clock()
        return max(1, math.ceil(WINDOW - now % WINDOW))

    def reconcile(self, reservation: Reservation, actual_tokens: int) -> None:
        """Replace the token estimate with what the request really used."""
        delta = actual_tokens - reservation.tokens
        for counter in reservation.token_counters:
            counter.current = max(0.0, counter.current + delta)
