from __future__ import annotations

import pytest

from stackyard.rag.retrieve import fuse
from stackyard.rag.stores.base import Hit


def hits(*ids: str) -> list[Hit]:
    return [Hit(i, f"src-{i}", f"text {i}", 0, 1.0) for i in ids]


def test_reciprocal_rank_fusion() -> None:
    fused = fuse(hits("a", "b", "c"), hits("c", "d"), k=4, rrf_k=60, weights=(1.0, 1.0))
    assert [r.hit.id for r in fused] == ["c", "a", "b", "d"]
    c = fused[0]
    assert c.score == pytest.approx(1 / 63 + 1 / 61)
    assert (c.dense_rank, c.keyword_rank) == (3, 1)
    assert fused[1].keyword_rank is None


def test_weights_and_k() -> None:
    fused = fuse(hits("a"), hits("b"), k=1, rrf_k=60, weights=(1.0, 2.0))
    assert [r.hit.id for r in fused] == ["b"]
    assert fuse([], [], k=3, rrf_k=60, weights=(1.0, 1.0)) == []
