"""Keys, scopes, limits, budgets, revocation and the spend log through a real gateway, with the
official SDK as the client."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from stackyard.server.admin import AdminAPI
from stackyard.server.routing import Routes
from tests.conftest import GatewayProcess, openai_sdk
from tests.e2e import doors
from tests.fakes.openai_upstream import FakeOpenAI, Fault

pytestmark = pytest.mark.e2e

MASTER = "sk-master-test-0123456789"
USER: Any = [{"role": "user", "content": "Hello there"}]


@pytest.fixture(scope="module")
def gateway(fake_openai: FakeOpenAI, gateway_factory: Any) -> GatewayProcess:
    gw: GatewayProcess = gateway_factory(
        {
            "models": [
                {
                    "name": "cheap",
                    "provider": "openai-compatible",
                    "api_base": fake_openai.base_url("gov-cheap"),
                    "input_cost_per_mtok": 1.0,
                    "output_cost_per_mtok": 2.0,
                },
                {
                    # $1 per prompt token: a budget runs out in a few requests
                    "name": "pricey",
                    "provider": "openai-compatible",
                    "api_base": fake_openai.base_url("gov-pricey"),
                    "input_cost_per_mtok": 1_000_000.0,
                    "output_cost_per_mtok": 0.0,
                },
            ],
            "auth": {"master_key": MASTER, "refresh_seconds": 0.2},
        }
    )
    return gw


def admin(gateway: GatewayProcess, method: str, path: str, **body: Any) -> Any:
    response = httpx.request(
        method,
        f"{gateway.url}/admin/{path}",
        json=body or None,
        headers={"authorization": f"Bearer {MASTER}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def new_key(gateway: GatewayProcess, team: str, **limits: Any) -> dict[str, Any]:
    existing = {t["name"] for t in admin(gateway, "GET", "teams")["data"]}
    if team not in existing:
        admin(gateway, "POST", "teams", name=team)
    created: dict[str, Any] = admin(gateway, "POST", "keys", team=team, **limits)
    time.sleep(0.5)  # the snapshot refreshes every 0.2 s
    return created


def sdk(gateway: GatewayProcess, key: str) -> openai.OpenAI:
    return openai_sdk(gateway, key)


def test_keys_are_required_once_a_master_key_is_set(gateway: GatewayProcess) -> None:
    with (
        sdk(gateway, "sk-sy-not-a-key") as client,
        pytest.raises(openai.AuthenticationError) as info,
    ):
        client.chat.completions.create(model="cheap", messages=USER)
    body: Any = info.value.body
    assert body["code"] == "invalid_api_key"
    missing = httpx.post(
        f"{gateway.base_url}/chat/completions", json={"model": "cheap", "messages": USER}
    )
    assert missing.status_code == 401
    assert "Missing API key" in missing.json()["error"]["message"]
    with sdk(gateway, MASTER) as client:
        assert client.chat.completions.create(model="cheap", messages=USER).choices


def test_a_key_works_and_every_response_carries_its_cost(gateway: GatewayProcess) -> None:
    created = new_key(gateway, "alpha")
    assert created["key"].startswith("sk-sy-")
    listed = admin(gateway, "GET", "keys")["data"]
    assert all("key" not in k and k["prefix"] for k in listed)
    with sdk(gateway, created["key"]) as client:
        raw = client.chat.completions.with_raw_response.create(model="cheap", messages=USER)
    usage = raw.parse().usage
    assert usage is not None
    expected = (usage.prompt_tokens * 1.0 + usage.completion_tokens * 2.0) / 1e6
    assert float(raw.headers["x-stackyard-cost-usd"]) == pytest.approx(expected)


def test_model_scope(gateway: GatewayProcess) -> None:
    created = new_key(gateway, "beta", models=["cheap"])
    with sdk(gateway, created["key"]) as client:
        client.chat.completions.create(model="cheap", messages=USER)
        with pytest.raises(openai.PermissionDeniedError) as info:
            client.chat.completions.create(model="pricey", messages=USER)
    assert "Allowed: cheap" in info.value.message


def test_requests_per_minute(gateway: GatewayProcess) -> None:
    created = new_key(gateway, "gamma", rpm=2)
    with sdk(gateway, created["key"]) as client:
        first = client.chat.completions.with_raw_response.create(model="cheap", messages=USER)
        assert first.headers["x-ratelimit-limit-requests"] == "2"
        assert first.headers["x-ratelimit-remaining-requests"] == "1"
        client.chat.completions.create(model="cheap", messages=USER)
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model="cheap", messages=USER)
    refused = info.value.response.headers
    assert int(refused["retry-after"]) >= 1
    assert refused["x-ratelimit-limit-requests"] == "2"  # as on a success, and as OpenAI sends
    assert refused["x-ratelimit-remaining-requests"] == "0"
    assert refused["x-ratelimit-reset-requests"] == f"{refused['retry-after']}s"
    body: Any = info.value.body
    assert body["type"] == "requests"
    assert "2 requests per minute" in body["message"]


def test_tokens_per_minute_reserve_max_tokens_until_usage_is_known(
    gateway: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    created = new_key(gateway, "delta", tpm=300)

    async def two_at_once() -> tuple[Any, Any]:
        async with openai.AsyncOpenAI(
            base_url=gateway.base_url, api_key=created["key"], max_retries=0
        ) as client:

            async def ask(delay: float) -> Any:
                await asyncio.sleep(delay)
                return await client.chat.completions.create(
                    model="cheap", messages=USER, max_tokens=200
                )

            return await asyncio.gather(ask(0), ask(0.3), return_exceptions=True)

    fake_openai.enqueue("gov-cheap", Fault.delay(1))  # the first holds its reservation
    first, second = asyncio.run(two_at_once())
    assert not isinstance(first, Exception)
    assert isinstance(second, openai.RateLimitError)
    body: Any = second.body
    assert body["type"] == "tokens"
    # Once the first has settled with its real (small) usage, there is room again.
    with sdk(gateway, created["key"]) as client:
        client.chat.completions.create(model="cheap", messages=USER, max_tokens=200)


def test_team_budget_stops_spending(gateway: GatewayProcess) -> None:
    admin(gateway, "POST", "teams", name="frugal", budget_usd=10, budget_period="day")
    created = new_key(gateway, "frugal")
    statuses = []
    with sdk(gateway, created["key"]) as client:
        for _ in range(8):
            try:
                client.chat.completions.create(model="pricey", messages=USER, max_tokens=5)
                statuses.append(200)
            except openai.RateLimitError as exc:
                body: Any = exc.body
                assert body["code"] == "budget_exceeded"
                statuses.append(429)
    assert statuses[0] == 200
    assert 429 in statuses
    frugal = None
    for _ in range(50):  # the spend log is written in batches, a fraction of a second later
        spent = admin(gateway, "GET", "spend?by=team&since=1d")["data"]
        frugal = next((r for r in spent if r["team"] == "frugal"), None)
        if frugal and frugal["requests"] == statuses.count(200):
            break
        time.sleep(0.1)
    assert frugal is not None
    assert frugal["requests"] == statuses.count(200)
    assert 0 < frugal["cost_usd"] <= 10  # never more than the budget


@pytest.mark.parametrize("door", list(doors.CALLS))
def test_every_door_charges_the_budget_and_refuses_in_its_own_shape(
    gateway: GatewayProcess, door: str
) -> None:
    """Admission and settlement are the pipeline's, whatever the door: every answer carries its
    cost and is a spend row, and a spent budget is a 429 the door's own SDK raises."""
    team = "frugal" + door.replace("/", "-")
    admin(gateway, "POST", "teams", name=team, budget_usd=10, budget_period="day")
    created = new_key(gateway, team)
    statuses: list[int] = []
    refusals: list[str] = []
    for _ in range(8):
        try:
            raw = doors.call(door, gateway, created["key"], "pricey")
        except doors.RATE_LIMITED as exc:
            refusals.append(doors.refusal_says(door, exc))
            statuses.append(exc.status_code)
            continue
        assert float(raw.headers["x-stackyard-cost-usd"]) > 0
        statuses.append(200)
    assert all("budget" in said.lower() for said in refusals), refusals
    assert statuses[0] == 200
    assert 429 in statuses
    assert statuses[statuses.index(429) :] == [429] * (len(statuses) - statuses.index(429))
    row: dict[str, Any] | None = None
    for _ in range(50):  # the spend log is written in batches
        spent = admin(gateway, "GET", "spend?by=team&since=1d")["data"]
        row = next((r for r in spent if r["team"] == team), None)
        if row and row["requests"] == statuses.count(200):
            break
        time.sleep(0.1)
    assert row is not None
    assert row["requests"] == statuses.count(200)
    assert 0 < row["cost_usd"] <= 10


def test_a_revocation_holds_on_the_next_request(gateway: GatewayProcess) -> None:
    created = new_key(gateway, "epsilon")
    with sdk(gateway, created["key"]) as client:
        client.chat.completions.create(model="cheap", messages=USER)
        admin(gateway, "POST", "keys/revoke", id=created["id"])  # this instance: at once
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model="cheap", messages=USER)


def test_a_keys_limits_and_models_change_in_place(gateway: GatewayProcess) -> None:
    created = new_key(gateway, "theta")
    with sdk(gateway, created["key"]) as client:
        client.chat.completions.create(model="cheap", messages=USER)
        changed = admin(gateway, "POST", "keys/update", id=created["id"], models=["other"])
        assert changed["models"] == ["other"]
        assert changed["rpm"] is None  # what was not sent stays
        time.sleep(1.0)
        with pytest.raises(openai.APIStatusError) as refused:
            client.chat.completions.create(model="cheap", messages=USER)
        assert refused.value.status_code in (401, 403)
        admin(gateway, "POST", "keys/update", id=created["id"], models=None)
        time.sleep(1.0)
        client.chat.completions.create(model="cheap", messages=USER)  # the same secret works
    team = admin(gateway, "POST", "teams/update", team="theta", budget_usd=2.5, rpm=30)
    assert (team["budget_usd"], team["rpm"], team["budget_period"]) == (2.5, 30, "month")
    headers = {"authorization": f"Bearer {MASTER}"}
    for path, body, param in (
        ("keys/update", {"id": created["id"], "rpm": 0}, "rpm"),
        ("keys/update", {"id": created["id"], "secret": "x"}, "secret"),
        ("teams/update", {"team": "theta", "models": "all"}, "models"),
    ):
        bad = httpx.post(f"{gateway.url}/admin/{path}", json=body, headers=headers)
        assert bad.status_code == 400, bad.text
        assert bad.json()["error"]["param"] == param
    missing = httpx.post(
        f"{gateway.url}/admin/keys/update", json={"id": "k", "rpm": 5}, headers=headers
    )
    assert missing.status_code == 400
    assert missing.json()["error"]["message"] == "no key 'k'"


def test_admin_api_needs_the_master_key(gateway: GatewayProcess) -> None:
    created = new_key(gateway, "zeta")
    response = httpx.get(
        f"{gateway.url}/admin/keys", headers={"authorization": f"Bearer {created['key']}"}
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "master_key_required"


def test_spend_log_has_one_row_per_request_after_a_burst_and_shutdown(
    fake_openai: FakeOpenAI, gateway_factory: Any, tmp_path: Path
) -> None:
    database = tmp_path / "spend.db"
    gw: GatewayProcess = gateway_factory(
        {
            "models": [
                {
                    "name": "m",
                    "provider": "openai-compatible",
                    "api_base": fake_openai.base_url("gov-burst"),
                }
            ],
            "database_url": f"sqlite:///{database}",
        }
    )

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=gw.base_url) as client:
            responses = await asyncio.gather(
                *(
                    client.post("/chat/completions", json={"model": "m", "messages": USER})
                    for _ in range(60)
                )
            )
            return [r.status_code for r in responses]

    assert asyncio.run(burst()) == [200] * 60
    gw.stop()  # graceful: the writer flushes what is queued
    with sqlite3.connect(database) as connection:
        (rows,) = connection.execute("select count(*) from spend_log").fetchone()
        (ids,) = connection.execute("select count(distinct request_id) from spend_log").fetchone()
    assert (rows, ids) == (60, 60)


def test_open_mode_is_refused_off_loopback(tmp_path: Path) -> None:
    config = tmp_path / "stackyard.yaml"
    config.write_text("models: []\n")
    done = subprocess.run(
        [sys.executable, "-m", "stackyard", "serve", "--config", str(config), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    assert "refusing to run open" in done.stderr


def test_a_crash_loses_at_most_the_last_group_commit(
    fake_openai: FakeOpenAI, gateway_factory: Any, tmp_path: Path
) -> None:
    """Measured: requests answered, then kill -9, then a restart on the same store and journal:
    every row but those of the last few milliseconds is there, each once (before the journal,
    the writer's last second was lost)."""
    database = tmp_path / "crash.db"
    config = {
        "models": [
            {
                "name": "m",
                "provider": "openai-compatible",
                "api_base": fake_openai.base_url("gov-crash"),
            }
        ],
        "database_url": f"sqlite:///{database}",
        "auth": {"spend_journal": str(tmp_path / "journal")},
    }
    gw: GatewayProcess = gateway_factory(config)
    answered: list[float] = []
    with httpx.Client(base_url=gw.base_url) as client:
        started = time.monotonic()
        while time.monotonic() - started < 3.0:
            response = client.post("/chat/completions", json={"model": "m", "messages": USER})
            assert response.status_code == 200
            answered.append(time.monotonic())
    killed_at = time.monotonic()
    gw.process.kill()
    gw.process.wait()
    with sqlite3.connect(database) as connection:
        (before,) = connection.execute("select count(*) from spend_log").fetchone()
    gateway_factory(config).stop()  # starts (replaying the journal), then stops gracefully
    with sqlite3.connect(database) as connection:
        (rows,) = connection.execute("select count(*) from spend_log").fetchone()
        (ids,) = connection.execute("select count(distinct entry_id) from spend_log").fetchone()
    lost = len(answered) - rows
    recent = sum(1 for t in answered if killed_at - t <= 0.010)  # the last 10 ms
    print(
        f"crash: {len(answered)} answered, {before} in the store at the kill, {rows} after the "
        f"restart, {lost} lost, {recent} answered in the last 10 ms"
    )
    assert ids == rows  # none twice
    assert 0 <= lost <= recent
    assert before < rows  # the journal had what the writer had not written


def test_a_users_limit_holds_across_their_keys(gateway: GatewayProcess) -> None:
    admin(gateway, "POST", "teams", name="eta")
    user = admin(gateway, "POST", "users", email="ada@example.com", team="eta", rpm=1)
    first = admin(gateway, "POST", "keys", team="eta", user="ada@example.com")
    second = admin(gateway, "POST", "keys", team="eta", user=user["id"])
    assert first["user_id"] == second["user_id"] == user["id"]
    time.sleep(0.5)
    with sdk(gateway, first["key"]) as client:
        client.chat.completions.create(model="cheap", messages=USER)
    with sdk(gateway, second["key"]) as client, pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="cheap", messages=USER)
    assert "Rate limit reached for user" in info.value.message
    users = admin(gateway, "GET", "users")["data"]
    assert [u["email"] for u in users] == ["ada@example.com"]


def test_an_organisations_limit_and_budget_hold_across_its_teams(
    gateway: GatewayProcess,
) -> None:
    org = admin(gateway, "POST", "organizations", name="acme", rpm=3, budget_usd=4)
    for team in ("acme-a", "acme-b"):
        assert (
            admin(gateway, "POST", "teams", name=team, organization="acme")["organization_id"]
            == org["id"]
        )
    keys = [admin(gateway, "POST", "keys", team=t)["key"] for t in ("acme-a", "acme-b")]
    time.sleep(0.5)
    served = 0
    with sdk(gateway, keys[0]) as first, sdk(gateway, keys[1]) as second:
        for client in (first, second, first):
            client.chat.completions.create(model="cheap", messages=USER)
            served += 1
        with pytest.raises(openai.RateLimitError) as info:  # the fourth, on either team
            second.chat.completions.create(model="cheap", messages=USER)
    assert "Rate limit reached for organization" in info.value.message
    rows: list[dict[str, Any]] = []
    for _ in range(50):  # the spend log is written a fraction of a second later
        rows = admin(gateway, "GET", "spend?by=organization&since=1h")["data"]
        if any(r["organization"] == "acme" and r["requests"] == served for r in rows):
            break
        time.sleep(0.1)
    assert any(r["organization"] == "acme" and r["requests"] == served for r in rows)
    daily = admin(gateway, "GET", "spend/daily?by=organization&days=1")["data"]
    [today] = [r for r in daily if r["organization"] == "acme"]
    assert today["day"] == time.strftime("%Y-%m-%d", time.gmtime())
    assert today["requests"] == served
    for days in ("0", "36028797018963969"):  # the second was a 500 (found by the fuzz test)
        bad = httpx.get(
            f"{gateway.url}/admin/spend/daily?days={days}",
            headers={"authorization": f"Bearer {MASTER}"},
        )
        assert bad.status_code == 400
        assert bad.json()["error"]["param"] == "days"
    # A span longer than there is time is every row, not an overflow.
    assert admin(gateway, "GET", "spend?by=organization&since=99999999999d")["data"] == rows


def test_an_organisations_budget_stops_every_team(gateway: GatewayProcess) -> None:
    admin(gateway, "POST", "organizations", name="thrifty", budget_usd=20, budget_period="day")
    for team in ("thrifty-a", "thrifty-b"):
        admin(gateway, "POST", "teams", name=team, organization="thrifty")
    keys = [admin(gateway, "POST", "keys", team=t)["key"] for t in ("thrifty-a", "thrifty-b")]
    time.sleep(0.5)
    refusal: openai.RateLimitError | None = None
    served = 0
    with sdk(gateway, keys[0]) as first, sdk(gateway, keys[1]) as second:
        for i in range(12):  # $2 each (two prompt tokens at $1), alternating teams
            try:
                (first if i % 2 else second).chat.completions.create(
                    model="pricey", messages=USER, max_tokens=5
                )
            except openai.RateLimitError as exc:
                refusal = exc
                break
            served += 1
    assert refusal is not None
    assert refusal.code == "budget_exceeded"
    assert "organization" in refusal.message
    assert 0 < served * 2 <= 20


def test_the_admin_api_documents_every_route(gateway: GatewayProcess) -> None:
    document = httpx.get(
        f"{gateway.url}/admin/openapi.json", headers={"authorization": f"Bearer {MASTER}"}
    ).json()
    assert document["openapi"] == "3.1.0"
    routes = Routes()
    AdminAPI(None, None).register(routes)  # type: ignore[arg-type]
    served = {
        (method.lower(), path)
        for method, path in routes.endpoints()
        if path != "/admin/openapi.json"
    }
    documented = {(m, p) for p, ops in document["paths"].items() for m in ops}
    assert served == documented


def test_a_soft_budget_alerts_a_webhook_and_keeps_serving(
    fake_openai: FakeOpenAI, gateway_factory: Any
) -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        gw: GatewayProcess = gateway_factory(
            {
                "models": [
                    {
                        "name": "pricey",
                        "provider": "openai-compatible",
                        "api_base": fake_openai.base_url("gov-soft"),
                        "input_cost_per_mtok": 1_000_000.0,  # $1 per prompt token
                    }
                ],
                "auth": {"master_key": MASTER, "refresh_seconds": 0.2},
                "alerts": {
                    "budget_thresholds": [0.5, 1.0],
                    "webhook_url": f"http://127.0.0.1:{server.server_address[1]}/hook",
                },
            }
        )
        admin(gw, "POST", "teams", name="soft-team", budget_usd=5.0, budget_soft=True)
        created = admin(gw, "POST", "keys", team="soft-team")
        assert admin(gw, "GET", "teams")["data"][0]["budget_soft"] is True
        time.sleep(0.5)  # the snapshot refreshes every 0.2 s
        with sdk(gw, created["key"]) as client:
            for _ in range(6):  # a few dollars each: well past the $5 budget
                client.chat.completions.create(model="pricey", messages=USER)
        deadline = time.monotonic() + 60  # delivered in order, in the background
        while len(received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(a["threshold"], a["soft"], a["scope"]) for a in received] == [
            (0.5, True, "team"),
            (1.0, True, "team"),
        ]
        metrics = httpx.get(f"{gw.url}/metrics", headers={"authorization": f"Bearer {MASTER}"}).text
        assert 'stackyard_budget_alerts_total{scope="team",threshold="1",kind="soft"} 1' in metrics
    finally:
        server.shutdown()
        server.server_close()
