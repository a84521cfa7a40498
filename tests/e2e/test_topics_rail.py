"""The topics rail through a real gateway: a denied word is refused before it leaves, on every
door (chat completions, Anthropic's messages, the Responses API), and what differs from it
goes through."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import GatewayProcess, openai_sdk
from tests.e2e.doors import anthropic_sdk
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def topical(fake_openai: FakeOpenAI, gateway_factory: Any) -> GatewayProcess:
    gw: GatewayProcess = gateway_factory(
        {
            "models": [
                {
                    "name": "m",
                    "provider": "openai-compatible",
                    "api_base": fake_openai.base_url("topics"),
                }
            ],
            "guardrails": {"topics": {"action": "block", "deny_words": ["Project Falcon"]}},
        },
        ready_timeout=90,
    )
    return gw


def test_a_denied_word_is_refused_before_it_leaves(
    topical: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    before = len(fake_openai.requests_for("topics"))
    with openai_sdk(topical) as client:
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "Any news on project falcon?"}]
            )
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Any news on the falcon project?"}]
        )
    body: Any = info.value.body
    assert body["code"] == "topic_not_allowed"
    assert "deny_word:project falcon" in body["message"]
    assert len(fake_openai.requests_for("topics")) == before + 1  # only the second was sent


def test_the_messages_door_refuses_a_denied_word_too(
    topical: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    before = len(fake_openai.requests_for("topics"))
    with anthropic_sdk(topical) as client:
        with pytest.raises(anthropic.BadRequestError) as info:
            client.messages.create(
                model="m",
                max_tokens=32,
                messages=[{"role": "user", "content": "Any news on project falcon?"}],
            )
        client.messages.create(
            model="m",
            max_tokens=32,
            messages=[{"role": "user", "content": "Any news on the falcon project?"}],
        )
    assert "deny_word:project falcon" in info.value.message
    assert len(fake_openai.requests_for("topics")) == before + 1  # only the second was sent


def test_the_responses_door_refuses_a_denied_word_too(
    topical: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    before = len(fake_openai.requests_for("topics"))
    with openai_sdk(topical) as client:
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(model="m", input="Any news on project falcon?")
        with pytest.raises(openai.BadRequestError) as streamed:
            client.responses.create(
                model="m",
                input=[{"role": "user", "content": "Any news on Project Falcon?"}],
                stream=True,
            )
        allowed = client.responses.create(model="m", input="Any news on the falcon project?")
    for refused in (info.value, streamed.value):
        assert refused.body["code"] == "topic_not_allowed"  # type: ignore[index]
        assert "deny_word:project falcon, in input[0].content" in refused.message
    assert allowed.output_text == "[topics] echo: Any news on the falcon project?"
    assert len(fake_openai.requests_for("topics")) == before + 1  # only the last was sent
