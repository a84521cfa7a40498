"""The semantic tier's error budget on QQP's calibration pairs re-judged by a second reader
(issue 34): is QQP's label noise what keeps the default 2% budget from answering paraphrases?

``benchmarks/data/qqp_calibration_rejudged.jsonl`` holds 720 pairs of the calibration split
(by their index ``i`` in :func:`stackyard.cache.training.qqp_split`), drawn at random, 120 from
each band of the tier's decision score (0.70-0.797-0.85-0.90-0.921-0.9555-1; 0.797, 0.921 and
0.9555 are the 10%, 5% and 2% budgets' thresholds), and judged on 2026-12-06 by a helper (an
LLM agent) that saw the two questions only: not QQP's label, not the score. "same": one
correct answer to the first fully answers the second.

Reported per band: how many calibration pairs fall in it, QQP's precision and the second
reader's on the sample, how often the two agree, and the share both call different. Then,
for each band's lower edge as a threshold, the estimated share of wrong hits above it
(each band's sample rate weighted by the band's size), by the second reader alone and by
"both call it different".

Run: ``python -m benchmarks.cache_rejudged`` (scores the 16,171 calibration pairs as the
tier decides: a few minutes on two cores).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
JUDGED = HERE / "data" / "qqp_calibration_rejudged.jsonl"
EDGES = (0.70, 0.797, 0.85, 0.90, 0.921, 0.9555, 1.01)


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not DATA.exists():
        print(f"the data sets are not here: {DATA}", file=sys.stderr)
        return 2
    from benchmarks._cache_sets import decisions
    from stackyard.cache.semantic import Semantic
    from stackyard.cache.training import qqp_split

    pairs = qqp_split(DATA, "calibration")
    scores = decisions(Semantic(), [(a, b) for a, b, _ in pairs], guard=True)
    judged = [json.loads(line) for line in JUDGED.read_text().splitlines() if line]
    bands = list(itertools.pairwise(EDGES))

    def band(score: float) -> int | None:
        return next((k for k, (lo, hi) in enumerate(bands) if lo <= score < hi), None)

    size = [0] * len(bands)
    for score in scores:
        if (k := band(score)) is not None:
            size[k] += 1
    n, qqp, second, agree, both = ([0] * len(bands) for _ in range(5))
    for row in judged:
        k = band(scores[row["i"]])
        if k is None:  # the tier's scores moved since the sample was drawn
            continue
        label = bool(pairs[row["i"]][2])
        n[k] += 1
        qqp[k] += label
        second[k] += row["same"]
        agree[k] += row["same"] == label
        both[k] += not row["same"] and not label
    lines = [
        "| decision band | calibration pairs | re-judged | QQP precision | second reader's "
        "precision | agreement | both call it different |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for k, (lo, hi) in enumerate(bands):
        m = max(1, n[k])
        lines.append(
            f"| {lo:g}-{min(hi, 1):g} | {size[k]} | {n[k]} | {qqp[k] / m:.3f} | "
            f"{second[k] / m:.3f} | {agree[k] / m:.3f} | {both[k] / m:.3f} |"
        )
    lines += [
        "",
        "| threshold | hits above it | wrong share, second reader | wrong share, both |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for k in range(len(bands) - 1, -1, -1):
        above = range(k, len(bands))
        hits = sum(size[j] for j in above)
        wrong = sum(size[j] * (n[j] - second[j]) / max(1, n[j]) for j in above)
        wrong_both = sum(size[j] * both[j] / max(1, n[j]) for j in above)
        lines.append(
            f"| {bands[k][0]:g} | {hits} | {wrong / max(1, hits):.3f} | "
            f"{wrong_both / max(1, hits):.3f} |"
        )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
