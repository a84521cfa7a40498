from __future__ import annotations

from stackyard.rag.bm25 import BM25Index, analyse


def test_analysis_stems_and_drops_stop_words() -> None:
    assert analyse("The cats were RUNNING to the houses") == ["cat", "were", "run", "hous"]
    assert analyse("Ada's engine doesn't stop") == ["ada", "engin", "doesnt", "stop"]


def test_rare_terms_weigh_more() -> None:
    index = BM25Index()
    index.add(1, "common words and a rare zebra")
    index.add(2, "common words only")
    index.add(3, "common words again")
    ranked = index.search("common zebra", 3)
    assert ranked[0][0] == 1
    assert ranked[1][1] == ranked[2][1]  # the same words: the same score
    assert ranked[0][1] > 2 * ranked[1][1]


def test_removal_forgets_the_terms() -> None:
    index = BM25Index()
    index.add(1, "alpha beta")
    index.add(2, "beta gamma")
    index.remove(1)
    assert "alpha" not in index.postings
    assert index.search("alpha beta", 5) == [(2, index.search("beta", 1)[0][1])]
    index.add(2, "delta")  # re-adding replaces
    assert "gamma" not in index.postings
    assert len(index) == 1


def test_allowed_keys_filter_the_results() -> None:
    index = BM25Index()
    for key in range(10):
        index.add(key, f"shared term {key}")
    assert {key for key, _ in index.search("shared", 10, allowed={3, 4})} == {3, 4}
