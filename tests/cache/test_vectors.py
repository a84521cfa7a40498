"""The semantic tier's vector table: nearest first, partitions never mix, removal keeps rows
packed, and a large partition's approximate index finds what the exact search does."""

from __future__ import annotations

import numpy as np
import pytest

from stackyard.cache import vectors
from stackyard.cache.vectors import VectorTable
from tests.conftest import need_module


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_nearest_first_within_the_partition_only() -> None:
    table = VectorTable()
    table.add("p", "a", unit(1, 0, 0), "question a")
    table.add("p", "b", unit(1, 1, 0), "question b")
    table.add("other", "c", unit(1, 0, 0), "question c")
    found = table.nearest("p", unit(1, 0.1, 0), 5)
    assert [c.key for c in found] == ["a", "b"]
    assert found[0].question == "question a"
    assert found[0].similarity > found[1].similarity
    assert [c.key for c in table.nearest("other", unit(0, 1, 0), 5)] == ["c"]
    assert table.nearest("nobody", unit(1, 0, 0), 5) == []


def test_top_k_of_many_and_growth() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(100, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    table = VectorTable()
    for i, v in enumerate(vectors):
        table.add("p", str(i), v, f"q{i}")
    query = vectors[42]
    expected = list(np.argsort(-(vectors @ query))[:3])
    assert [c.key for c in table.nearest("p", query, 3)] == [str(i) for i in expected]
    assert len(table) == 100


def test_removal_replaces_the_row_with_the_last() -> None:
    table = VectorTable()
    for i, v in enumerate([unit(1, 0), unit(0, 1), unit(1, 1)]):
        table.add("p", str(i), v, f"q{i}")
    assert table.remove("0")
    assert not table.remove("0")
    assert [c.key for c in table.nearest("p", unit(1, 0), 5)] == ["2", "1"]
    assert table.remove("1")
    assert table.remove("2")
    assert table.nearest("p", unit(1, 0), 5) == []
    assert len(table) == 0


def test_a_key_added_again_moves_or_updates() -> None:
    table = VectorTable()
    table.add("p", "a", unit(1, 0), "old")
    table.add("p", "a", unit(0, 1), "new")
    [only] = table.nearest("p", unit(0, 1), 5)
    assert (only.question, round(only.similarity, 4)) == ("new", 1.0)
    table.add("q", "a", unit(0, 1), "moved")
    assert table.nearest("p", unit(0, 1), 5) == []
    assert table.nearest("q", unit(0, 1), 5)[0].question == "moved"


def test_a_large_partition_searches_an_index_and_rescores_exactly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    need_module("usearch")
    monkeypatch.setattr(vectors, "ANN_ROWS", 200)
    rng = np.random.default_rng(1)
    # Clustered, as questions are: 60 topics, 10 rows about each.
    centres = rng.normal(size=(60, 16)).astype(np.float32)
    rows = np.repeat(centres, 10, axis=0) + 0.3 * rng.normal(size=(600, 16)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    table = VectorTable()
    for i, v in enumerate(rows):
        table.add("p", str(i), v, f"q{i}")
    partition = table._partitions["p"]
    assert partition.ann is not None
    assert len(partition.ann) == 600
    for i in range(0, 600, 7):
        query = rows[i]
        exact = [str(j) for j in np.argsort(-(rows @ query))[:2]]
        found = table.nearest("p", query, 2)
        assert [c.key for c in found] == exact
        assert found[0].similarity == pytest.approx(1.0, abs=1e-5)  # exact, not the index's
    # Removed and re-added keys: the index follows.
    for i in range(300):
        table.remove(str(i))
    assert len(partition.ann) == 300
    table.add("p", "400", rows[0], "moved")
    assert len(partition.ann) == 300
    [first, _] = table.nearest("p", rows[0], 2)
    assert (first.key, first.question) == ("400", "moved")
    assert all(int(c.key) >= 300 for c in table.nearest("p", rows[5], 2))


def test_the_index_is_built_a_little_with_each_new_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    need_module("usearch")
    monkeypatch.setattr(vectors, "ANN_ROWS", 100)
    rng = np.random.default_rng(2)
    rows = rng.normal(size=(130, 8)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    table = VectorTable()
    for i, v in enumerate(rows[:100]):
        table.add("p", str(i), v, f"q{i}")
    partition = table._partitions["p"]
    step = vectors.CATCH_UP + 1
    assert len(partition.ann) == step  # never all 100 rows in one add
    table.remove("0")  # pending or indexed, a removed row leaves both
    table.remove("99")
    assert "0" not in partition.labels
    assert "99" not in partition.pending
    for i, v in enumerate(rows[100:], 100):
        table.add("p", str(i), v, f"q{i}")
        if partition.pending:  # until it has caught up, the search is exact
            assert [c.key for c in table.nearest("p", v, 1)] == [str(i)]
    assert not partition.pending
    assert len(partition.ann) == 128
    assert set(partition.labels) == set(partition.rows)


def test_without_usearch_the_search_stays_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectors, "ANN_ROWS", 10)
    monkeypatch.setattr(vectors, "_usearch", lambda: None)
    table = VectorTable()
    for i in range(30):
        table.add("p", str(i), unit(1, i), f"q{i}")
    assert table._partitions["p"].ann is None
    assert [c.key for c in table.nearest("p", unit(1, 29), 1)] == ["29"]
