"""Nothing runs for a caller without a valid key: a registry prompt is not rendered (one
keyless request once held the event loop for 8.1 s with a team's nested loops, and learnt the
prompt's variables from the error), and no trace is queued. With a key, a render that runs away
is a 400 naming the prompt."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from stackyard.prompts import registry
from stackyard.prompts.model import PushRequest
from stackyard.store import admin
from stackyard.store.db import Database
from tests.fakes.openai_upstream import FakeOpenAI
from tests.server.harness import running

MASTER = "sk-master-first-0123456789"
LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


async def test_no_render_and_no_trace_before_the_key_is_checked(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    config: dict[str, Any] = {
        "models": [
            {"name": "m", "provider": "openai-compatible", "api_base": fake_openai.base_url("af")}
        ],
        "auth": {"master_key": MASTER},
        "database_url": f"sqlite:///{tmp_path / 'first.db'}",
        "observability": {"flush_interval": 0.05},
    }
    db = Database(config["database_url"])
    db.migrate()
    admin.create_team(db, "owners")
    key = admin.create_key(db, "owners").key
    actor = registry.Actor("test", admin=True)
    slow = {"name": "slow", "type": "text", "engine": "jinja", "template": LOOPS + "{{ who }}"}
    registry.push(
        db,
        PushRequest.model_validate({**slow, "variables": {"who": {}}, "labels": ["production"]}),
        actor,
    )
    db.dispose()
    body = {"model": "m", "prompt": {"name": "slow", "variables": {"who": "x"}}}
    async with running(config) as (app, client):
        for headers in ({}, {"authorization": "Bearer sk-sy-wrong"}):
            refused = await client.post("/v1/chat/completions", json=body, headers=headers)
            assert refused.status_code == 401
            assert "slow" not in refused.text  # nothing about the prompt
            assert "who" not in refused.json()["error"]["message"]
        assert app.traces.depth == 0  # nothing queued for them
        await asyncio.sleep(0.2)
        assert app.traces.written == 0
        headers = {"authorization": f"Bearer {key}"}
        ran_away = await client.post("/v1/chat/completions", json=body, headers=headers)
        assert ran_away.status_code == 400
        error = ran_away.json()["error"]
        assert error["message"].startswith("Prompt 'slow' version 1: ")
        assert "took more than 0.25 s to render" in error["message"]
        assert error["param"] == "prompt"
