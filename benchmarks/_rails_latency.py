"""The input rails' time, for :mod:`benchmarks.guardrails`: every rail and all of them on
1,000-character requests (``--latency-only``, and the main run's latency row), and what the
PII tagger's public head and sentence gate add to its finds (``--gate-cost``)."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any


def percentiles(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    return values[len(values) // 2], values[min(len(values) - 1, int(0.99 * len(values)))]


def latency_only(against: Path | None, rounds: int = 2) -> list[str]:
    """The rails' latency table for the shipped classifier, and ``against``'s in turn, with
    the text read on ONNX Runtime with the classifier's layers in 8 bits (the default), on
    ONNX Runtime in full precision, and on PyTorch (the previous versions)."""
    from stackyard import onnxgraph
    from stackyard.engine.loading import load_embedder
    from stackyard.engine.sources import resolve
    from stackyard.guardrails import reading
    from stackyard.guardrails.injection import InjectionDetector
    from stackyard.guardrails.ner import EntityTagger

    embedder = load_embedder(resolve("all-minilm-l6-v2", "embeddings"), "cpu")
    tagger = EntityTagger(embedder)
    detectors = {"shipped": InjectionDetector(embedder)}
    if against is not None:
        detectors[str(against)] = InjectionDetector(embedder, against)
    # (name, ONNX Runtime?, upper layers in 8 bits?): the shipped read first
    runtimes = [("pytorch", False, False)]
    if onnxgraph.available():
        runtimes[:0] = [("onnxruntime, upper in 8 bits", True, True), ("onnxruntime", True, False)]
    lines = [
        "| round | read on | classifier | input rails on 1,000 characters | p50 (ms) | p99 (ms) |",
        "| ---: | --- | --- | --- | ---: | ---: |",
    ]
    try:
        for number in range(1, rounds + 1):
            for runtime, onnx, int8 in runtimes:
                reading.ONNX, reading.QUANTIZE_UPPER = onnx, int8
                for name, detector in detectors.items():
                    for row, p50, p99 in rails_latency(detector, tagger):
                        lines.append(
                            f"| {number} | {runtime} | {name} | {row} | {p50:.2f} | {p99:.2f} |"
                        )
            # the shipped read on text dense with names, where the PII sentence gate runs
            reading.ONNX, reading.QUANTIZE_UPPER = True, True
            dense = name_dense_texts(300)
            for row, p50, p99 in rails_latency(detector, tagger, texts=dense)[3:4]:
                lines.append(
                    f"| {number} | {runtimes[0][0]} | shipped | {row}, text dense with names "
                    f"| {p50:.2f} | {p99:.2f} |"
                )
    finally:
        reading.ONNX, reading.QUANTIZE_UPPER = True, True
    return lines


def gate_cost(data: Path, against: Path | None, runs: int = 300, rounds: int = 2) -> list[str]:
    """The tagger's finds on 1,000-character texts, the read shared (made once, outside the
    timing, as the injection rail makes it in the gateway): without the public head and the
    gate, with the shipped ones, and with ``against`` (an older gate) in their place; in turn,
    ``rounds`` times. Ordinary text: Alpaca instructions past those the tagger trained on
    (from ``data``, the shared data sets).
    Dense with names: the written questions about public subjects and private people
    (training text: this measures time, not accuracy), run together."""
    from stackyard.engine.loading import load_embedder
    from stackyard.engine.sources import resolve
    from stackyard.guardrails.ner import EntityTagger
    from stackyard.guardrails.reading import read

    embedder = load_embedder(resolve("all-minilm-l6-v2", "embeddings"), "cpu")
    taggers = {"shipped": EntityTagger(embedder)}
    if against is not None:
        taggers[str(against)] = EntityTagger(embedder, gate=against)

    alpaca = json.loads((data / "alpaca" / "alpaca_5000.json").read_text(encoding="utf-8"))
    kinds = {
        "ordinary (Alpaca)": run_together([str(r["instruction"]) for r in alpaca[4000:]], runs),
        "dense with names (written questions)": name_dense_texts(runs),
    }
    lines = [
        "| round | text | tagger | p50 (ms) | p99 (ms) | finds left out by head and gate |",
        "| ---: | --- | --- | ---: | ---: | ---: |",
    ]
    for number in range(1, rounds + 1):
        for kind, bodies in kinds.items():
            reads = [read(embedder, text) for text in bodies]
            rows = [("public_names: false", taggers["shipped"], False)]
            rows += [(name, tagger, True) for name, tagger in taggers.items()]
            for name, tagger, public in rows:
                timings, found = [], 0
                for text, reading in zip(bodies, reads, strict=True):
                    started = time.perf_counter()
                    found += len(tagger.find(text, reading=reading, public_names=public))
                    timings.append((time.perf_counter() - started) * 1000)
                if not public:
                    every = found
                p50, p99 = percentiles(timings)
                lines.append(
                    f"| {number} | {kind} | {name} | {p50:.2f} | {p99:.2f} | {every - found} |"
                )
    return lines


def name_dense_texts(runs: int) -> list[str]:
    """1,000-character texts dense with names: the written questions about public subjects
    and private people (the tagger's training text: for timing, not accuracy), run together."""
    from stackyard.guardrails.ner_training import WRITTEN

    written = [json.loads(line)["text"] for line in WRITTEN.read_text().splitlines() if line]
    return run_together(written, runs)


def run_together(pool: list[str], runs: int, size: int = 1000) -> list[str]:
    """``runs`` texts of ``size`` characters, each of pieces of ``pool`` drawn at random (seeded)
    and joined with spaces."""
    rng, texts = random.Random(0), []
    for _ in range(runs):
        text = ""
        while len(text) < size:
            text += rng.choice(pool) + " "
        texts.append(text[:size])
    return texts


def rails_latency(
    detector: Any, tagger: Any, runs: int = 300, texts: list[str] | None = None
) -> list[tuple[str, float, float]]:
    """Each input rail, and all of them, on 1,000-character user messages (``texts``, or
    words drawn from an ordinary support request's)."""
    from stackyard.guardrails import pii
    from stackyard.guardrails.secrets import scan_request

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
    if texts is None:
        texts = run_together(words, runs)
    bodies = [{"messages": [{"role": "user", "content": text}]} for text in texts]
    names = (
        "secrets",
        "PII alone (patterns and the entity tagger)",
        "injection (heuristics and classifier)",
        "all three, as the gateway runs them (the tagger reuses the injection rail's read)",
        "anchor: one sentence-transformers encode of the text (MiniLM, whole)",
    )
    timings: dict[str, list[float]] = {name: [] for name in names}
    for body in bodies:
        text = body["messages"][0]["content"]
        started = time.perf_counter()
        scan_request(body)
        secrets_done = time.perf_counter()
        pii.find(text, None, tagger.find(text))
        pii_done = time.perf_counter()
        detector.scan([("messages[0].content", text)])
        injection_done = time.perf_counter()
        timings[names[0]].append((secrets_done - started) * 1000)
        timings[names[1]].append((pii_done - secrets_done) * 1000)
        timings[names[2]].append((injection_done - pii_done) * 1000)
        started = time.perf_counter()
        scan_request(body)
        kept: dict[str, Any] = {}
        detector.scan([("messages[0].content", text)], kept)
        pii.find(text, None, tagger.find(text, None, kept.pop(text)))
        timings[names[3]].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        detector.embedder.encode([text], normalize_embeddings=True, show_progress_bar=False)
        timings[names[4]].append((time.perf_counter() - started) * 1000)
    return [(name, *percentiles(values)) for name, values in timings.items()]
