"""The semantic cache's accuracy on labelled question pairs (groundwork: the semantic tier is
not wired into the gateway yet): precision and recall of a hit decided by MiniLM's cosine
similarity alone, at the static thresholds other caches use (0.8 GPTCache, 0.9 RedisVL, 0.95
Portkey), against the same similarity with Stackyard's verifier in front
(:mod:`stackyard.cache.verifier`), on QQP (a held-out fifth of GPTCache's copy) and the MRPC
test set from ``../shared/data/``.

Run: ``make bench-cache`` (or ``python -m benchmarks.cache --pairs 4000``).
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import os
import shlex
import sys
import tarfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
STATIC = (0.8, 0.9, 0.95)


@dataclass
class Pair:
    a: str
    b: str
    same: bool


def qqp(limit: int) -> list[Pair]:
    """Every fifth pair of GPTCache's QQP copy (the held-out split; a verifier trained later
    learns from the other four fifths)."""
    path = DATA / "qqp" / "similiar_qqp_full.json.gz"
    with tarfile.open(fileobj=gzip.open(path)) as archive:
        member = archive.getmembers()[0]
        handle = archive.extractfile(member)
        assert handle is not None
        records = json.load(handle)
    held_out = [r for i, r in enumerate(records) if i % 5 == 0]
    return [Pair(r["text_a"], r["text_b"], r["label"] == 1) for r in held_out[:limit]]


def mrpc(limit: int) -> list[Pair]:
    path = DATA / "mrpc" / "msr_paraphrase_test.txt"
    pairs = []
    for line in path.read_text(encoding="utf-8-sig").splitlines()[1:]:
        quality, _, _, a, b = line.split("\t")
        pairs.append(Pair(a, b, quality == "1"))
    return pairs[:limit]


def similarities(pairs: list[Pair]) -> list[float]:
    from stackyard.engine.loading import load_embedder
    from stackyard.engine.sources import resolve

    model = load_embedder(resolve("all-minilm-l6-v2", "embeddings"), "cpu")
    first = model.encode([p.a for p in pairs], batch_size=64, normalize_embeddings=True)
    second = model.encode([p.b for p in pairs], batch_size=64, normalize_embeddings=True)
    return [float((x * y).sum()) for x, y in zip(first, second, strict=True)]


def precision_recall(
    pairs: list[Pair], scores: list[float], threshold: float, verified: list[bool] | None
) -> tuple[float, float, int]:
    hits = [s >= threshold and (verified is None or verified[i]) for i, s in enumerate(scores)]
    true_hits = sum(h and p.same for h, p in zip(hits, pairs, strict=True))
    positives = sum(p.same for p in pairs)
    predicted = sum(hits)
    precision = true_hits / predicted if predicted else 1.0
    return precision, true_hits / positives if positives else 0.0, predicted


def best_recall(
    pairs: list[Pair], scores: list[float], verified: list[bool] | None, target: float
) -> tuple[float, float, float]:
    """The lowest threshold (in steps of 0.005) whose precision is at least ``target``:
    (threshold, precision, recall)."""
    best = (1.0, 1.0, 0.0)
    for step in range(100, 201):
        threshold = step / 200
        precision, recall, predicted = precision_recall(pairs, scores, threshold, verified)
        if predicted and precision >= target and recall > best[2]:
            best = (threshold, precision, recall)
    return best


@dataclass
class Evaluation:
    pairs: int
    positives: int
    #: (decision, threshold, precision, recall)
    static: list[tuple[str, float, float, float]]
    best_cosine: tuple[float, float, float]
    best_verified: tuple[float, float, float]
    rejected: int
    rejected_paraphrases: int
    embed_s: float


def evaluate(name: str, pairs: list[Pair]) -> Evaluation:
    from stackyard.cache.verifier import same_question

    started = time.perf_counter()
    scores = similarities(pairs)
    embed_s = time.perf_counter() - started
    verified = [same_question(p.a, p.b) is None for p in pairs]
    rows = []
    for threshold in STATIC:
        for label, check in (("cosine", None), ("cosine + verifier", verified)):
            precision, recall, _ = precision_recall(pairs, scores, threshold, check)
            rows.append((label, threshold, precision, recall))
    print(f"{name}: {len(pairs)} pairs embedded in {embed_s:.1f} s", flush=True)
    return Evaluation(
        pairs=len(pairs),
        positives=sum(p.same for p in pairs),
        static=rows,
        best_cosine=best_recall(pairs, scores, None, 0.95),
        best_verified=best_recall(pairs, scores, verified, 0.95),
        rejected=sum(not v for v in verified),
        rejected_paraphrases=sum(not v and p.same for v, p in zip(verified, pairs, strict=True)),
        embed_s=embed_s,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=4000, help="QQP pairs (held out)")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not DATA.exists():
        print(f"the data sets are not here: {DATA}", file=sys.stderr)
        return 2
    results = {"qqp": evaluate("qqp", qqp(args.pairs)), "mrpc": evaluate("mrpc", mrpc(10_000))}
    command = "python -m benchmarks.cache " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    print(f"\n{datetime.date.today().isoformat()}; command: `{command.strip()}`\n")
    for name, result in results.items():
        print(f"{name}: {result.pairs} pairs, {result.positives} paraphrases")
        print("| decision | threshold | precision | recall |")
        print("| --- | ---: | ---: | ---: |")
        for label, threshold, precision, recall in result.static:
            print(f"| {label} | {threshold} | {precision:.3f} | {recall:.3f} |")
        for best, label in ((result.best_cosine, "cosine"), (result.best_verified, "+ verifier")):
            threshold, precision, recall = best
            print(
                f"best recall at precision >= 0.95, {label}: recall {recall:.3f} "
                f"(threshold {threshold}, precision {precision:.3f})"
            )
        print(
            f"the verifier rejected {result.rejected} pairs, {result.rejected_paraphrases} of "
            "them paraphrases\n"
        )
    if args.json:
        args.json.write_text(json.dumps({k: asdict(v) for k, v in results.items()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
