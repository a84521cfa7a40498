"""``stackyard rag eval``: the retrieval metrics against hand-computed values, the files it
reads (BEIR's formats) with per-line errors, and a whole evaluation from the terminal with
answers and a judge whose replies do not parse (faithfulness is then "undetermined", never
NaN)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from stackyard.rag.evaluate import (
    EvalFileError,
    best_f1,
    exact_match,
    load_answers,
    load_qrels,
    load_queries,
    ndcg,
    recall,
    reciprocal_rank,
)
from tests.fakes.openai_upstream import FakeOpenAI
from tests.rag.conftest import cli_config, rag_command


def test_ndcg_recall_and_mrr_by_hand() -> None:
    relevance = {"a": 1, "c": 1}
    ranked = ["b", "a", "d", "c"]
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 + 1 / math.log2(3)
    assert ndcg(ranked, relevance, 10) == pytest.approx(dcg / ideal)
    assert ndcg(ranked, relevance, 2) == pytest.approx((1 / math.log2(3)) / ideal)
    assert ndcg(["a", "c"], relevance, 10) == pytest.approx(1.0)
    assert ndcg(ranked, {}, 10) == 0.0
    assert recall(ranked, relevance, 2) == 0.5
    assert recall(ranked, relevance, 4) == 1.0
    assert reciprocal_rank(ranked, relevance, 10) == 0.5
    assert reciprocal_rank(ranked, relevance, 1) == 0.0
    graded = {"a": 2, "b": 1}
    assert ndcg(["b", "a"], graded, 10) < ndcg(["a", "b"], graded, 10) == pytest.approx(1.0)


def test_answers_are_scored_as_squad_scores_them() -> None:
    assert exact_match("The Eiffel Tower.", ["eiffel tower", "the tower"]) == 1.0
    assert exact_match("It is the Eiffel Tower", ["Eiffel Tower"]) == 0.0
    assert best_f1("It is the Eiffel Tower", ["Eiffel Tower", "Paris"]) == pytest.approx(2 / 3)


def test_the_files_in_beir_format_and_their_mistakes(tmp_path: Path) -> None:
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"_id": "1", "text": "first"}\n\n{"id": 2, "query": "second"}\n')
    assert load_queries(queries) == {"1": "first", "2": "second"}
    qrels = tmp_path / "test.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\n1\tdoc-a\t1\n1\tdoc-b\t2\n2\tdoc-c\t0\n")
    assert load_qrels(qrels) == {"1": {"doc-a": 1, "doc-b": 2}, "2": {"doc-c": 0}}
    as_jsonl = tmp_path / "qrels.jsonl"
    as_jsonl.write_text('{"query_id": "1", "doc_id": "doc-a"}\n')
    assert load_qrels(as_jsonl) == {"1": {"doc-a": 1}}
    answers = tmp_path / "answers.jsonl"
    answers.write_text('{"id": "1", "answer": "yes"}\n{"id": "2", "answers": ["a", "b"]}\n')
    assert load_answers(answers) == {"1": ["yes"], "2": ["a", "b"]}
    for path, text, message in [
        (queries, '{"_id": "1"}\n', "queries.jsonl line 1: no 'text' or 'query'"),
        (queries, '{"text": "x"}\n', "queries.jsonl line 1: no '_id' or 'id'"),
        (queries, "[1]\n{oops\n", "queries.jsonl line 1: not an object"),
        (qrels, "query-id\tcorpus-id\tscore\n1\tdoc\n", "test.tsv line 2: want query-id"),
        (answers, '{"id": "1", "answers": []}\n', "answers.jsonl line 1: no 'answers'"),
    ]:
        path.write_text(text)
        loader = {queries: load_queries, qrels: load_qrels, answers: load_answers}[path]
        with pytest.raises(EvalFileError, match=message):
            loader(path)


def test_an_evaluation_from_the_terminal(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    model = {
        "name": "chat",
        "provider": "openai-compatible",
        "api_base": fake_openai.base_url("rag-eval-chat"),
    }
    run = rag_command(cli_config(tmp_path, fake_openai, "rag-eval-embed", model))
    folder = tmp_path / "facts"
    folder.mkdir()
    (folder / "tower.txt").write_text("The Eiffel Tower stands in Paris.")
    (folder / "penguins.txt").write_text("Emperor penguins breed on Antarctic sea ice.")
    (folder / "bees.txt").write_text("Bees make honey from nectar.")
    (tmp_path / "queries.jsonl").write_text(
        '{"_id": "q1", "text": "Where does the Eiffel Tower stand?"}\n'
        '{"_id": "q2", "text": "Where do emperor penguins breed?"}\n'
        '{"_id": "q3", "text": "Not judged and not answered"}\n'
    )
    (tmp_path / "qrels.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\ttower\t1\nq2\tpenguins\t1\n"
    )
    (tmp_path / "answers.jsonl").write_text('{"_id": "q1", "answers": ["Paris"]}\n')
    run("create", "facts", "--source", str(folder))
    run("sync", "facts")
    files = ["--queries", str(tmp_path / "queries.jsonl"), "--qrels", str(tmp_path / "qrels.tsv")]
    out = run("eval", "facts", *files, "--mode", "keyword", "-k", "3")
    assert "facts: 2 queries (2 judged, 0 answered)" in out
    assert "ndcg@3       1.0000" in out  # keyword search ranks each fact first
    assert "mrr@3        1.0000" in out
    report = tmp_path / "report.json"
    out = run(
        "eval",
        "facts",
        *files,
        "--answers",
        str(tmp_path / "answers.jsonl"),
        "--model",
        "chat",
        "--judge",
        "chat",
        "--mode",
        "keyword",
        "--json",
        str(report),
    )
    assert "2 judged, 1 answered" in out
    # The fake upstream echoes the question: no exact match, some words shared.
    assert "exact_match  0.0000" in out
    assert "faithful: 0 yes, 0 no, 1 undetermined" in out
    saved = json.loads(report.read_text())
    assert saved["metrics"]["faithfulness"] is None  # nothing determined: None, not NaN
    (answered,) = [i for i in saved["items"] if i["answer"] is not None]
    assert answered["id"] == "q1"
    assert answered["faithful"] == "undetermined"
    assert "Where does the Eiffel Tower stand?" in answered["answer"]
    chat = fake_openai.requests_for("rag-eval-chat")
    assert "Paris" in chat[0].body["messages"][0]["content"]  # the passages reached the model
    assert "--answers needs --model" in run(
        "eval",
        "facts",
        "--queries",
        str(tmp_path / "queries.jsonl"),
        "--answers",
        str(tmp_path / "answers.jsonl"),
        code=2,
    )
