"""A deployment's health: recent failures, cooldown, and its latency estimate."""

from __future__ import annotations

from collections import deque


class Health:
    """Failure accounting for one deployment, in one worker process.

    A deployment cools down (is skipped by the router) when ``allowed_fails`` failures happen
    within ``window`` seconds, or at once for as long as an upstream's ``Retry-After`` asks.
    A success clears the failure record.
    """

    __slots__ = ("_failures", "allowed_fails", "cooldown", "cooling_until", "latency", "window")

    def __init__(self, *, allowed_fails: int, window: float, cooldown: float) -> None:
        self.allowed_fails = allowed_fails
        self.window = window
        self.cooldown = cooldown
        self.cooling_until = 0.0
        self.latency: float | None = None  # EWMA of seconds to a response (or first chunk)
        self._failures: deque[float] = deque()

    def available(self, now: float) -> bool:
        return now >= self.cooling_until

    def record_success(self, latency: float, alpha: float) -> None:
        self._failures.clear()
        previous = self.latency
        self.latency = latency if previous is None else alpha * latency + (1 - alpha) * previous

    def record_failure(self, now: float, retry_after: float | None = None) -> None:
        failures = self._failures
        failures.append(now)
        while failures and failures[0] < now - self.window:
            failures.popleft()
        if retry_after is not None and retry_after > 0:
            self.cooling_until = max(self.cooling_until, now + retry_after)
        if len(failures) >= self.allowed_fails:
            self.cooling_until = max(self.cooling_until, now + self.cooldown)
            failures.clear()
