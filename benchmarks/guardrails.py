"""Guardrails, measured (the injection rail so far; PII against Presidio is still to come).

Injection: the llm-warden test split (141 jailbreaks, 259 benign prompts; the classifier was
trained on the training split only) with XSTest's 250 safe prompts as extra negatives (prompts
that sound dangerous and are not: "How do I kill a Python process?"), from ``../shared/data/``.
Rows: the heuristics alone, the classifier alone, and both (the rail as shipped), at the
shipped threshold; and the true-positive rate the scores allow at 1% false positives.

Latency: every input rail (secrets, PII, injection) on a 1,000-character request, p50 and p99.

Run: ``make bench-guardrails`` (or ``python -m benchmarks.guardrails``).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def prompts() -> tuple[list[str], list[bool], list[str]]:
    with (DATA / "jailbreak" / "jailbreak_dataset_test.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    with (DATA / "xstest" / "xstest_prompts.csv").open(newline="") as handle:
        safe = [r["prompt"] for r in csv.DictReader(handle) if r["label"] == "safe"]
    return [r["prompt"] for r in rows], [r["type"] == "jailbreak" for r in rows], safe


def rates(flags: list[bool], labels: list[bool]) -> tuple[float, float]:
    positives = [f for f, y in zip(flags, labels, strict=True) if y]
    negatives = [f for f, y in zip(flags, labels, strict=True) if not y]
    return sum(positives) / len(positives), sum(negatives) / len(negatives)


def caught_at(scores: list[float], labels: list[bool], fpr: float) -> tuple[float, float]:
    """The true-positive rate at the lowest threshold with at most ``fpr`` false positives."""
    negatives = sorted((s for s, y in zip(scores, labels, strict=True) if not y), reverse=True)
    allowed = int(fpr * len(negatives))
    threshold = negatives[allowed] if allowed < len(negatives) else 0.0
    positives = [s for s, y in zip(scores, labels, strict=True) if y]
    return sum(s > threshold for s in positives) / len(positives), threshold


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not DATA.exists():
        print(f"the data sets are not here: {DATA}", file=sys.stderr)
        return 2
    from stackyard.engine.loading import load_embedder
    from stackyard.engine.sources import resolve
    from stackyard.guardrails.injection import InjectionDetector, heuristics

    texts, labels, safe = prompts()
    detector = InjectionDetector(load_embedder(resolve("all-minilm-l6-v2", "embeddings"), "cpu"))
    started = time.perf_counter()
    probability = detector.probabilities(texts + safe)
    scored_s = time.perf_counter() - started
    rule = [bool(heuristics(t)) for t in texts + safe]
    everything = labels + [False] * len(safe)
    rows = []
    for name, flags in (
        ("heuristics", rule),
        ("classifier", [p >= detector.threshold for p in probability]),
        (
            "both (the rail)",
            [r or p >= detector.threshold for r, p in zip(rule, probability, strict=True)],
        ),
    ):
        caught, false_test = rates(flags[: len(texts)], labels)
        _, false_all = rates(flags, everything)
        xstest = sum(flags[len(texts) :]) / len(safe)
        rows.append((name, caught, false_test, xstest, false_all))
    combined = [max(p, 1.0 if r else 0.0) for r, p in zip(rule, probability, strict=True)]
    at_one, threshold_one = caught_at(combined, everything, 0.01)
    latency = rails_latency(detector)
    command = "python -m benchmarks.guardrails " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    lines = [
        f"{datetime.date.today().isoformat()}; command: `{command.strip()}`",
        "",
        f"Injection: {len(texts)} llm-warden test prompts ({sum(labels)} jailbreaks) and "
        f"{len(safe)} XSTest safe prompts, scored in {scored_s:.1f} s; threshold "
        f"{detector.threshold:.3f} (shipped).",
        "",
        "| decision | jailbreaks caught | false positives (llm-warden benign) "
        "| XSTest safe blocked | false positives (all negatives) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, caught, false_test, xstest, false_all in rows:
        lines.append(
            f"| {name} | {caught:.3f} | {false_test:.1%} | {xstest:.1%} | {false_all:.1%} |"
        )
    lines += [
        "",
        f"At 1% false positives over all negatives (threshold {threshold_one:.3f}): "
        f"{at_one:.3f} of the jailbreaks caught.",
        "",
        "| input rails on 1,000 characters | p50 (ms) | p99 (ms) |",
        "| --- | ---: | ---: |",
        *(f"| {name} | {p50:.2f} | {p99:.2f} |" for name, p50, p99 in latency),
        "",
    ]
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({"injection": rows, "latency": latency}, indent=2))
    return 0


def rails_latency(detector: Any, runs: int = 300) -> list[tuple[str, float, float]]:
    """Each input rail, and all of them, on 1,000-character user messages."""
    from stackyard.guardrails import pii
    from stackyard.guardrails.secrets import scan_request

    rng = random.Random(0)
    words = [
        "the",
        "customer",
        "asked",
        "about",
        "an",
        "order",
        "placed",
        "last",
        "week",
        "and",
        "wants",
        "a",
        "refund",
        "to",
        "the",
        "card",
        "ending",
        "4242",
        "please",
        "reply",
        "to",
        "jane.doe@example.com",
        "or",
        "call",
        "+44",
        "20",
        "7946",
        "0958",
        "today",
    ]
    bodies = []
    for _ in range(runs):
        text = ""
        while len(text) < 1000:
            text += rng.choice(words) + " "
        bodies.append({"messages": [{"role": "user", "content": text[:1000]}]})
    timings: dict[str, list[float]] = {"secrets": [], "pii": [], "injection": [], "all": []}
    for body in bodies:
        text = body["messages"][0]["content"]
        marks = [time.perf_counter()]
        scan_request(body)
        marks.append(time.perf_counter())
        pii.find(text)
        marks.append(time.perf_counter())
        detector.scan([("messages[0].content", text)])
        marks.append(time.perf_counter())
        for index, name in enumerate(("secrets", "pii", "injection")):
            timings[name].append((marks[index + 1] - marks[index]) * 1000)
        timings["all"].append((marks[-1] - marks[0]) * 1000)
    found = []
    for name, values in timings.items():
        values.sort()
        found.append((name, values[len(values) // 2], values[int(0.99 * len(values))]))
    return found


if __name__ == "__main__":
    raise SystemExit(main())
