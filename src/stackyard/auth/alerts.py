"""Budget alerts: when spend crosses a share of a budget (80% and 100% by default), say so in
the log, in ``stackyard_budget_alerts_total``, and to a webhook if one is configured. A soft
budget only alerts; a hard one alerts on its way to refusing requests."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from stackyard.auth.principal import Budget
from stackyard.observability.metrics import Counter, GatewayMetrics

log = logging.getLogger("stackyard.alerts")


class BudgetAlerts:
    def __init__(
        self,
        thresholds: Sequence[float] = (0.8, 1.0),
        *,
        webhook_url: str | None = None,
        webhook_headers: dict[str, str] | None = None,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.thresholds = sorted(thresholds)
        self.webhook_url = webhook_url
        self.webhook_headers = webhook_headers or {}
        self.counter = Counter(
            "stackyard_budget_alerts_total",
            "Budgets whose spend crossed an alert threshold.",
            ("scope", "threshold", "kind"),
        )
        if metrics is not None:
            metrics.registry.add(self.counter)
        self.sent: list[dict[str, Any]] = []  # the latest alerts, for the operator and tests
        #: Alerts waiting for the webhook, delivered one at a time in the order they were raised
        #: (a receiver sees the 80% alert before the 100% one, however busy the machine).
        self._outbox: list[dict[str, Any]] = []
        self._sender: asyncio.Task[None] | None = None

    def spent(self, budget: Budget, before: float, after: float) -> None:
        """Called with a budget's spend before and after a request settled."""
        for share in self.thresholds:
            line = share * budget.usd
            if before < line <= after:
                self._alert(budget, share, after)

    def _alert(self, budget: Budget, share: float, spent: float) -> None:
        kind = "soft" if budget.soft else "hard"
        alert = {
            "type": "budget_threshold",
            "scope": budget.scope,
            "id": budget.id,
            "period": budget.period,
            "budget_usd": budget.usd,
            "spent_usd": round(spent, 6),
            "threshold": share,
            "soft": budget.soft,
            "at": time.time(),
        }
        log.warning(
            "%s budget of %s %s: $%.4f spent of $%.2f this %s (%.0f%% threshold)",
            kind,
            budget.scope,
            budget.id,
            spent,
            budget.usd,
            budget.period,
            share * 100,
        )
        self.counter.inc(budget.scope, f"{share:g}", kind)
        self.sent = [*self.sent[-99:], alert]
        if self.webhook_url:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop (a CLI): the log line is the alert
                return
            self._outbox.append(alert)
            if self._sender is None or self._sender.done():
                self._sender = loop.create_task(self._deliver())

    async def _deliver(self) -> None:
        while self._outbox:
            await self._post(self._outbox.pop(0))

    async def _post(self, alert: dict[str, Any]) -> None:
        assert self.webhook_url is not None
        try:
            timeout = aiohttp.ClientTimeout(total=10)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(self.webhook_url, json=alert, headers=self.webhook_headers) as reply,
            ):
                if reply.status >= 300:
                    log.warning("the alert webhook answered %d", reply.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not deliver a budget alert to the webhook: %s", exc)

    async def aclose(self) -> None:
        if self._sender is not None:
            await asyncio.gather(self._sender, return_exceptions=True)
