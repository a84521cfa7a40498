"""Evaluating a collection: ``stackyard rag eval``.

**Retrieval**, against relevance judgements (BEIR's ``qrels`` TSV, or JSONL): nDCG@k, recall@k
and MRR@k over documents (a document's chunks count once, at its best rank). A hit's document
is matched by its source id, its file name without the extension, or its row id (the part
after ``#`` of a CSV or JSONL row).

**Answers**, when gold answers are given: the collection answers each query through a chat
model exactly as a RAG chat request would, scored by exact match and token F1 (SQuAD's
normalisation, best over the gold answers). A judge model can also say whether each answer
is faithful to its passages: ``yes``, ``no`` or ``undetermined`` when its reply does not
parse; the faithfulness rate is over the determined ones, never NaN.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from stackyard.auth.principal import MASTER
from stackyard.evals.scorers.text import squad_words, token_f1
from stackyard.rag.augment import retrieve
from stackyard.rag.collections import Collection, RagError
from stackyard.rag.models import Body
from stackyard.rag.retrieve import QuerySpec, Result
from stackyard.rag.service import RAG

Verdict = Literal["yes", "no", "undetermined"]
JUDGE = (
    "Passages:\n{passages}\n\nAnswer:\n{answer}\n\nIs every claim in the answer supported by "
    "the passages? Reply with one word: yes or no."
)


# -- metrics ---------------------------------------------------------------------------------


def ndcg(ranked: list[str], relevance: dict[str, int], k: int) -> float:
    """Normalised discounted cumulative gain at ``k`` (graded: a document's gain is its
    relevance)."""
    dcg = sum(relevance.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    best = sorted((r for r in relevance.values() if r > 0), reverse=True)[:k]
    ideal = sum(r / math.log2(i + 2) for i, r in enumerate(best))
    return dcg / ideal if ideal else 0.0


def recall(ranked: list[str], relevance: dict[str, int], k: int) -> float:
    relevant = {d for d, r in relevance.items() if r > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def reciprocal_rank(ranked: list[str], relevance: dict[str, int], k: int) -> float:
    for i, document in enumerate(ranked[:k], start=1):
        if relevance.get(document, 0) > 0:
            return 1.0 / i
    return 0.0


def exact_match(answer: str, gold: list[str]) -> float:
    words = squad_words(answer)
    return float(any(words == squad_words(g) for g in gold))


def best_f1(answer: str, gold: list[str]) -> float:
    return max((token_f1(answer, g) for g in gold), default=0.0)


# -- files -----------------------------------------------------------------------------------


class EvalFileError(ValueError):
    pass


def _jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise EvalFileError(f"{path.name} line {number}: not JSON ({exc})") from None
        if not isinstance(row, dict):
            raise EvalFileError(f"{path.name} line {number}: not an object")
        rows.append(row)
    return rows


def _id(row: dict[str, Any], path: Path, number: int) -> str:
    key = row.get("_id", row.get("id", row.get("query_id")))
    if key is None:
        raise EvalFileError(f"{path.name} line {number}: no '_id' or 'id'")
    return str(key)


def load_queries(path: Path) -> dict[str, str]:
    """JSONL: ``{"_id" or "id", "text" or "query"}`` per line (BEIR's queries.jsonl)."""
    out = {}
    for number, row in enumerate(_jsonl(path), start=1):
        text = row.get("text", row.get("query"))
        if not isinstance(text, str) or not text.strip():
            raise EvalFileError(f"{path.name} line {number}: no 'text' or 'query'")
        out[_id(row, path, number)] = text
    return out


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """BEIR's TSV (``query-id``, ``corpus-id``, ``score``, with a header), or JSONL with
    ``query_id``, ``doc_id`` and ``score`` (default 1)."""
    out: dict[str, dict[str, int]] = {}
    if path.suffix.lower() in (".jsonl", ".json"):
        for number, row in enumerate(_jsonl(path), start=1):
            doc = row.get("doc_id", row.get("corpus_id"))
            if doc is None:
                raise EvalFileError(f"{path.name} line {number}: no 'doc_id'")
            score = row.get("score", 1)
            out.setdefault(_id(row, path, number), {})[str(doc)] = int(score)
        return out
    with path.open(newline="") as handle:
        for number, cells in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if number == 1 and cells and not cells[-1].strip().lstrip("-").isdigit():
                continue  # the header
            if len(cells) < 3 or not cells[2].strip().lstrip("-").isdigit():
                raise EvalFileError(f"{path.name} line {number}: want query-id, corpus-id, score")
            out.setdefault(cells[0], {})[cells[1]] = int(cells[2])
    return out


def load_answers(path: Path) -> dict[str, list[str]]:
    """JSONL: ``{"_id" or "id", "answers": [...]}`` or ``{"id", "answer": "..."}``."""
    out = {}
    for number, row in enumerate(_jsonl(path), start=1):
        gold = row.get("answers", row.get("answer"))
        gold = [gold] if isinstance(gold, str) else gold
        if not isinstance(gold, list) or not gold or not all(isinstance(g, str) for g in gold):
            raise EvalFileError(f"{path.name} line {number}: no 'answers' (strings)")
        out[_id(row, path, number)] = gold
    return out


# -- running ---------------------------------------------------------------------------------


def document_keys(result: Result) -> list[str]:
    """The names a hit's document may have in a qrels file."""
    source = result.hit.source_id
    name = source.rsplit("/", 1)[-1]
    keys = [source, name, name.rsplit(".", 1)[0]]
    if "#" in source:
        keys.append(source.split("#", 1)[1])
    return keys


def ranked_documents(results: list[Result], judged: set[str]) -> list[str]:
    """Documents in rank order, each once, named as the qrels name them when they can be."""
    out: list[str] = []
    for result in results:
        keys = document_keys(result)
        name = next((k for k in keys if k in judged), keys[0])
        if name not in out:
            out.append(name)
    return out


@dataclass
class QueryScore:
    id: str
    documents: list[str]
    ndcg: float | None = None
    recall: float | None = None
    reciprocal_rank: float | None = None
    answer: str | None = None
    exact_match: float | None = None
    f1: float | None = None
    faithful: Verdict | None = None


@dataclass
class Evaluation:
    collection: str
    k: int
    team_id: str | None = None  # the collection's team (None: the master key's own)
    queries: int = 0
    judged: int = 0  # queries with relevance judgements
    answered: int = 0  # queries with gold answers
    metrics: dict[str, float | None] = field(default_factory=dict)
    faithfulness: dict[str, int] = field(default_factory=dict)
    items: list[QueryScore] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return asdict(self)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


async def evaluate(
    rag: RAG,
    collection: Collection,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    *,
    k: int = 10,
    spec: dict[str, Any] | None = None,
    answers: dict[str, list[str]] | None = None,
    model: str | None = None,
    passages: int = 5,
    judge: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Score the collection on ``queries`` (``spec``: the query's other fields, such as
    ``mode`` or ``rerank``)."""
    if answers and model is None:
        raise RagError(400, "gold answers need a model to answer with", code="invalid_eval")
    report = Evaluation(collection.name, k, collection.team_id)
    judged = {doc for relevance in qrels.values() for doc in relevance}
    for done, (key, text) in enumerate(queries.items(), start=1):
        query = QuerySpec.model_validate({**(spec or {}), "query": text, "top_k": 3 * k})
        documents = ranked_documents(await rag.query(collection, query), judged)[:k]
        item = QueryScore(key, documents)
        relevance = qrels.get(key)
        if relevance:
            item.ndcg = ndcg(documents, relevance, k)
            item.recall = recall(documents, relevance, k)
            item.reciprocal_rank = reciprocal_rank(documents, relevance, k)
        gold = (answers or {}).get(key)
        if gold and model is not None:
            item.answer, context = await _answer(rag, collection, text, model, passages, spec)
            item.exact_match = exact_match(item.answer, gold)
            item.f1 = best_f1(item.answer, gold)
            if judge is not None:
                item.faithful = await _judge(rag, judge, context, item.answer)
        report.items.append(item)
        if progress is not None:
            progress(done, len(queries))
    scored = [i for i in report.items if i.ndcg is not None]
    answered = [i for i in report.items if i.f1 is not None]
    report.queries, report.judged, report.answered = len(report.items), len(scored), len(answered)
    report.metrics = {
        f"ndcg@{k}": _mean([i.ndcg for i in scored if i.ndcg is not None]),
        f"recall@{k}": _mean([i.recall for i in scored if i.recall is not None]),
        f"mrr@{k}": _mean([i.reciprocal_rank for i in scored if i.reciprocal_rank is not None]),
        "exact_match": _mean([i.exact_match for i in answered if i.exact_match is not None]),
        "f1": _mean([i.f1 for i in answered if i.f1 is not None]),
    }
    if judge is not None:
        verdicts = [i.faithful for i in answered]
        report.faithfulness = {v: verdicts.count(v) for v in ("yes", "no", "undetermined")}
        determined = report.faithfulness["yes"] + report.faithfulness["no"]
        report.metrics["faithfulness"] = (
            report.faithfulness["yes"] / determined if determined else None
        )
    return report


async def _chat(rag: RAG, body: Body) -> str:
    completion = await rag.models.chat(body)
    choice = (completion.get("choices") or [{}])[0]
    return str((choice.get("message") or {}).get("content") or "")


async def _answer(
    rag: RAG, collection: Collection, question: str, model: str, passages: int, spec: Any
) -> tuple[str, str]:
    """The answer a RAG chat request gets, and the passages it was given."""
    raw: dict[str, Any] = {
        "collections": [collection.name],
        "team_id": collection.team_id,  # its own namespace: names repeat across teams
        "top_k": passages,
    }
    for name in ("mode", "rerank", "filter"):
        if spec and spec.get(name) is not None:
            raw[name] = spec[name]
    given, retrieval = await retrieve(rag, question, raw, MASTER)
    body = {
        "model": model,
        # The passages' messages before the question: where the chat door puts them.
        "messages": [*given, {"role": "user", "content": question}],
        "temperature": 0,
        "max_tokens": 128,
    }
    context = "\n\n".join(f"[{c['index']}] {c['text']}" for c in retrieval.citations)
    return await _chat(rag, body), context


async def _judge(rag: RAG, model: str, context: str, answer: str) -> Verdict:
    reply = await _chat(
        rag,
        {
            "model": model,
            "messages": [
                {"role": "user", "content": JUDGE.format(passages=context, answer=answer)}
            ],
            "temperature": 0,
            "max_tokens": 5,
        },
    )
    first = squad_words(reply)[:1]
    if first == ["yes"]:
        return "yes"
    if first == ["no"]:
        return "no"
    return "undetermined"
