"""The cache stage's headers: a hit says what it saved (what the first answer cost upstream,
less the hit's price), a miss says nothing of savings."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from stackyard.cache.entry import Entry
from stackyard.cache.service import Control, Lookup
from stackyard.cache.stage import CacheStage, saved_header


def entry(cost: float) -> Entry:
    return Entry(
        id="cache_1",
        key="k",
        namespace="default",
        model="m",
        created=0.0,
        expires=1e12,
        cost_usd=cost,
        usage=None,
        response={"choices": []},
    )


def exchange(found: Lookup, price: float) -> tuple[CacheStage, Any]:
    cache = SimpleNamespace(
        control=lambda request, spec, principal: Control("exact", 60.0, "default"),
        lookup=lambda control, principal, body: _done(found),
    )
    config = SimpleNamespace(cache=SimpleNamespace(cost_per_hit=price))
    gateway: Any = SimpleNamespace(cache=cache, config=config)
    door = SimpleNamespace(cache_view=lambda body: body, replay=lambda e: e.response)
    ex = SimpleNamespace(
        admitted=SimpleNamespace(principal=None, trace=None),
        request=None,
        options={},
        door=door,
        body={"model": "m"},
        headers=[],
        stream=False,
        state={},
    )
    return CacheStage(gateway), ex


async def _done(found: Lookup) -> Lookup:
    return found


@pytest.mark.parametrize(
    ("cost", "price", "saved"), [(0.0123, 0.0, 0.0123), (0.01, 0.004, 0.006), (0.001, 0.01, 0.0)]
)
def test_a_hit_says_what_it_saved(cost: float, price: float, saved: float) -> None:
    stage, ex = exchange(Lookup("k", entry(cost), "exact"), price)
    served = asyncio.run(stage.before(ex))
    assert served is not None
    headers = dict(ex.headers)
    assert headers[b"x-stackyard-cache"] == b"exact"
    assert float(headers[b"x-stackyard-cache-saved-usd"]) == pytest.approx(saved)


def test_a_miss_says_nothing_of_savings() -> None:
    stage, ex = exchange(Lookup("k"), 0.0)
    assert asyncio.run(stage.before(ex)) is None
    headers = dict(ex.headers)
    assert headers[b"x-stackyard-cache"] == b"miss"
    assert b"x-stackyard-cache-saved-usd" not in headers


def test_the_header_is_formatted_like_the_cost() -> None:
    assert saved_header(0.5, 0.25) == (b"x-stackyard-cache-saved-usd", b"0.25000000")
