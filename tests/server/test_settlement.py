"""A request that fails in a way nobody planned for (a bug: neither an answer nor an API error)
still gives back what it reserved: nine such requests once locked a $1 team budget until a
restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stackyard.store import admin
from stackyard.store.db import Database
from tests.fakes.openai_upstream import FakeOpenAI
from tests.server.harness import running

MASTER = "sk-master-settle-0123456789"


async def test_an_unexpected_failure_releases_the_budget_it_reserved(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    config: dict[str, Any] = {
        "models": [
            {
                "name": "m",
                "provider": "openai-compatible",
                "api_base": fake_openai.base_url("settle"),
                "input_cost_per_mtok": 1000.0,  # a tenth of a cent a request, reserved at more
                "output_cost_per_mtok": 1000.0,
            }
        ],
        "auth": {"master_key": MASTER},
        "database_url": f"sqlite:///{tmp_path / 'settle.db'}",
    }
    db = Database(config["database_url"])
    db.migrate()
    team = admin.create_team(db, "tight", budget_usd=1.0)
    key = admin.create_key(db, "tight").key
    db.dispose()
    async with running(config) as (app, client):
        (deployment,) = app.gateway.router.deployments["m"]
        provider: Any = deployment.provider
        healthy = provider.chat

        async def bug(body: dict[str, Any]) -> dict[str, Any]:
            raise RuntimeError("a bug nobody planned for")

        provider.chat = bug
        headers = {"authorization": f"Bearer {key}"}
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 50}
        for _ in range(12):
            failed = await client.post("/v1/chat/completions", json=body, headers=headers)
            assert failed.status_code == 500
            assert failed.json()["error"]["code"] == "internal_error"
        budget = next(b for p in app.snapshot.keys.values() for b in p.budgets)
        assert budget.id == team["id"]
        assert app.budgets._reserved.get(("team", team["id"]), 0.0) == 0.0
        provider.chat = healthy
        served = await client.post("/v1/chat/completions", json=body, headers=headers)
        assert served.status_code == 200, served.text
