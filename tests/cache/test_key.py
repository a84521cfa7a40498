"""The exact tier's key: everything that can change the answer is in it; nothing else is."""

from __future__ import annotations

from typing import Any

import pytest

from stackyard.cache.key import cache_key

BASE: dict[str, Any] = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Capital of France?"},
    ],
    "temperature": 0,
}


def key(body: dict[str, Any], tenant: str = "team:a", model: str = "m=openai/gpt") -> str:
    return cache_key(tenant, model, "default", body)


@pytest.mark.parametrize(
    "change",
    [
        {"messages": [{"role": "system", "content": "Be verbose."}, *BASE["messages"][1:]]},
        {
            "messages": [
                BASE["messages"][0],
                {"role": "user", "content": "Hey"},
                *BASE["messages"][2:],
            ]
        },
        {"messages": [*BASE["messages"][:3], {"role": "user", "content": "Capital of Spain?"}]},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
        {"response_format": {"type": "json_object"}},
        {"temperature": 0.7},
        {"max_tokens": 10},
        {"seed": 1},
        {"n": 2},
    ],
)
def test_what_changes_the_answer_changes_the_key(change: dict[str, Any]) -> None:
    assert key({**BASE, **change}) != key(BASE)


def test_tenant_model_and_namespace_are_in_the_key() -> None:
    assert key(BASE, tenant="team:b") != key(BASE)
    assert key(BASE, model="m=openai/gpt-2") != key(BASE)
    assert cache_key("team:a", "m=openai/gpt", "other", BASE) != key(BASE)


def test_delivery_and_bookkeeping_are_not() -> None:
    extra = {
        "stream": True,
        "stream_options": {"include_usage": True},
        "user": "u1",
        "metadata": {"a": "b"},
    }
    assert key({**BASE, **extra}) == key(BASE)
    reordered = dict(reversed(list(BASE.items())))
    assert key(reordered) == key(BASE)
