"""The guardrails behind the legacy completions door (``/v1/completions``), with the official
``openai`` SDK as the client: the prompt leaves without its PII and comes back restored, a
secret or a denied topic is refused before anything leaves."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.conftest import GatewayProcess, openai_sdk
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = pytest.mark.e2e

EMAIL = "ada.lovelace@example.com"
PROMPT = f"Write to Ada Lovelace at {EMAIL} about the engine"


@pytest.fixture(scope="module")
def gateway(fake_openai: FakeOpenAI, gateway_factory: Any) -> GatewayProcess:
    gw: GatewayProcess = gateway_factory(
        {
            "models": [
                {
                    "name": "outside",
                    "provider": "openai-compatible",
                    "api_base": fake_openai.base_url("legacy-rails"),
                    "external": True,
                }
            ],
            "guardrails": {
                "pii": {"redact": "external"},
                "secrets": {"action": "block"},
                "topics": {"action": "block", "deny_words": ["Project Falcon"]},
            },
        },
        ready_timeout=90,
    )
    return gw


def test_the_completions_door_redacts_and_restores(
    gateway: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    with openai_sdk(gateway) as client:
        completion = client.completions.create(model="outside", prompt=PROMPT)
    upstream = str(fake_openai.requests_for("legacy-rails")[-1].body)
    assert EMAIL not in upstream
    assert "<EMAIL_1>" in upstream
    assert completion.choices[0].text == f"[legacy-rails] echo: {PROMPT}"


def test_the_completions_door_refuses_a_secret(
    gateway: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    before = len(fake_openai.requests_for("legacy-rails"))
    leaked = "connect with postgresql://admin:hunter22@db.internal:5432/app please"
    with openai_sdk(gateway) as client, pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model="outside", prompt=leaked)
    body: Any = refused.value.body
    assert body["code"] == "secret_detected"
    assert len(fake_openai.requests_for("legacy-rails")) == before


def test_the_completions_door_refuses_a_denied_word(
    gateway: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    before = len(fake_openai.requests_for("legacy-rails"))
    with openai_sdk(gateway) as client, pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model="outside", prompt="Any news on project falcon?")
    body: Any = refused.value.body
    assert body["code"] == "topic_not_allowed"
    assert len(fake_openai.requests_for("legacy-rails")) == before
