"""The Messages door's shape, as the stages use it: a registry prompt's messages and
parameters, RAG's context, and what the translation to OpenAI's format cannot carry (a 400
naming it, never dropped)."""

from __future__ import annotations

from typing import Any

import pytest

from stackyard.errors import APIError
from stackyard.gateway.doors.messages import MESSAGES
from stackyard.gateway.providers.base import UpstreamError
from stackyard.gateway.translate.anthropic_frontdoor import request

BODY: dict[str, Any] = {
    "model": "m",
    "max_tokens": 10,
    "system": "Be brief.",
    "messages": [{"role": "user", "content": "Hi"}],
}
GIVEN = [
    {"role": "system", "content": "You answer for Acme."},
    {"role": "user", "content": "Earlier question"},
]


def test_a_prompt_goes_in_front_and_its_parameters_fill_in() -> None:
    out = MESSAGES.with_prompt(BODY, GIVEN, {"temperature": 0.2, "max_tokens": 99, "stop": "X"})
    assert out["system"] == "You answer for Acme.\n\nBe brief."
    assert out["messages"] == [GIVEN[1], *BODY["messages"]]
    assert (out["temperature"], out["max_tokens"], out["stop_sequences"]) == (0.2, 10, "X")


def test_a_prompt_parameter_messages_cannot_take_is_a_400_naming_it() -> None:
    with pytest.raises(APIError) as info:
        MESSAGES.with_prompt(BODY, GIVEN, {"frequency_penalty": 0.5})
    assert (info.value.status, info.value.param) == (400, "prompt.config.frequency_penalty")


def test_rag_context_follows_the_requests_own_system() -> None:
    out = MESSAGES.with_context({**BODY, "system": [{"type": "text", "text": "Own"}]}, GIVEN[:1])
    assert out["system"] == [
        {"type": "text", "text": "Own"},
        {"type": "text", "text": "You answer for Acme."},
    ]
    assert out["messages"] == BODY["messages"]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"top_k": 5}, "top_k"),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "thinking"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]"),
    ],
)
def test_what_the_translation_cannot_carry_is_a_400_naming_it(
    extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(UpstreamError) as info:
        request({**BODY, **extra})
    assert (info.value.kind, info.value.status, info.value.param) == ("client", 400, param)
    # ... and the cache keys such a request as it is (it may still go to Claude itself).
    assert MESSAGES.cache_view({**BODY, **extra})["stackyard_door"] == "messages"
