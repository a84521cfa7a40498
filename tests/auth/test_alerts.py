"""Soft budgets never refuse; every budget alerts once per threshold it crosses."""

from __future__ import annotations

from stackyard.auth.alerts import BudgetAlerts
from stackyard.auth.budgets import BudgetBook
from stackyard.auth.principal import Budget
from stackyard.observability.metrics import GatewayMetrics


def test_a_soft_budget_never_refuses_and_alerts_as_it_is_spent() -> None:
    metrics = GatewayMetrics()
    alerts = BudgetAlerts((0.8, 1.0), metrics=metrics)
    book = BudgetBook()
    book.on_spend = alerts.spent
    soft = Budget("team", "t", usd=1.0, period="month", soft=True)
    for _ in range(15):  # $1.50 against a $1.00 budget
        assert book.reserve([soft], 0.5) is None
        book.settle([soft], 0.5, 0.1)
    assert abs(book.spent(soft) - 1.5) < 1e-9
    assert [(a["threshold"], a["soft"]) for a in alerts.sent] == [(0.8, True), (1.0, True)]
    assert alerts.sent[0]["spent_usd"] >= 0.8
    assert alerts.counter.get("team", "0.8", "soft") == 1
    assert alerts.counter.get("team", "1", "soft") == 1
    assert "stackyard_budget_alerts_total" in metrics.render()


def test_a_hard_budget_alerts_on_its_way_to_refusing() -> None:
    alerts = BudgetAlerts((0.5,))
    book = BudgetBook()
    book.on_spend = alerts.spent
    hard = Budget("key", "k", usd=1.0, period="day")
    book.settle([hard], 0.0, 0.6)
    assert [(a["id"], a["soft"]) for a in alerts.sent] == [("k", False)]
    book.settle([hard], 0.0, 0.3)  # crossed already: no second alert
    assert len(alerts.sent) == 1
    assert book.reserve([hard], 0.2) is not None


async def test_the_webhook_gets_alerts_in_the_order_they_were_raised() -> None:
    import asyncio

    from aiohttp import web

    received: list[float] = []

    async def hook(request: web.Request) -> web.Response:
        alert = await request.json()
        if alert["threshold"] == 0.5:  # the first is slow to answer
            await asyncio.sleep(0.3)
        received.append(alert["threshold"])
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        alerts = BudgetAlerts((0.5, 1.0), webhook_url=f"http://127.0.0.1:{port}/hook")
        alerts.spent(Budget("team", "t", usd=1.0, period="month", soft=True), 0.0, 1.2)
        await alerts.aclose()
        assert received == [0.5, 1.0]
    finally:
        await runner.cleanup()
