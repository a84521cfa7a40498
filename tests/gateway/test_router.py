import random

import pytest

from stackyard.config.schema import ModelEntry, RouterConfig
from stackyard.errors import APIError
from stackyard.gateway.deployment import Deployment
from stackyard.gateway.providers.base import Body, UpstreamError
from stackyard.gateway.router import Router, RouteStats, backoff_delay
from tests.fakes.provider import Delay, FakeProvider


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_router(
    spec: list[tuple[str, str]], clock: Clock | None = None, **router: object
) -> tuple[Router, dict[str, FakeProvider]]:
    """``spec``: (model name, deployment id) pairs."""
    defaults: dict[str, object] = {"backoff": {"initial": 0.001, "max": 0.002}}
    config = RouterConfig.model_validate({**defaults, **router})
    entries = [ModelEntry(name=n, provider="fake", id=i) for n, i in spec]
    providers = {i: FakeProvider(i) for _, i in spec}
    kwargs: dict[str, object] = {"rng": random.Random(7)}
    if clock is not None:
        kwargs["clock"] = clock
    r = Router(entries, [providers[i] for _, i in spec], config, **kwargs)  # type: ignore[arg-type]
    return r, providers


async def chat(router: Router, model: str, stats: RouteStats | None = None) -> Body:
    routed = await router.run(
        model, lambda d: d.provider.chat({"model": model}), stats=stats or RouteStats()
    )
    return routed.result


def server_error(message: str = "boom") -> UpstreamError:
    return UpstreamError("server", message, status=500)


async def test_unknown_model_is_404_listing_known_models() -> None:
    router, _ = make_router([("a", "a1"), ("b", "b1")])
    with pytest.raises(APIError) as info:
        await chat(router, "nope")
    assert info.value.status == 404
    assert info.value.code == "model_not_found"
    assert "a, b" in info.value.message


async def test_retries_same_deployment_after_server_error() -> None:
    router, fakes = make_router([("a", "a1")])
    fakes["a1"].enqueue(server_error())
    stats = RouteStats()
    assert await chat(router, "a", stats) == {"served_by": "a1"}
    assert stats.attempts == 2
    assert len(fakes["a1"].calls) == 2


async def test_failure_moves_to_untried_deployment_first() -> None:
    router, fakes = make_router([("a", "a1"), ("a", "a2")])
    for fake in fakes.values():
        fake.enqueue(UpstreamError("rate_limited", "slow down", status=429))
    stats = RouteStats()
    # Both deployments fail once; the third attempt (a retry) succeeds.
    assert (await chat(router, "a", stats))["served_by"] in {"a1", "a2"}
    assert stats.attempts == 3
    assert sorted(len(f.calls) for f in fakes.values()) == [1, 2]


async def test_fallback_chain_after_retries_are_spent() -> None:
    router, fakes = make_router([("a", "a1"), ("b", "b1")], retries=1, fallbacks={"a": ["b"]})
    fakes["a1"].enqueue(server_error(), server_error())
    stats = RouteStats()
    assert await chat(router, "a", stats) == {"served_by": "b1"}
    assert stats.attempts == 3
    assert stats.deployment is not None
    assert stats.deployment.id == "b1"


async def test_fallbacks_are_transitive_and_cannot_loop() -> None:
    router, fakes = make_router(
        [("a", "a1"), ("b", "b1"), ("c", "c1")],
        retries=0,
        fallbacks={"a": ["b"], "b": ["a", "c"]},
    )
    assert router.chain("a") == ("a", "b", "c")
    assert router.chain("b") == ("b", "a", "c")
    fakes["a1"].enqueue(server_error())
    fakes["b1"].enqueue(server_error())
    assert await chat(router, "a") == {"served_by": "c1"}


async def test_one_attempt_budget_for_the_whole_chain() -> None:
    router, fakes = make_router(
        [("a", "a1"), ("b", "b1")], retries=5, max_attempts=3, fallbacks={"a": ["b"]}
    )
    fakes["a1"].enqueue(*[server_error()] * 10)
    fakes["b1"].enqueue(*[server_error()] * 10)
    stats = RouteStats()
    with pytest.raises(APIError) as info:
        await chat(router, "a", stats)
    assert stats.attempts == 3
    assert len(fakes["b1"].calls) == 0  # the budget ran out inside "a"
    assert info.value.status == 502
    assert "3 attempt(s) failed for a -> b" in info.value.message
    assert "boom" in info.value.message


async def test_client_error_is_passed_through_without_retry() -> None:
    router, fakes = make_router([("a", "a1"), ("a", "a2")])
    error = UpstreamError(
        "client", "context too long", status=400, code="context_length_exceeded", param="x"
    )
    fakes["a1"].enqueue(error)
    fakes["a2"].enqueue(error)
    stats = RouteStats()
    with pytest.raises(APIError) as info:
        await chat(router, "a", stats)
    assert (info.value.status, info.value.code, info.value.param) == (
        400,
        "context_length_exceeded",
        "x",
    )
    assert stats.attempts == 1


async def test_deployment_error_skips_that_deployment_for_the_request() -> None:
    router, fakes = make_router([("a", "a1"), ("b", "b1")], fallbacks={"a": ["b"]})
    fakes["a1"].enqueue(UpstreamError("deployment", "bad key", status=401))
    stats = RouteStats()
    assert await chat(router, "a", stats) == {"served_by": "b1"}
    assert len(fakes["a1"].calls) == 1  # not retried: retrying cannot fix a bad key


async def test_repeated_failures_cool_a_deployment_down_until_its_cooldown_ends() -> None:
    clock = Clock()
    router, fakes = make_router(
        [("a", "a1"), ("a", "a2")],
        clock=clock,
        retries=0,
        cooldown={"allowed_fails": 2, "window": 60, "duration": 30},
    )
    fakes["a1"].enqueue(server_error(), server_error())
    # Route until a1 has failed twice; it is then skipped.
    for _ in range(20):
        await chat(router, "a")
        if len(fakes["a1"].calls) == 2:
            break
    assert not router.deployments["a"][0].health.available(clock.now)
    before = len(fakes["a1"].calls)
    for _ in range(10):
        assert await chat(router, "a") == {"served_by": "a2"}
    assert len(fakes["a1"].calls) == before
    clock.now += 31
    served = {(await chat(router, "a"))["served_by"] for _ in range(20)}
    assert served == {"a1", "a2"}


async def test_retry_after_cools_down_and_all_cooling_is_503_with_retry_after() -> None:
    clock = Clock()
    router, fakes = make_router([("a", "a1")], clock=clock, max_retry_wait=1)
    fakes["a1"].enqueue(UpstreamError("rate_limited", "slow down", status=429, retry_after=20))
    stats = RouteStats()
    with pytest.raises(APIError) as info:
        await chat(router, "a", stats)
    assert info.value.status == 503
    assert info.value.code == "upstream_rate_limited"
    assert ("retry-after", "20") in info.value.headers
    assert stats.attempts == 1  # a 20 s wait is over max_retry_wait: no retry
    # The next request finds the only deployment cooling down and is refused at once.
    with pytest.raises(APIError) as info:
        await chat(router, "a")
    assert info.value.code == "no_deployment_available"
    assert ("retry-after", "20") in info.value.headers
    assert len(fakes["a1"].calls) == 1
    clock.now += 21
    assert await chat(router, "a") == {"served_by": "a1"}


async def test_short_retry_after_is_honoured_on_the_same_deployment() -> None:
    router, fakes = make_router([("a", "a1")])
    fakes["a1"].enqueue(UpstreamError("rate_limited", "slow down", status=429, retry_after=0.05))
    stats = RouteStats()
    assert await chat(router, "a", stats) == {"served_by": "a1"}
    assert stats.attempts == 2
    assert stats.waited >= 0.05


async def test_attempt_timeout_is_a_retryable_timeout_and_ends_as_504() -> None:
    router, fakes = make_router([("a", "a1")], attempt_timeout=0.05, retries=1)
    fakes["a1"].enqueue(Delay(1), Delay(1))
    stats = RouteStats()
    with pytest.raises(APIError) as info:
        await chat(router, "a", stats)
    assert info.value.status == 504
    assert stats.attempts == 2


async def test_total_timeout_bounds_the_whole_chain() -> None:
    router, fakes = make_router(
        [("a", "a1"), ("b", "b1")], timeout=0.1, attempt_timeout=10, fallbacks={"a": ["b"]}
    )
    fakes["a1"].enqueue(Delay(5))
    with pytest.raises(APIError) as info:
        await chat(router, "a")
    assert info.value.status == 504
    assert fakes["b1"].calls == []


async def test_unsupported_operation_is_400() -> None:
    router, _ = make_router([("a", "a1")])
    with pytest.raises(APIError) as info:
        await router.run(
            "a",
            lambda d: d.provider.chat({}),
            stats=RouteStats(),
            supports=lambda d: False,
            operation="embeddings",
        )
    assert info.value.status == 400
    assert "does not support embeddings" in info.value.message


def _pick_counts(router: Router, n: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    group = router.deployments["a"]
    for _ in range(n):
        chosen: Deployment = router._pick(group, router.rng)
        counts[chosen.id] = counts.get(chosen.id, 0) + 1
    return counts


def test_weighted_random_follows_weights() -> None:
    config = RouterConfig()
    entries = [
        ModelEntry(name="a", provider="fake", id="heavy", weight=3),
        ModelEntry(name="a", provider="fake", id="light", weight=1),
    ]
    router = Router(entries, [FakeProvider(), FakeProvider()], config, rng=random.Random(1))
    counts = _pick_counts(router, 4000)
    assert 2700 < counts["heavy"] < 3300


def test_least_outstanding_prefers_idle_deployments() -> None:
    router, _ = make_router([("a", "a1"), ("a", "a2"), ("a", "a3")], strategy="least-outstanding")
    group = router.deployments["a"]
    group[0].outstanding = 3
    group[1].outstanding = 0
    group[2].outstanding = 1
    assert _pick_counts(router, 50) == {"a2": 50}


def test_lowest_latency_tries_unmeasured_then_prefers_fastest() -> None:
    router, _ = make_router([("a", "a1"), ("a", "a2")], strategy="lowest-latency")
    slow, fast = router.deployments["a"]
    slow.health.record_success(0.5, 0.3)
    assert _pick_counts(router, 20) == {"a2": 20}  # a2 has no estimate yet
    fast.health.record_success(0.05, 0.3)
    counts = _pick_counts(router, 1000)
    assert counts["a2"] > 900  # exploration sends a few elsewhere
    assert counts.get("a1", 0) > 0


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    config = RouterConfig.model_validate(
        {"backoff": {"initial": 1, "multiplier": 2, "max": 5, "jitter": 0.1}}
    )
    rng = random.Random(3)
    delays = [backoff_delay(config, i, rng) for i in range(5)]
    for delay, base in zip(delays, [1, 2, 4, 5, 5], strict=True):
        assert base * 0.9 <= delay <= base * 1.1


async def test_fallbacks_can_be_turned_off_for_model_specific_answers() -> None:
    router, fakes = make_router([("a", "a1"), ("b", "b1")], retries=0, fallbacks={"a": ["b"]})
    fakes["a1"].enqueue(server_error())
    with pytest.raises(APIError):
        await router.run("a", lambda d: d.provider.chat({}), stats=RouteStats(), fallbacks=False)
    assert fakes["b1"].calls == []


async def test_a_busy_but_healthy_deployment_is_not_cooled_down() -> None:
    router, fakes = make_router([("a", "a1")], retries=0, cooldown={"allowed_fails": 1})
    busy = UpstreamError(
        "rate_limited", "queue full", retry_after=1, client_status=429, cooldown=False
    )
    fakes["a1"].enqueue(busy)
    with pytest.raises(APIError) as info:
        await chat(router, "a")
    assert info.value.status == 429
    assert ("retry-after", "1") in info.value.headers
    assert await chat(router, "a") == {"served_by": "a1"}


async def test_deployment_quotas_send_traffic_elsewhere_then_refuse() -> None:
    clock = Clock()
    config = RouterConfig.model_validate({"fallbacks": {"a": ["b"]}})
    entries = [
        ModelEntry(name="a", provider="fake", id="a1", rpm=2),
        ModelEntry(name="b", provider="fake", id="b1", rpm=1, tpm=100),
    ]
    fakes = [FakeProvider("a1"), FakeProvider("b1")]
    router = Router(entries, fakes, config, rng=random.Random(1), clock=clock)
    served = [(await chat(router, "a"))["served_by"] for _ in range(3)]
    assert served == ["a1", "a1", "b1"]  # a1's two requests a minute used: the fallback serves
    with pytest.raises(APIError) as info:
        await chat(router, "a")
    assert info.value.status == 429
    assert info.value.code == "deployment_quota_exceeded"
    assert "a1, b1" in info.value.message
    clock.now += 120  # two minutes on: room again
    assert (await chat(router, "a"))["served_by"] == "a1"
    router.count_tokens(router.deployments["b"][0], 150)  # b1's tokens, charged after the fact
    assert await router.quotas.take(router._quota[id(router.deployments["b"][0])]) is not None
