"""Guardrail policies per API and per virtual key, through a real gateway: PII is redacted
before chat requests leave for an external model, except for a key whose own policy turns it
off (named in the config by the key's name, the key made after start) and except on the
embeddings API, whose route policy turns it off."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.conftest import GatewayProcess, openai_sdk
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = pytest.mark.e2e

MASTER = "sk-master-policies-0123456789"
EMAIL = "grace.hopper@example.org"


@pytest.fixture(scope="module")
def gateway(fake_openai: FakeOpenAI, gateway_factory: Any) -> GatewayProcess:
    gw: GatewayProcess = gateway_factory(
        {
            "models": [
                {
                    "name": "outside",
                    "provider": "openai-compatible",
                    "api_base": fake_openai.base_url("policy-outside"),
                    "external": True,
                }
            ],
            "auth": {"master_key": MASTER, "refresh_seconds": 0.2},
            "guardrails": {
                "pii": {"redact": "external", "names": False},
                "routes": {"embeddings": {"pii": {"redact": "off"}}},
                "keys": {"synthetic-data": {"pii": {"redact": "off"}}},
            },
        }
    )
    return gw


def _key(gateway: GatewayProcess, name: str) -> str:
    headers = {"authorization": f"Bearer {MASTER}"}
    httpx.post(f"{gateway.url}/admin/teams", json={"name": "data"}, headers=headers)
    body = {"name": name, "team": "data"}
    created = httpx.post(f"{gateway.url}/admin/keys", json=body, headers=headers)
    assert created.status_code == 200, created.text
    key: str = created.json()["key"]
    deadline = time.monotonic() + 30  # the instance learns of the key at its next poll
    while (
        httpx.get(
            f"{gateway.base_url}/models", headers={"authorization": f"Bearer {key}"}
        ).status_code
        == 401
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return key


def _sent(fake: FakeOpenAI) -> str:
    return str(fake.requests_for("policy-outside")[-1].body)


def test_a_key_policy_and_a_route_policy_replace_the_gateways(
    gateway: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    question = [{"role": "user", "content": f"Write to {EMAIL} about the invoice."}]
    with openai_sdk(gateway, _key(gateway, "ordinary")) as client:
        client.chat.completions.create(model="outside", messages=question)  # type: ignore[arg-type]
        assert EMAIL not in _sent(fake_openai)
        client.embeddings.create(model="outside", input=f"mail {EMAIL}", encoding_format="float")
        assert EMAIL in _sent(fake_openai)  # the embeddings route's own policy
    with openai_sdk(gateway, _key(gateway, "synthetic-data")) as client:
        client.chat.completions.create(model="outside", messages=question)  # type: ignore[arg-type]
        assert EMAIL in _sent(fake_openai)  # the key's own policy
