"""``/metrics`` under ``stackyard serve`` with two workers: whichever worker answers a scrape, it
reports the whole server, and a restart starts from zero."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from tests.conftest import GatewayProcess
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = pytest.mark.e2e

MASTER = "sk-master-metrics-workers-0123"
TOKEN = "scrape-token-workers-0123"
N = 40


def _config(fake: FakeOpenAI, prefix: str) -> dict[str, Any]:
    return {
        "models": [
            {
                "name": "primary",
                "provider": "openai-compatible",
                "model": "fake-large",
                "api_base": fake.base_url(f"{prefix}-primary"),
            }
        ],
        "router": {"retries": 0},
        "auth": {"master_key": MASTER},
        "server": {"workers": 2},
        "observability": {"metrics_token": TOKEN},
    }


async def _requests(gateway: GatewayProcess, n: int) -> list[int]:
    """``n`` requests, each on its own connection, so the kernel spreads them over the
    workers."""

    async def one(i: int) -> int:
        connector = aiohttp.TCPConnector(force_close=True)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.post(
                f"{gateway.base_url}/chat/completions",
                json={"model": "primary", "messages": [{"role": "user", "content": f"w{i}"}]},
                headers={"authorization": f"Bearer {MASTER}"},
            ) as response,
        ):
            await response.read()
            return response.status

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def _scrape(gateway: GatewayProcess) -> dict[str, float]:
    response = httpx.get(
        f"{gateway.url}/metrics",
        headers={"authorization": f"Bearer {TOKEN}", "connection": "close"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def _total(samples: dict[str, float], name: str) -> float:
    return sum(v for k, v in samples.items() if k == name or k.startswith(name + "{"))


def _workers(gateway: GatewayProcess) -> int:
    return gateway.log().count("Started server process")


def test_every_scrape_of_two_workers_reports_every_request(
    fake_openai: FakeOpenAI, gateway_factory: Any
) -> None:
    gateway = gateway_factory(_config(fake_openai, "workers"))
    assert httpx.get(f"{gateway.url}/metrics").status_code == 401  # a key or the token
    assert asyncio.run(_requests(gateway, N)) == [200] * N
    for _ in range(8):
        samples = _scrape(gateway)
        assert _total(samples, "stackyard_requests_total") == N
        assert (
            samples[
                'stackyard_requests_total{endpoint="chat",model="primary",'
                'deployment="primary#0",team="",status="200"}'
            ]
            == N
        )
        assert _total(samples, "stackyard_request_duration_seconds_count") == N
        assert (
            samples[
                'stackyard_request_duration_seconds_count{endpoint="chat",model="primary",team=""}'
            ]
            == N
        )
        assert samples["stackyard_requests_in_flight"] == 0  # livesum over both workers
        assert samples["stackyard_traces_dropped_total"] == 0
    assert _workers(gateway) == 2


def test_a_restart_starts_from_zero(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    config = _config(fake_openai, "restart")
    folder = tmp_path / "stackyard-metrics"
    first = GatewayProcess(config, tmp_path)
    try:
        assert asyncio.run(_requests(first, 7)) == [200] * 7
        assert _total(_scrape(first), "stackyard_requests_total") == 7
        # As if a server had been killed with its files left: a directory of a dead pid.
        (running,) = folder.iterdir()
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        stale = folder / f"{dead.pid}-killed"
        shutil.copytree(running, stale)
    finally:
        first.stop()
    assert not running.exists()  # a clean stop removes its own
    assert stale.exists()
    second = GatewayProcess(config, tmp_path)
    try:
        assert not stale.exists()
        assert _total(_scrape(second), "stackyard_requests_total") == 0
        assert asyncio.run(_requests(second, 3)) == [200] * 3
        for _ in range(4):
            assert _total(_scrape(second), "stackyard_requests_total") == 3
    finally:
        second.stop()
