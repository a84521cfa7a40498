"""The Python client's prompts: cached versions and labels, stale-while-revalidate, the disk
snapshot when the server is down, and explicit fallbacks."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

import stackyard
from stackyard.client import Client
from stackyard.client import prompts as prompts_module
from stackyard.client.base import ClientError
from tests.conftest import GatewayProcess, free_port

MASTER = "sk-master-client-0123456789"


@pytest.fixture
def gateway(gateway_factory: Any, tmp_path: Path) -> GatewayProcess:
    config = {
        "auth": {"master_key": MASTER},
        "database_url": f"sqlite:///{tmp_path / 'client.db'}",
    }
    gw: GatewayProcess = gateway_factory(config)
    return gw


def push(gateway: GatewayProcess, **body: Any) -> None:
    response = httpx.post(
        f"{gateway.url}/api/prompts", json=body, headers={"authorization": f"Bearer {MASTER}"}
    )
    assert response.status_code == 200, response.text


def label(gateway: GatewayProcess, name: str, version: int) -> None:
    response = httpx.post(
        f"{gateway.url}/api/prompts/{name}/labels",
        json={"label": "production", "version": version},
        headers={"authorization": f"Bearer {MASTER}"},
    )
    assert response.status_code == 200, response.text


def test_get_compile_cache_and_revalidate(
    gateway: GatewayProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cache's own clock, moved by hand: the label's freshness never depends on how fast
    # the machine runs the HTTP calls between two reads.
    now = [1000.0]
    monkeypatch.setattr(prompts_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    push(gateway, name="greet", template="Hello {{name}}", labels=["production"])
    client = stackyard.Client(gateway.url, MASTER, cache_dir=tmp_path / "cache", label_ttl=0.2)
    assert isinstance(client, Client)
    prompt = client.prompts.get("greet")
    assert (prompt.version, prompt.is_fallback) == (1, False)
    assert prompt.compile(name="Ada") == "Hello Ada"
    assert client.prompts.get("greet", version=1) is prompt  # versions are cached forever
    push(gateway, name="greet", template="Hi {{name}}")
    label(gateway, "greet", 2)
    now[0] += 0.1
    assert client.prompts.get("greet").version == 1  # fresh for label_ttl
    now[0] += 0.2
    assert client.prompts.get("greet").version == 1  # stale: served, refreshed behind
    monkeypatch.undo()
    deadline = time.monotonic() + 60
    while client.prompts.get("greet").version != 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_process_started_while_the_server_is_down_uses_the_disk_snapshot(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    push(
        gateway,
        name="support",
        messages=[{"role": "user", "content": "{{q}}"}],
        labels=["production"],
    )
    cache = tmp_path / "cache"
    Client(gateway.url, MASTER, cache_dir=cache).prompts.get("support")
    Client(gateway.url, MASTER, cache_dir=cache).prompts.get("support", version=1)
    gateway.stop()
    later = Client(gateway.url, MASTER, cache_dir=cache)
    prompt = later.prompts.get("support")
    assert prompt.version == 1
    assert prompt.compile(q="hi") == [{"role": "user", "content": "hi"}]
    assert later.prompts.get("support", version=1).version == 1


def test_fallback_when_nothing_is_cached_and_the_server_is_down(tmp_path: Path) -> None:
    client = Client(f"http://127.0.0.1:{free_port()}", "k", cache_dir=tmp_path, timeout=1)
    prompt = client.prompts.get("greet", fallback="Hello {{name}}")
    assert prompt.is_fallback
    assert prompt.compile(name="Ada") == "Hello Ada"
    with pytest.raises(ClientError, match="cannot reach"):
        client.prompts.get("greet")


def test_an_unknown_prompt_is_an_error_not_a_stale_copy(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    client = Client(gateway.url, MASTER, cache_dir=tmp_path)
    with pytest.raises(ClientError) as info:
        client.prompts.get("nope")
    assert info.value.status == 404
    assert client.prompts.get("nope", fallback="x").is_fallback
