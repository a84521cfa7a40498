"""The semantic tier on the hand-written sets of ``benchmarks/data/`` (issue 34): how many
look-alikes hit (target: none at the default 2% budget, at most 1% at 10%) and how many true
paraphrases hit (target: half at the default budget), with and without the contrast guard,
in one run. Each pair is asked as the tier asks it: ``a`` cached, ``b`` the new question,
both orders of the classifier averaged, combined with the cosine of the tier's embedder."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SETS = Path(__file__).resolve().parent / "data"
BUDGETS = (0.02, 0.05, 0.10)
FILES = {
    "look-alikes": "cache_contrast.jsonl",
    "paraphrases": "cache_paraphrases.jsonl",
    # Written blind on 2026-12-06, by a helper that had seen none of the code or earlier sets.
    "look-alikes v2 (blind)": "cache_contrast_v2.jsonl",
    "paraphrases v2 (blind)": "cache_paraphrases_v2.jsonl",
}


@dataclass
class SetResult:
    name: str
    pairs: int
    #: "guard" / "no guard" -> budget -> hits
    hits: dict[str, dict[float, int]]
    #: label -> (pairs, hits without the guard, hits with it) at the largest budget
    by_label: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    #: pairs the guard refused (of those the earlier rules let through)
    refused: int = 0


def rows(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (SETS / name).read_text().splitlines() if line]


def decisions(semantic: Any, pairs: list[tuple[str, str]], guard: bool) -> list[float]:
    from stackyard.cache.semantic import admits

    first = semantic.embed_sync([a for a, _ in pairs])
    second = semantic.embed_sync([b for _, b in pairs])
    near = [float((x * y).sum()) for x, y in zip(first, second, strict=True)]
    kept = [
        i
        for i, (a, b) in enumerate(pairs)
        if admits(a, b, near[i], semantic.min_similarity, guard=guard)
    ]
    model = semantic._pairs
    scores = model.scores([pairs[i] for i in kept], batch_size=64)
    found = [0.0] * len(pairs)
    for i, score in zip(kept, scores, strict=True):
        found[i] = model.decide(score, near[i])
    return found


def evaluate(semantic: Any, name: str, label: str) -> SetResult:
    data = rows(FILES[name])
    pairs = [(r["a"], r["b"]) for r in data]
    plain = decisions(semantic, pairs, guard=False)
    guarded = [0.0 if s and refused(a, b) else s for s, (a, b) in zip(plain, pairs, strict=True)]
    model = semantic._pairs
    result = SetResult(name, len(pairs), {"no guard": {}, "guard": {}})
    for budget in BUDGETS:
        threshold = model.threshold(budget)
        result.hits["no guard"][budget] = sum(s >= threshold for s in plain)
        result.hits["guard"][budget] = sum(s >= threshold for s in guarded)
    default = model.threshold(max(BUDGETS))
    total: Counter[str] = Counter()
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    for r, s, g in zip(data, plain, guarded, strict=True):
        total[r[label]] += 1
        before[r[label]] += s >= default
        after[r[label]] += g >= default
    result.by_label = {k: (total[k], before[k], after[k]) for k in total}
    result.refused = sum(bool(s) and not g for s, g in zip(plain, guarded, strict=True))
    return result


def refused(a: str, b: str) -> bool:
    from stackyard.cache.contrast import refusal

    return refusal(a, b) is not None


def table(results: list[SetResult]) -> list[str]:
    lines = [
        "| hand-written set | pairs | guard | "
        + " | ".join(f"hits at {b:.0%} budget" for b in BUDGETS)
        + " |",
        "| --- | ---: | --- | " + " | ".join("---:" for _ in BUDGETS) + " |",
    ]
    for result in results:
        for mode in ("no guard", "guard"):
            cells = " | ".join(
                f"{result.hits[mode][b]} ({result.hits[mode][b] / result.pairs:.1%})"
                for b in BUDGETS
            )
            lines.append(f"| {result.name} | {result.pairs} | {mode} | {cells} |")
    lines.append("")
    for result in results:
        lines.append(
            f"{result.name}, hits at a {max(BUDGETS):.0%} budget, by label (no guard / guard):"
        )
        lines.append(
            ", ".join(
                f"{label} {before}/{after} of {total}"
                for label, (total, before, after) in sorted(result.by_label.items())
            )
        )
        lines.append("")
    return lines


@dataclass
class GeneratedResult:
    """The error budget on near-misses: contrast negatives and paraphrase positives generated
    (:func:`stackyard.cache.contrast_pairs.generate`) from held-out questions, which neither
    training nor calibration saw."""

    negatives: int
    positives: int
    #: "guard" / "no guard" -> budget -> (negatives hit, positives hit)
    hits: dict[str, dict[float, tuple[int, int]]]


def generated(semantic: Any, questions: list[str], count: int = 1000) -> GeneratedResult:
    from stackyard.cache.contrast_pairs import generate

    made = generate(questions, count, random.Random(34))
    pairs = [(a, b) for a, b, _ in made]
    labels = [same for _, _, same in made]
    plain = decisions(semantic, pairs, guard=False)
    guarded = [0.0 if s and refused(a, b) else s for s, (a, b) in zip(plain, pairs, strict=True)]
    model = semantic._pairs
    result = GeneratedResult(labels.count(False), labels.count(True), {"no guard": {}, "guard": {}})
    for mode, found in (("no guard", plain), ("guard", guarded)):
        for budget in BUDGETS:
            threshold = model.threshold(budget)
            hit = [s >= threshold for s in found]
            wrong = sum(h and not y for h, y in zip(hit, labels, strict=True))
            right = sum(h and y for h, y in zip(hit, labels, strict=True))
            result.hits[mode][budget] = (wrong, right)
    return result


def generated_table(result: GeneratedResult) -> list[str]:
    lines = [
        f"Generated from held-out QQP questions: {result.negatives} contrast negatives, "
        f"{result.positives} paraphrase positives.",
        "",
        "| guard | budget | negatives hit | positives hit | wrong share of hits |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for mode in ("no guard", "guard"):
        for budget in BUDGETS:
            wrong, right = result.hits[mode][budget]
            share = f"{wrong / (wrong + right):.1%}" if wrong + right else "no hits"
            lines.append(
                f"| {mode} | {budget:.0%} | {wrong} ({wrong / max(1, result.negatives):.1%}) "
                f"| {right} ({right / max(1, result.positives):.1%}) | {share} |"
            )
    lines.append("")
    return lines
