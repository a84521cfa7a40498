"""Guardrails, measured: PII detection against Presidio, the injection rail, and latency.

PII: the Presidio synthetic sentences (``pii/synth_dataset_v2.json``), the 30% of templates
the entity tagger never saw in training (``stackyard.guardrails.ner_training.split``). Scored
as redaction: each word (a run of letters or digits) inside a labelled entity of any type but
TITLE (Mr., job titles) is PII, and is caught if any find covers it, whatever type the find
says. Recall, precision and F2 over words; per type; and, per entity, the share of
checksum-valid cards, IBANs, SSNs, emails and IPs found whole. Ordinary prompts (Alpaca
instructions the tagger never saw, XSTest's safe prompts): the share with anything redacted.
Presidio runs beside it in its own venv (:mod:`benchmarks._presidio`).

Injection: the llm-warden test split (141 jailbreaks, 259 benign prompts; the classifier was
trained on the training split only) with XSTest's 250 safe prompts as extra negatives (prompts
that sound dangerous and are not: "How do I kill a Python process?"), from ``../shared/data/``.
Rows: the heuristics alone, the classifier alone, and both (the rail as shipped), at the
shipped threshold; and the true-positive rate the scores allow at 1% false positives.

Latency: PII detection on 500 characters of held-out sentences; every input rail (secrets, PII,
injection) on a 1,000-character request; p50 and p99.

PII out of distribution (``--ood N``): the share of N SQuAD questions and N Alpaca
instructions changed by redaction, beside the recall on Presidio's held-out templates
(:mod:`benchmarks._pii_ood`), and the same for Presidio in the same run (``--skip-presidio``
leaves it out).

Run: ``make bench-guardrails`` (or ``python -m benchmarks.guardrails``).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import random
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._rails_latency import gate_cost, latency_only, percentiles, rails_latency

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


WORD = re.compile(r"[^\W_]+")
NOT_PII = {"TITLE"}
WHOLE = ("CREDIT_CARD", "IBAN_CODE", "US_SSN", "EMAIL_ADDRESS", "IP_ADDRESS")


def checksum_valid(kind: str, value: str) -> bool:
    from stackyard.guardrails import pii

    if kind == "CREDIT_CARD":
        return pii.luhn(re.sub(r"\D", "", value))
    if kind == "IBAN_CODE":
        return pii.iban_ok(value)
    if kind == "US_SSN":
        return bool(pii.SSN.fullmatch(value))
    if kind == "IP_ADDRESS":
        return pii.ip_ok(value)
    return kind == "EMAIL_ADDRESS"


def score_pii(records: list[dict[str, Any]], finds: list[list[tuple[int, int]]]) -> dict[str, Any]:
    """Word-level recall, precision and F2 of ``finds`` (spans per record), recall per type,
    and the share of checksum-valid entities found whole."""
    tp = fp = fn = 0
    by_type: dict[str, list[int]] = {}
    whole = [0, 0]
    for record, spans in zip(records, finds, strict=True):
        text = record["full_text"]
        gold = [g for g in record["spans"] if g["entity_type"] not in NOT_PII]
        for match in WORD.finditer(text):
            a, b = match.span()
            types = [
                g["entity_type"] for g in gold if a < g["end_position"] and g["start_position"] < b
            ]
            caught = any(a < end and start < b for start, end in spans)
            if types:
                tp += caught
                fn += not caught
                counts = by_type.setdefault(types[0], [0, 0])
                counts[0] += caught
                counts[1] += 1
            else:
                fp += caught
        for g in gold:
            if g["entity_type"] in WHOLE and checksum_valid(g["entity_type"], g["entity_value"]):
                words = [
                    m.span() for m in WORD.finditer(text, g["start_position"], g["end_position"])
                ]
                whole[1] += 1
                whole[0] += all(any(a < e and s < b for s, e in spans) for a, b in words)
    recall = tp / max(1, tp + fn)
    precision = tp / max(1, tp + fp)
    f2 = 5 * precision * recall / max(1e-9, 4 * precision + recall)
    return {
        "recall": recall,
        "precision": precision,
        "f2": f2,
        "by_type": {k: v[0] / v[1] for k, v in sorted(by_type.items())},
        "words": {k: v[1] for k, v in sorted(by_type.items())},
        "checksum_valid_whole": whole[0] / max(1, whole[1]),
        "checksum_valid_entities": whole[1],
    }


def pii_section(embedder: Any, skip_presidio: bool) -> tuple[list[str], dict[str, Any]]:
    """The PII table against Presidio (see the module's docstring)."""
    from stackyard.guardrails import pii
    from stackyard.guardrails.ner import EntityTagger
    from stackyard.guardrails.ner_training import load, ordinary, split

    training, test = split(load(DATA))
    tagger = EntityTagger(embedder)
    with (DATA / "xstest" / "xstest_prompts.csv").open(newline="") as handle:
        safe = [r["prompt"] for r in csv.DictReader(handle) if r["label"] == "safe"]
    plain = ordinary(DATA, 4000, 4500) + safe
    texts = [r["full_text"] for r in test]
    rng = random.Random(0)
    latency_texts = []
    for _ in range(300):
        text = ""
        while len(text) < 500:
            text += rng.choice(texts) + " "
        latency_texts.append(text[:500])

    def ours(text: str) -> list[pii.Found]:
        return pii.find(text, None, tagger.find(text))

    for text in latency_texts[:20]:  # warm up
        ours(text)
    timings = []
    for text in latency_texts:
        started = time.perf_counter()
        ours(text)
        timings.append((time.perf_counter() - started) * 1000)
    results: dict[str, Any] = {
        "stackyard": {
            **score_pii(test, [[(f.start, f.end) for f in ours(t)] for t in texts]),
            "plain_flagged": sum(bool(ours(t)) for t in plain) / len(plain),
            "ms": percentiles(timings),
        }
    }
    results["stackyard patterns only"] = {
        **score_pii(test, [[(f.start, f.end) for f in pii.find(t)] for t in texts]),
        "plain_flagged": sum(bool(pii.find(t)) for t in plain) / len(plain),
    }
    if not skip_presidio:
        from benchmarks._presidio import presidio

        anchor = presidio(training, ordinary(DATA), texts, plain, latency_texts)
        for name in ("recognisers only", "with NER trained here"):
            run = anchor[name]
            results[f"Presidio {anchor['version']}, {name}"] = {
                **score_pii(test, [[(a, b) for a, b, _ in found] for found in run["found"]]),
                "plain_flagged": sum(run["plain"]) / len(plain),
                "ms": percentiles(run["ms"][20:]),
            }
    lines = [
        f"PII: {len(test)} held-out sentences ({len({r['template_id'] for r in test})} "
        f"templates never seen in training), {len(plain)} ordinary prompts.",
        "",
        "| detector | recall | precision | F2 | checksum-valid found whole | ordinary prompts "
        "with a redaction | p50 / p99 ms, 500 chars |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        ms = f"{r['ms'][0]:.1f} / {r['ms'][1]:.1f}" if "ms" in r else "-"
        lines.append(
            f"| {name} | {r['recall']:.3f} | {r['precision']:.3f} | {r['f2']:.3f} | "
            f"{r['checksum_valid_whole']:.3f} | {r['plain_flagged']:.1%} | {ms} |"
        )
    names = list(results)
    types = list(results["stackyard"]["by_type"])
    lines += [
        "",
        "| recall by type (words) | " + " | ".join(names) + " |",
        "| --- |" + " ---: |" * len(names),
    ]
    for kind in types:
        words = results["stackyard"]["words"][kind]
        lines.append(
            f"| {kind} ({words}) | "
            + " | ".join(f"{results[n]['by_type'].get(kind, 0.0):.3f}" for n in names)
            + " |"
        )
    return lines, {**results, "tagger": tagger}


def secrets_section() -> tuple[list[str], dict[str, Any]]:
    """Planted secrets by format (caught: any finding on it; masked: gone from the masked
    text), and the share of texts without a secret that get a finding."""
    from benchmarks._secrets_corpus import FORMATS, look_alikes, planted
    from stackyard.guardrails.secrets import mask, scan_text

    cases = planted()
    by_format: dict[str, list[int]] = {name: [0, 0, 0] for name in FORMATS}
    for name, text, value in cases:
        at = text.index(value)
        found = scan_text(text, "text")
        counts = by_format[name]
        counts[0] += any(s.start < at + len(value) and at < s.end for s in found)
        counts[1] += value not in mask(text)
        counts[2] += 1
    with (DATA / "alpaca" / "alpaca_5000.json").open() as handle:
        alpaca = [f"{r['instruction']}\n{r['input']}" for r in json.load(handle)]
    with (DATA / "xstest" / "xstest_prompts.csv").open(newline="") as handle:
        xstest = [r["prompt"] for r in csv.DictReader(handle)]
    warden, _, _ = prompts()
    plain = alpaca + xstest + warden
    similar = look_alikes()
    flagged_plain = [t for t in plain if scan_text(t, "text")]
    flagged_similar = [t for t in similar if scan_text(t, "text")]
    caught = sum(c[0] for c in by_format.values()) / len(cases)
    masked = sum(c[1] for c in by_format.values()) / len(cases)
    false = (len(flagged_plain) + len(flagged_similar)) / (len(plain) + len(similar))
    lines = [
        f"Secrets: {len(cases)} planted in {len(FORMATS)} formats; {len(similar)} look-alikes "
        f"and {len(plain)} real prompts without one (Alpaca, XSTest, llm-warden).",
        "",
        f"Caught {caught:.3f}, masked whole {masked:.3f}; false positives {false:.2%} "
        f"({len(flagged_similar)} of the look-alikes, {len(flagged_plain)} of the real prompts).",
        "",
        "| format | caught | masked whole |",
        "| --- | ---: | ---: |",
        *(f"| {n} | {c[0] / c[2]:.3f} | {c[1] / c[2]:.3f} |" for n, c in by_format.items()),
    ]
    examples = [t[:80] for t in (flagged_similar + flagged_plain)[:5]]
    return lines, {
        "caught": caught,
        "masked": masked,
        "false_positive_rate": false,
        "by_format": by_format,
        "false_positive_examples": examples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--skip-presidio", action="store_true", help="Stackyard's PII rows only")
    parser.add_argument("--pii-only", action="store_true", help="the PII section only")
    parser.add_argument("--secrets-only", action="store_true", help="the secrets section only")
    parser.add_argument(
        "--linked-only",
        action="store_true",
        help="with --ood: Stackyard under pii.linked_only (places, organisations, dates, ages "
        "and groups only in texts about someone)",
    )
    parser.add_argument(
        "--ood",
        type=int,
        metavar="N",
        help="only PII out of distribution: the share of N SQuAD questions and N Alpaca "
        "instructions changed, and Presidio's held-out recall (benchmarks/_pii_ood.py)",
    )
    parser.add_argument(
        "--latency-only",
        action="store_true",
        help="only the input rails' latency: two rounds, read on ONNX Runtime (the classifier's "
        "layers in 8 bits, then in full precision) and on PyTorch in turn (and alternating "
        "with --against-weights)",
    )
    parser.add_argument(
        "--against-weights",
        type=Path,
        help="with --latency-only: another injection classifier's head (an injection.json) "
        "measured beside the shipped one",
    )
    parser.add_argument(
        "--gate-cost",
        type=Path,
        nargs="?",
        const=Path("-"),
        metavar="GATE",
        help="only what the PII tagger's public head and sentence gate cost: its finds on "
        "1,000-character texts, ordinary and dense with names, pinned as the caller pins it; "
        "GATE: another ner_subject.npz measured beside the shipped one (git show "
        "REV:src/stackyard/guardrails/ner_subject.npz > old.npz)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.gate_cost:
        against = None if str(args.gate_cost) == "-" else args.gate_cost
        print("\n".join(gate_cost(DATA, against)))
        return 0
    if args.against_weights and not args.latency_only:
        parser.error("--against-weights is for --latency-only")
    if args.latency_only:
        print("\n".join(latency_only(args.against_weights)))
        return 0
    if not DATA.exists():
        print(f"the data sets are not here: {DATA}", file=sys.stderr)
        return 2
    if args.ood:
        from benchmarks._pii_ood import ood_section

        ood_lines, ood_results = ood_section(
            DATA, args.ood, not args.skip_presidio, args.linked_only
        )
        print("\n".join(ood_lines))
        if args.json:
            args.json.write_text(json.dumps(ood_results, indent=2, default=dict))
        return 0
    secrets_lines, secrets_results = secrets_section()
    if args.secrets_only:
        print("\n".join(secrets_lines))
        print(json.dumps(secrets_results["false_positive_examples"], indent=1))
        return 0
    from stackyard.engine.loading import load_embedder
    from stackyard.engine.sources import resolve
    from stackyard.guardrails.injection import InjectionDetector, heuristics

    embedder = load_embedder(resolve("all-minilm-l6-v2", "embeddings"), "cpu")
    pii_lines, pii_results = pii_section(embedder, args.skip_presidio)
    tagger = pii_results.pop("tagger")
    if args.pii_only:
        print("\n".join(pii_lines))
        if args.json:
            args.json.write_text(json.dumps({"pii": pii_results}, indent=2))
        return 0
    texts, labels, safe = prompts()
    detector = InjectionDetector(embedder)
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
    latency = rails_latency(detector, tagger)
    command = "python -m benchmarks.guardrails " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    lines = [
        f"{datetime.date.today().isoformat()}; command: `{command.strip()}`",
        "",
        *pii_lines,
        "",
        *secrets_lines,
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
        args.json.write_text(
            json.dumps(
                {
                    "pii": pii_results,
                    "secrets": secrets_results,
                    "injection": rows,
                    "latency": latency,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
