"""Budgets in USD per key, user, team and organisation over a day, a month or all time.

At admission a request reserves its largest possible cost; it settles with the real cost. So
concurrent requests cannot together overspend a budget by more than one request's maximum.
Spend so far is loaded at start from the spend log's daily rollup (every period starts at
midnight UTC, so whole days sum it exactly) and kept up to date in memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select

from stackyard.auth.principal import Budget
from stackyard.store.db import Database
from stackyard.store.tables import SpendDaily

SCOPE_COLUMNS = {
    "key": SpendDaily.key_id,
    "user": SpendDaily.user_id,
    "team": SpendDaily.team_id,
    "organization": SpendDaily.organization_id,
}


def period_start(period: str, now: dt.datetime) -> dt.datetime:
    if period == "day":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "month":
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Overspend:
    budget: Budget
    spent: float


class BudgetBook:
    def __init__(self, db: Database | None = None) -> None:
        self.db = db
        self._spent: dict[tuple[str, str, str, dt.datetime], float] = {}
        self._reserved: dict[tuple[str, str], float] = {}
        #: Told of every settled cost: (budget, spent before, spent after). The alerts.
        self.on_spend: Callable[[Budget, float, float], None] | None = None

    def _key(self, budget: Budget, now: dt.datetime) -> tuple[str, str, str, dt.datetime]:
        return (budget.scope, budget.id, budget.period, period_start(budget.period, now))

    def load(self, budgets: Sequence[Budget]) -> None:
        """Read what each budget's owner has spent in its current period (at start)."""
        if self.db is None:
            return
        now = dt.datetime.now(dt.UTC)
        with self.db.session() as session:
            for budget in budgets:
                key = self._key(budget, now)
                if key in self._spent:
                    continue
                column = SCOPE_COLUMNS[budget.scope]
                total = session.scalar(
                    select(func.coalesce(func.sum(SpendDaily.cost_usd), 0.0)).where(
                        column == budget.id, SpendDaily.day >= key[3].date()
                    )
                )
                self._spent[key] = float(total or 0.0)

    def spent_in_store(self, budget: Budget) -> float:
        """What the store's spend log holds for ``budget``'s current period (a database read:
        for recovery, never the request path)."""
        if self.db is None:
            return 0.0
        start = period_start(budget.period, dt.datetime.now(dt.UTC))
        column = SCOPE_COLUMNS[budget.scope]
        with self.db.session() as session:
            total = session.scalar(
                select(func.coalesce(func.sum(SpendDaily.cost_usd), 0.0)).where(
                    column == budget.id, SpendDaily.day >= start.date()
                )
            )
        return float(total or 0.0)

    def spent(self, budget: Budget) -> float:
        return self._spent.get(self._key(budget, dt.datetime.now(dt.UTC)), 0.0)

    def reserve(self, budgets: Sequence[Budget], amount: float) -> Overspend | None:
        """Hold ``amount`` against every hard budget, or say which one it would overspend
        (soft budgets never refuse)."""
        budgets = [b for b in budgets if not b.soft]
        now = dt.datetime.now(dt.UTC)
        for budget in budgets:
            spent = self._spent.get(self._key(budget, now), 0.0)
            reserved = self._reserved.get((budget.scope, budget.id), 0.0)
            if spent + reserved + amount > budget.usd or spent >= budget.usd:
                return Overspend(budget, spent)
        for budget in budgets:
            slot = (budget.scope, budget.id)
            self._reserved[slot] = self._reserved.get(slot, 0.0) + amount
        return None

    def settle(self, budgets: Sequence[Budget], reserved: float, cost: float) -> None:
        now = dt.datetime.now(dt.UTC)
        for budget in budgets:
            slot = (budget.scope, budget.id)
            self._reserved[slot] = max(0.0, self._reserved.get(slot, 0.0) - reserved)
            key = self._key(budget, now)
            before = self._spent.get(key, 0.0)
            self._spent[key] = before + cost
            if self.on_spend is not None and cost:
                self.on_spend(budget, before, before + cost)
