"""With keys on, nothing answers a caller without one: the model list (and a key limited to
some models sees only those), /metrics (costs per team: the master key, or a scrape token),
the admin API's own document. On an open gateway they stay open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stackyard.store import admin
from stackyard.store.db import Database
from tests.fakes.openai_upstream import FakeOpenAI
from tests.server.harness import running

MASTER = "sk-master-closed-0123456789"


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def test_keys_on_close_the_listing_the_metrics_and_the_admin_document(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    url = fake_openai.base_url("closed")
    config: dict[str, Any] = {
        "models": [
            {"name": "a", "provider": "openai-compatible", "api_base": url},
            {"name": "b", "provider": "openai-compatible", "api_base": url},
        ],
        "auth": {"master_key": MASTER},
        "database_url": f"sqlite:///{tmp_path / 'closed.db'}",
        "observability": {"metrics_token": "scrape-0123456789"},
    }
    db = Database(config["database_url"])
    db.migrate()
    admin.create_team(db, "t")
    narrow = admin.create_key(db, "t", models=["b"]).key
    wide = admin.create_key(db, "t").key
    db.dispose()
    async with running(config) as (_, client):
        assert (await client.get("/v1/models")).status_code == 401
        assert (await client.get("/v1/models", headers=bearer("sk-sy-nope"))).status_code == 401
        seen = await client.get("/v1/models", headers=bearer(narrow))
        assert [m["id"] for m in seen.json()["data"]] == ["b"]
        seen = await client.get("/v1/models", headers=bearer(wide))
        assert [m["id"] for m in seen.json()["data"]] == ["a", "b"]

        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/metrics", headers=bearer(wide))).status_code == 403
        assert (await client.get("/metrics", headers=bearer("scrape-wrong"))).status_code == 401
        for key in (MASTER, "scrape-0123456789"):
            scraped = await client.get("/metrics", headers=bearer(key))
            assert scraped.status_code == 200
            assert "stackyard_requests_total" in scraped.text

        assert (await client.get("/admin/openapi.json")).status_code == 401
        assert (await client.get("/admin/openapi.json", headers=bearer(wide))).status_code == 403
        document = await client.get("/admin/openapi.json", headers=bearer(MASTER))
        assert document.json()["openapi"].startswith("3.")


async def test_an_open_gateway_keeps_them_open(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    config = {
        "models": [
            {"name": "a", "provider": "openai-compatible", "api_base": fake_openai.base_url("o")}
        ],
        "database_url": f"sqlite:///{tmp_path / 'open.db'}",
    }
    async with running(config) as (_, client):
        assert (await client.get("/v1/models")).json()["data"][0]["id"] == "a"
        assert (await client.get("/metrics")).status_code == 200
