"""What the store cannot do is not a 500: a NUL character in an id, a search or a comment is
the request's fault on PostgreSQL (a 400), and a database that has gone away is a 503."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, text

from tests.conftest import POSTGRES, postgres_database
from tests.fakes.openai_upstream import FakeOpenAI
from tests.server.harness import running

MASTER = "sk-master-store-0123456789"
HEADERS = {"authorization": f"Bearer {MASTER}"}


async def test_nul_characters_and_a_vanished_database(fake_openai: FakeOpenAI) -> None:
    for url in postgres_database():
        config: dict[str, Any] = {
            "models": [
                {
                    "name": "m",
                    "provider": "openai-compatible",
                    "api_base": fake_openai.base_url("s"),
                }
            ],
            "auth": {"master_key": MASTER},
            "database_url": url,
        }
        async with running(config) as (_, client):
            for path in ("/api/traces/abc%00def", "/api/traces?q=a%00b", "/admin/spend?since=7d"):
                answer = await client.get(path, headers=HEADERS)
                assert answer.status_code < 500, (path, answer.text)
            nul = await client.get("/api/traces?q=a%00b", headers=HEADERS)
            assert nul.status_code == 400
            assert nul.json()["error"]["code"] == "invalid_characters"
            scored = await client.post(
                "/api/traces/abc%00/scores", json={"name": "x", "value": 1}, headers=HEADERS
            )
            assert scored.status_code in (400, 404), scored.text
            # The database goes away under the running server.
            name = url.rsplit("/", 1)[1]
            admin = create_engine(
                POSTGRES.replace("postgresql://", "postgresql+psycopg://", 1),
                isolation_level="AUTOCOMMIT",
            )
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
            for path in ("/admin/teams", "/api/traces", "/admin/spend?since=7d"):
                down = await client.get(path, headers=HEADERS)
                assert down.status_code == 503, (path, down.text)
                assert down.json()["error"]["code"] == "store_unavailable"
                assert down.headers["retry-after"] == "5"
