"""A deployment's ``defaults``: what a request that does not say is sent with."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from stackyard.config.schema import ModelEntry
from stackyard.gateway.deployment import Deployment
from stackyard.gateway.health import Health

HEALTH = Health(allowed_fails=3, window=60, cooldown=5)


def deployment(**defaults: Any) -> Deployment:
    entry = ModelEntry.model_validate({"name": "m", "provider": "openai", "defaults": defaults})
    return Deployment(id="m#0", name="m", entry=entry, provider=None, health=HEALTH)  # type: ignore[arg-type]


def test_a_chat_body_gets_what_it_does_not_set() -> None:
    d = deployment(temperature=0, top_p=0.9, max_tokens=64, stop=["\n\n"])
    body = {"model": "m", "messages": [], "top_p": 0.5}
    sent = d.chat_body(body)
    assert sent == {**body, "temperature": 0, "max_tokens": 64, "stop": ["\n\n"]}
    assert body == {"model": "m", "messages": [], "top_p": 0.5}  # the request is not changed
    # max_completion_tokens is the request's own limit: the default max_tokens stays out.
    assert "max_tokens" not in d.chat_body({"max_completion_tokens": 5})
    assert d.chat_body({"temperature": None})["temperature"] == 0


def test_a_messages_body_gets_them_by_anthropics_names() -> None:
    d = deployment(temperature=0.2, stop=["END"], seed=7, max_tokens=64)
    sent = d.messages_body({"model": "m", "max_tokens": 10, "messages": []})
    assert sent == {
        "model": "m",
        "max_tokens": 10,
        "messages": [],
        "temperature": 0.2,
        "stop_sequences": ["END"],
    }


def test_none_is_the_body_itself_and_bad_values_are_refused() -> None:
    body: dict[str, Any] = {"model": "m"}
    assert deployment().chat_body(body) is body
    with pytest.raises(ValidationError):
        deployment(temperature=3)
    with pytest.raises(ValidationError):
        deployment(top_k=5)  # not a default the gateway knows: refused, never dropped
