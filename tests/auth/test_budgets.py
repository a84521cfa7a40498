import datetime as dt

from stackyard.auth.budgets import BudgetBook, period_start
from stackyard.auth.principal import Budget


def test_reservations_bound_concurrent_overspend() -> None:
    book = BudgetBook()
    team = Budget("team", "t", usd=1.0, period="month")
    # Three requests in flight, each able to cost at most $0.40: the third must wait.
    assert book.reserve([team], 0.40) is None
    assert book.reserve([team], 0.40) is None
    over = book.reserve([team], 0.40)
    assert over is not None
    assert over.budget == team
    book.settle([team], 0.40, 0.05)  # the first cost far less than its maximum
    assert book.reserve([team], 0.40) is None
    assert book.spent(team) == 0.05


def test_an_exhausted_budget_refuses_even_free_requests() -> None:
    book = BudgetBook()
    key = Budget("key", "k", usd=0.10, period="day")
    assert book.reserve([key], 0.10) is None
    book.settle([key], 0.10, 0.10)
    assert book.reserve([key], 0.0) is not None


def test_periods() -> None:
    now = dt.datetime(2026, 11, 24, 15, 30, tzinfo=dt.UTC)
    assert period_start("day", now) == dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    assert period_start("month", now) == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    assert period_start("total", now).year == 1970
