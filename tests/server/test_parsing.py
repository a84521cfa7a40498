"""Nothing but parsing before admission, and parsing bounded: a body nested deeper than
``server.max_json_depth`` is a 400 before anything else runs, without a key or with one, and
leaves the trace writer, the budgets and every later request as they were."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from stackyard.server.http import nested_deeper
from stackyard.store import admin
from stackyard.store.db import Database
from tests.fakes.openai_upstream import FakeOpenAI
from tests.server.harness import running

MASTER = "sk-master-parse-0123456789"


def nested(depth: int) -> str:
    """A chat body whose ``metadata`` nests ``depth`` levels in all."""
    return (
        '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "metadata": '
        + "[" * (depth - 1)
        + "]" * (depth - 1)
        + "}"
    )


def test_depth_is_measured_without_recursion() -> None:
    deep: list[object] = []
    for _ in range(100_000):  # far past Python's recursion limit
        deep = [deep]
    assert nested_deeper(deep, 64)
    assert not nested_deeper({"a": [{"b": [1, 2, {"c": "d"}]}]}, 5)
    assert nested_deeper({"a": [{"b": [1, 2, {"c": "d"}]}]}, 4)
    assert not nested_deeper("text", 1)


async def test_a_deep_body_is_refused_at_parse_and_breaks_nothing(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    config: dict[str, Any] = {
        "models": [
            {
                "name": "m",
                "provider": "openai-compatible",
                "api_base": fake_openai.base_url("parse"),
                "input_cost_per_mtok": 1000.0,
            }
        ],
        "auth": {"master_key": MASTER},
        "database_url": f"sqlite:///{tmp_path / 'parse.db'}",
        "observability": {"flush_interval": 0.05},
        "server": {"max_json_depth": 20},
    }
    db = Database(config["database_url"])
    db.migrate()
    admin.create_team(db, "small", budget_usd=1.0)
    key = admin.create_key(db, "small").key
    db.dispose()
    keyless = {"content-type": "application/json"}
    headers = {**keyless, "authorization": f"Bearer {key}"}
    async with running(config) as (app, client):
        for body, who in ((nested(1000), keyless), (nested(300), headers), (nested(21), headers)):
            for _ in range(9):
                refused = await client.post("/v1/chat/completions", content=body, headers=who)
                assert refused.status_code == 400, refused.text
                error = refused.json()["error"]
                assert error["type"] == "invalid_request_error"
                assert "nested deeper than 20 levels" in error["message"]
        fine = await client.post("/v1/chat/completions", content=nested(20), headers=headers)
        assert fine.status_code == 200, fine.text
        for _ in range(200):  # the trace writer wrote it: it is alive
            if app.traces.written:
                break
            await asyncio.sleep(0.02)
        assert app.traces.written == 1
        assert app.traces.problem is None
        ready = await client.get("/ready")
        assert ready.json()["status"] == "ready"
