"""The CI gate: each scorer's mean against its threshold, and against a baseline run with a
paired significance test, so that noise does not fail a build."""

from __future__ import annotations

import random
from dataclasses import dataclass

from stackyard.evals.runner import Run


def paired_drop_p_value(differences: list[float], *, resamples: int = 10_000) -> float:
    """One-sided p-value that the mean of ``differences`` (candidate minus baseline, per item)
    is this low by chance: a sign-flip permutation test (exact for 16 items or fewer)."""
    n = len(differences)
    if n == 0:
        return 1.0
    observed = sum(differences)
    if n <= 16:
        total = 1 << n
        count = 0
        for mask in range(total):
            flipped = sum(-d if mask >> i & 1 else d for i, d in enumerate(differences))
            count += flipped <= observed + 1e-12
        return count / total
    rng = random.Random(0)
    count = 0
    for _ in range(resamples):
        flipped = sum(d if rng.random() < 0.5 else -d for d in differences)
        count += flipped <= observed + 1e-12
    return (count + 1) / (resamples + 1)


@dataclass
class Check:
    scorer: str
    mean: float
    threshold: float | None
    baseline: float | None = None
    p_value: float | None = None
    failed_threshold: bool = False
    failed_drop: bool = False

    @property
    def passed(self) -> bool:
        return not (self.failed_threshold or self.failed_drop)

    @property
    def delta(self) -> float | None:
        return None if self.baseline is None else self.mean - self.baseline


def evaluate(
    run: Run,
    thresholds: dict[str, float | None],
    baseline: Run | None,
    *,
    max_drop: float,
    alpha: float = 0.05,
) -> list[Check]:
    checks = []
    for scorer, threshold in thresholds.items():
        check = Check(scorer, run.mean(scorer), threshold)
        check.failed_threshold = threshold is not None and check.mean < threshold
        if baseline is not None:
            ours, theirs = run.scores(scorer), baseline.scores(scorer)
            common = sorted(set(ours) & set(theirs))
            differences = [ours[i] - theirs[i] for i in common]
            check.baseline = sum(theirs[i] for i in common) / len(common) if common else None
            check.p_value = paired_drop_p_value(differences)
            drop = -(sum(differences) / len(differences)) if differences else 0.0
            check.failed_drop = drop > max_drop and check.p_value < alpha
        checks.append(check)
    return checks
