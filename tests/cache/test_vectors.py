"""The semantic tier's vector table: nearest first, partitions never mix, removal keeps rows
packed."""

from __future__ import annotations

import numpy as np

from stackyard.cache.vectors import VectorTable


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
