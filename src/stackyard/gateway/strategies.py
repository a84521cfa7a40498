"""Load-balancing strategies: pick one deployment among a model's healthy ones."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from stackyard.gateway.deployment import Deployment

Pick = Callable[[Sequence[Deployment], random.Random], Deployment]

#: Share of requests that lowest-latency sends elsewhere, to keep every estimate fresh.
EXPLORE = 0.05


def weighted_random(candidates: Sequence[Deployment], rng: random.Random) -> Deployment:
    if len(candidates) == 1:
        return candidates[0]
    return rng.choices(candidates, weights=[d.weight for d in candidates])[0]


def least_outstanding(candidates: Sequence[Deployment], rng: random.Random) -> Deployment:
    if len(candidates) == 1:
        return candidates[0]
    fewest = min(d.outstanding for d in candidates)
    return weighted_random([d for d in candidates if d.outstanding == fewest], rng)


def lowest_latency(candidates: Sequence[Deployment], rng: random.Random) -> Deployment:
    if len(candidates) == 1:
        return candidates[0]
    unmeasured = [d for d in candidates if d.health.latency is None]
    if unmeasured:
        return weighted_random(unmeasured, rng)
    if rng.random() < EXPLORE:
        return weighted_random(candidates, rng)
    return min(candidates, key=lambda d: d.health.latency or 0.0)


STRATEGIES: dict[str, Pick] = {
    "weighted-random": weighted_random,
    "least-outstanding": least_outstanding,
    "lowest-latency": lowest_latency,
}
