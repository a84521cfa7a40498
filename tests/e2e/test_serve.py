"""``stackyard serve`` itself: a config with no models and several workers (the embedded
default, which loads real models, is tested in ``test_local.py``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import GatewayProcess
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = pytest.mark.e2e


def test_a_config_with_no_models_serves_none_and_says_so(gateway_factory: Any) -> None:
    gateway: GatewayProcess = gateway_factory({"models": []})
    assert httpx.get(f"{gateway.base_url}/models").json() == {"object": "list", "data": []}
    response = httpx.post(
        f"{gateway.base_url}/chat/completions",
        json={"model": "anything", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 404
    assert "none are configured" in response.json()["error"]["message"]
    assert "No models are configured" in gateway.log()


def test_several_workers_serve(fake_openai: FakeOpenAI, gateway_factory: Any) -> None:
    gateway: GatewayProcess = gateway_factory(
        {
            "server": {"workers": 2},
            "models": [
                {
                    "name": "m",
                    "provider": "openai-compatible",
                    "api_base": fake_openai.base_url("workers"),
                }
            ],
        }
    )
    with httpx.Client(base_url=gateway.base_url) as client:
        for _ in range(6):
            response = client.post(
                "/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
            )
            assert response.status_code == 200
    assert "2 workers" in gateway.log()
