"""An expired key is told so (``expired_api_key``, as the docs say), and a key cannot be made
already expired."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import update

from stackyard.store import admin
from stackyard.store.db import Database
from stackyard.store.tables import VirtualKey
from stackyard.store.tables.base import utcnow
from tests.fakes.openai_upstream import FakeOpenAI
from tests.server.harness import running

MASTER = "sk-master-keys-0123456789"


async def test_an_expired_key_is_told_it_expired(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    config: dict[str, Any] = {
        "models": [
            {"name": "m", "provider": "openai-compatible", "api_base": fake_openai.base_url("k")}
        ],
        "auth": {"master_key": MASTER},
        "database_url": f"sqlite:///{tmp_path / 'keys.db'}",
    }
    db = Database(config["database_url"])
    db.migrate()
    admin.create_team(db, "t")
    key = admin.create_key(db, "t", expires_in=dt.timedelta(days=1)).key
    with db.session() as session:
        session.execute(update(VirtualKey).values(expires_at=utcnow() - dt.timedelta(minutes=1)))
    db.dispose()
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    async with running(config) as (_, client):
        answer = await client.post(
            "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
        )
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "expired_api_key"
        for days in (-1, 0, True, "7"):
            made = await client.post(
                "/admin/keys",
                json={"team": "t", "expires_in_days": days},
                headers={"authorization": f"Bearer {MASTER}"},
            )
            assert made.status_code == 400, days
            assert made.json()["error"]["param"] == "expires_in_days"
