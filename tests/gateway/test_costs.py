import pytest

from stackyard.config.schema import ModelEntry
from stackyard.gateway.costs import Price, price_for


def test_prices_by_model_and_dated_snapshot() -> None:
    assert price_for(ModelEntry(name="a", provider="openai", model="gpt-4o-mini")) == Price(
        0.15, 0.60, 0.075
    )
    dated = ModelEntry(name="a", provider="openai", model="gpt-4o-mini-2024-07-18")
    assert price_for(dated).input == 0.15
    unknown = ModelEntry(name="a", provider="openai-compatible", model="my-llama")
    assert price_for(unknown) == Price()


def test_config_overrides_and_local_models_are_free() -> None:
    entry = ModelEntry(name="a", provider="openai", model="gpt-4o", output_cost_per_mtok=1.0)
    assert price_for(entry) == Price(2.50, 1.0, 1.25)
    assert price_for(ModelEntry(name="s", provider="local", model="smollm2")) == Price()


def test_cost_counts_cached_tokens_at_their_price() -> None:
    price = Price(input=2.0, output=8.0, cached_input=0.5)
    usage = {
        "prompt_tokens": 1_000_000,
        "completion_tokens": 500_000,
        "prompt_tokens_details": {"cached_tokens": 400_000},
    }
    assert price.cost(usage) == pytest.approx(0.6 * 2.0 + 0.4 * 0.5 + 0.5 * 8.0)
    assert price.cost(None) == 0.0


def test_a_price_per_second_charges_the_requests_time() -> None:
    entry = ModelEntry(name="m", provider="local", model="smollm2", cost_per_second=0.002)
    price = price_for(entry, attempt_timeout=30.0)
    assert price.cost({"prompt_tokens": 100, "completion_tokens": 10}, 2.5) == pytest.approx(0.005)
    assert price.cost(None, 1.0) == pytest.approx(0.002)
    # A budget reserves the longest an attempt may take: the deployment's own timeout first.
    assert price.most(100, 10) == pytest.approx(0.06)
    timed = ModelEntry(
        name="m", provider="local", model="smollm2", cost_per_second=0.002, timeout=5.0
    )
    assert price_for(timed).most(100, 10) == pytest.approx(0.01)
    untimed = price_for(ModelEntry(name="m", provider="local", model="smollm2"))
    assert untimed.most(100, 10) == 0.0
    assert untimed.cost(None, 60.0) == 0.0
