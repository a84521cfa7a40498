"""Both vector stores pass the same tests: documents replaced atomically, deletes, dense and
keyword search, filters that still return k hits, a crash mid-update."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stackyard.rag.stores.base import DocState, NewChunk, StoreError, VectorStore
from stackyard.rag.stores.embedded import EmbeddedStore
from tests.rag.conftest import HashingEmbedder

EMBED = HashingEmbedder()
INDEX = "docs@hashing:r1"


@pytest.fixture
def store(any_store: VectorStore) -> VectorStore:
    any_store.create_index(INDEX, EMBED.dimension)
    return any_store


def chunks(*texts: str, **metadata: object) -> list[NewChunk]:
    return [
        NewChunk(t, i, 0, len(t), f"d{hash(t)}", EMBED.vector(t), dict(metadata))
        for i, t in enumerate(texts)
    ]


def write(store: VectorStore, source: str, *texts: str, **metadata: object) -> None:
    store.write_document(INDEX, DocState(source, f"h-{texts}"), chunks(*texts, **metadata), {})


def sources(hits: list) -> list[str]:  # type: ignore[type-arg]
    return [h.source_id for h in hits]


def test_a_document_is_replaced_whole(store: VectorStore) -> None:
    write(store, "a", "red apples grow on trees", "apples are sweet")
    write(store, "b", "bananas are yellow")
    write(store, "a", "green pears grow on trees")
    assert store.count(INDEX) == (2, 2)
    hits = store.keyword(INDEX, "apples", 5, None)
    assert hits == []  # the old version is gone
    hits = store.dense(INDEX, EMBED.vector("green pears"), 1, None)
    assert hits[0].source_id == "a"
    assert hits[0].text == "green pears grow on trees"
    assert store.documents(INDEX)["a"].digest == "h-('green pears grow on trees',)"


def test_deleted_documents_are_not_found(store: VectorStore) -> None:
    write(store, "a", "red apples")
    write(store, "b", "red bananas")
    assert store.delete_documents(INDEX, ["a", "missing"]) == 1
    assert sources(store.dense(INDEX, EMBED.vector("red apples"), 5, None)) == ["b"]
    assert sources(store.keyword(INDEX, "red", 5, None)) == ["b"]
    assert set(store.documents(INDEX)) == {"b"}


def test_keyword_search_ranks_by_the_terms(store: VectorStore) -> None:
    write(store, "cats", "cats purr and cats sleep")
    write(store, "dogs", "dogs bark at cats")
    write(store, "fish", "fish swim")
    hits = store.keyword(INDEX, "sleeping cats", 5, None)
    assert sources(hits)[:2] == ["cats", "dogs"]
    assert "fish" not in sources(hits)
    assert hits[0].score > hits[1].score


def test_a_selective_filter_still_returns_k_hits(store: VectorStore) -> None:
    # 300 chunks, 6 of them tagged: the 3 nearest tagged ones must come back, although the
    # unfiltered nearest neighbours are all untagged.
    for i in range(300):
        tag = "rare" if i % 50 == 0 else "common"
        write(store, f"doc{i}", f"note number {i} about topic {i % 7}", tag=tag, n=i)
    hits = store.dense(INDEX, EMBED.vector("note number about topic"), 3, {"tag": "rare"})
    assert len(hits) == 3
    assert all(h.metadata["tag"] == "rare" for h in hits)
    listed = store.dense(INDEX, EMBED.vector("note"), 10, {"n": [0, 50, 999]})
    assert sorted(h.metadata["n"] for h in listed) == [0, 50]
    keyword = store.keyword(INDEX, "note", 10, {"tag": "rare"})
    assert len(keyword) == 6


def test_a_bad_filter_is_refused(store: VectorStore) -> None:
    with pytest.raises(StoreError):
        store.dense(INDEX, EMBED.vector("x"), 3, {"bad name'": 1})
    with pytest.raises(StoreError):
        store.keyword(INDEX, "x", 3, {"tag": [{"nested": 1}]})  # type: ignore[list-item]


def test_a_crash_mid_update_leaves_the_old_version(store: VectorStore) -> None:
    write(store, "a", "the old version")

    def crash(source_id: str) -> None:
        raise RuntimeError("power cut")

    store.before_commit = crash  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError):
        write(store, "a", "the new version")
    store.before_commit = None  # type: ignore[attr-defined]
    hits = store.keyword(INDEX, "version", 5, None)
    assert [h.text for h in hits] == ["the old version"]
    assert store.count(INDEX) == (1, 1)


def test_vectors_are_found_by_digest(store: VectorStore) -> None:
    write(store, "a", "alpha", "beta")
    found = store.vectors_for(INDEX, [chunks("alpha")[0].digest, "nope"])
    assert list(found) == [chunks("alpha")[0].digest]
    assert np.allclose(found[chunks("alpha")[0].digest], EMBED.vector("alpha"), atol=1e-6)


def test_dimensions_are_checked(store: VectorStore) -> None:
    with pytest.raises(StoreError):
        store.create_index(INDEX, EMBED.dimension + 1)
    with pytest.raises(StoreError):
        store.count("unknown@index")


def test_dropping_an_index_removes_it(store: VectorStore) -> None:
    write(store, "a", "alpha")
    store.drop_index(INDEX)
    with pytest.raises(StoreError):
        store.count(INDEX)
    assert store.documents(INDEX) == {}


def test_another_process_writes_are_seen_at_once(tmp_path: Path) -> None:
    reader = EmbeddedStore(tmp_path / "shared.db")
    writer = EmbeddedStore(tmp_path / "shared.db")
    try:
        writer.create_index(INDEX, EMBED.dimension)
        write(writer, "a", "first words")
        assert sources(reader.keyword(INDEX, "words", 5, None)) == ["a"]
        write(writer, "a", "second words")
        write(writer, "b", "more words")
        writer.delete_documents(INDEX, ["b"])
        hits = reader.keyword(INDEX, "words", 5, None)
        assert [h.text for h in hits] == ["second words"]
        assert reader.memory(INDEX)["vectors"] == 1
    finally:
        reader.close()
        writer.close()


def test_churn_keeps_the_embedded_index_bounded(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "churn.db")
    try:
        store.create_index(INDEX, EMBED.dimension)
        for i in range(100):
            write(store, f"doc{i}", f"document {i} first words", f"document {i} more words")
        store.keyword(INDEX, "words", 1, None)  # load the in-memory indexes
        before = store.memory(INDEX)
        for cycle in range(20):
            for i in range(100):
                write(store, f"doc{i}", f"cycle {cycle} document {i}", f"cycle {cycle} more")
            store.delete_documents(INDEX, [f"doc{i}" for i in range(0, 100, 10)])
            for i in range(0, 100, 10):
                write(store, f"doc{i}", f"cycle {cycle} back {i}", "again")
            store.keyword(INDEX, "cycle", 1, None)
        after = store.memory(INDEX)
        assert after["vectors"] == 200
        assert after["capacity"] <= max(2 * before["capacity"], 512)
        assert after["bytes"] <= 2 * before["bytes"]
        assert after["terms"] < 250  # old cycles' words left the keyword index
    finally:
        store.close()
