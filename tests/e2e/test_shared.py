"""Two gateway processes sharing one Redis and one database hold one limit and one budget."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import GatewayProcess, eventually, fresh_redis
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = pytest.mark.e2e

MASTER = "sk-master-shared-0123456789"
REDIS_URL = os.environ.get("STACKYARD_TEST_REDIS", "redis://127.0.0.1:6379/15")
USER = [{"role": "user", "content": "Hello there"}]


@pytest.fixture(scope="module")
def pair(
    fake_openai: FakeOpenAI, gateway_factory: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[GatewayProcess, GatewayProcess]:
    fresh_redis(REDIS_URL)
    database = tmp_path_factory.mktemp("shared") / "stackyard.db"
    config = {
        "models": [
            {
                "name": "pricey",
                "provider": "openai-compatible",
                "api_base": fake_openai.base_url("shared-pricey"),
                "input_cost_per_mtok": 1_000_000.0,  # $1 a prompt token
                "output_cost_per_mtok": 0.0,
            },
            {
                "name": "quota",
                "provider": "openai-compatible",
                "api_base": fake_openai.base_url("shared-quota"),
                "rpm": 10,  # the deployment's own quota, shared by both instances
            },
        ],
        "auth": {"master_key": MASTER, "refresh_seconds": 0.2},
        "database_url": f"sqlite:///{database}",
        "redis_url": REDIS_URL,
    }
    return gateway_factory(config), gateway_factory(config)


def admin(gateway: GatewayProcess, path: str, **body: Any) -> Any:
    response = httpx.post(
        f"{gateway.url}/admin/{path}", json=body, headers={"authorization": f"Bearer {MASTER}"}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def burst(
    pair: tuple[GatewayProcess, GatewayProcess], key: str, n: int, model: str = "pricey"
) -> list[int]:
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    f"{pair[i % 2].base_url}/chat/completions",
                    json={"model": model, "messages": USER, "max_tokens": 5},
                )
                for i in range(n)
            )
        )
    return [r.status_code for r in responses]


def test_one_rate_limit_across_instances(pair: tuple[GatewayProcess, GatewayProcess]) -> None:
    admin(pair[0], "teams", name="limited", rpm=20)
    key = admin(pair[0], "keys", team="limited")["key"]
    time.sleep(0.6)
    statuses = asyncio.run(burst(pair, key, 50))
    # Never more than the limit; each instance may leave part of its last slice (a tenth of
    # the limit, here 2) unused.
    assert 16 <= statuses.count(200) <= 20
    assert statuses.count(429) == 50 - statuses.count(200)


def test_one_deployment_quota_across_instances(
    pair: tuple[GatewayProcess, GatewayProcess],
) -> None:
    statuses = asyncio.run(burst(pair, MASTER, 40, model="quota"))
    # Never more than the deployment's 10 a minute; each instance may strand part of its last
    # slice (a tenth: 1).
    assert 8 <= statuses.count(200) <= 10
    assert statuses.count(429) == 40 - statuses.count(200)
    refused = httpx.post(
        f"{pair[1].base_url}/chat/completions",
        json={"model": "quota", "messages": USER, "max_tokens": 5},
        headers={"authorization": f"Bearer {MASTER}"},
    )
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "deployment_quota_exceeded"
    assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_one_budget_across_instances(pair: tuple[GatewayProcess, GatewayProcess]) -> None:
    admin(pair[0], "teams", name="budgeted", budget_usd=30, budget_period="day")
    key = admin(pair[0], "keys", team="budgeted")["key"]
    time.sleep(0.6)
    statuses = asyncio.run(burst(pair, key, 50))
    served = statuses.count(200)
    assert served > 0
    assert statuses.count(429) == 50 - served
    # Each request costs $2 (two prompt tokens) and may reserve up to $9 (its count with
    # the message overhead):
    # together they never spend more than the budget.
    assert served * 2 <= 30
    spend = httpx.get(
        f"{pair[1].url}/admin/spend?by=team&since=1d",
        headers={"authorization": f"Bearer {MASTER}"},
    ).json()["data"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        budgeted = [r for r in spend if r["team"] == "budgeted"]
        if budgeted and budgeted[0]["requests"] == served:
            break
        time.sleep(0.1)
        spend = httpx.get(
            f"{pair[1].url}/admin/spend?by=team&since=1d",
            headers={"authorization": f"Bearer {MASTER}"},
        ).json()["data"]
    assert budgeted[0]["cost_usd"] <= 30


def test_revocation_reaches_the_other_instance(
    pair: tuple[GatewayProcess, GatewayProcess], tmp_path: Path
) -> None:
    """A key made and revoked on one instance works, then stops working, on the other. (How
    fast is the product's promise, a poll or a notification away: it is waited for here, with a
    generous bound, not raced.)"""
    admin(pair[0], "teams", name="revoked")
    created = admin(pair[0], "keys", team="revoked")
    headers = {"authorization": f"Bearer {created['key']}"}
    body = {"model": "pricey", "messages": USER, "max_tokens": 5}

    def status() -> int:
        return httpx.post(
            f"{pair[1].base_url}/chat/completions", json=body, headers=headers
        ).status_code

    assert eventually(lambda: status() == 200)
    admin(pair[0], "keys/revoke", id=created["id"])
    assert eventually(lambda: status() == 401)


def test_change_notifications_beat_the_poll(
    fake_openai: FakeOpenAI, gateway_factory: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """With an hour between polls, only Redis pub/sub can make a new key and its revocation
    reach the other instance (waited for with a generous bound, never raced)."""
    fresh_redis(REDIS_URL)
    database = tmp_path_factory.mktemp("notify") / "stackyard.db"
    config = {
        "models": [
            {
                "name": "pricey",
                "provider": "openai-compatible",
                "api_base": fake_openai.base_url("shared-notify"),
            }
        ],
        "auth": {"master_key": MASTER, "refresh_seconds": 3600},
        "database_url": f"sqlite:///{database}",
        "redis_url": REDIS_URL,
    }
    first, second = gateway_factory(config), gateway_factory(config)
    admin(first, "teams", name="notified")
    created = admin(first, "keys", team="notified")
    headers = {"authorization": f"Bearer {created['key']}"}
    body = {"model": "pricey", "messages": USER, "max_tokens": 5}

    def status_on(gateway: GatewayProcess) -> int:
        return httpx.post(
            f"{gateway.base_url}/chat/completions", json=body, headers=headers
        ).status_code

    assert eventually(lambda: status_on(second) == 200)  # the new key reached the other one
    admin(first, "keys/revoke", id=created["id"])
    assert eventually(lambda: status_on(second) == 401)
