"""Datasets from JSONL and CSV, and clear errors for bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard.evals.dataset import DatasetError, load


def test_jsonl_and_csv(tmp_path: Path) -> None:
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text(
        '{"input": {"q": "capital of France?"}, "expected": "Paris", "id": "fr"}\n\n'
        '{"input": "2+2?", "expected": "4", "metadata": {"kind": "math"}}\n'
    )
    first, second = load(jsonl)
    assert (first.id, first.input, first.expected) == ("fr", {"q": "capital of France?"}, "Paris")
    assert (second.id, second.metadata) == ("3", {"kind": "math"})
    table = tmp_path / "d.csv"
    table.write_text("id,q,expected,metadata.kind\na,hello,hi,greeting\n")
    [row] = load(table)
    assert (row.id, row.input, row.expected, row.metadata) == (
        "a",
        {"q": "hello"},
        "hi",
        {"kind": "greeting"},
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("not json\n", ":1: not JSON"),
        ('{"expected": "x"}\n', "no 'input'"),
        ('{"input": 3}\n', "'input' must be"),
        ('{"input": "a", "id": 1}\n{"input": "b", "id": 1}\n', "unique"),
    ],
)
def test_bad_datasets(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(DatasetError, match=message):
        load(path)
