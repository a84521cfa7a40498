"""The gate: thresholds, and drops against a baseline that are significant (or just noise)."""

from __future__ import annotations

import pytest

from stackyard.evals.gate import evaluate, paired_drop_p_value
from stackyard.evals.runner import ItemResult, Run


def run(scores: list[float], name: str = "r") -> Run:
    results = [ItemResult(str(i), "", {"s": v}, {}, 1.0) for i, v in enumerate(scores)]
    return Run(name, "t", results, 0.0, 1.0)


def test_exact_p_value_for_small_samples() -> None:
    assert paired_drop_p_value([-1.0] * 5) == pytest.approx(1 / 32)
    assert paired_drop_p_value([1.0] * 5) == 1.0
    assert paired_drop_p_value([]) == 1.0


def test_a_clear_drop_fails_and_noise_does_not() -> None:
    baseline = run([1.0] * 40)
    worse = run([1.0] * 25 + [0.0] * 15)
    [check] = evaluate(worse, {"s": None}, baseline, max_drop=0.05)
    assert check.failed_drop
    assert check.p_value is not None
    assert check.p_value < 0.001
    # Noise: a few items better, a few worse; the mean dips, but not significantly.
    base = [1.0, 0.0] * 20
    noisy = list(base)
    for i in (0, 2, 4):
        noisy[i] = 0.0
    for i in (1, 3):
        noisy[i] = 1.0
    [check] = evaluate(run(noisy), {"s": None}, run(base), max_drop=0.0)
    assert check.delta == pytest.approx(-1 / 40)
    assert check.p_value == pytest.approx(0.5, abs=0.03)  # by resampling: 40 items
    assert not check.failed_drop


def test_a_small_drop_within_max_drop_passes() -> None:
    [check] = evaluate(run([1.0] * 49 + [0.0]), {"s": 0.9}, run([1.0] * 50), max_drop=0.05)
    assert check.passed
    assert check.delta == pytest.approx(-0.02)


def test_thresholds() -> None:
    [check] = evaluate(run([1.0, 0.0]), {"s": 0.6}, None, max_drop=0.0)
    assert check.failed_threshold
    assert not check.passed
