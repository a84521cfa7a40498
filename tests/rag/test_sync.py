"""Sync: only new or changed chunks are embedded, each once; nothing stale or duplicated is
left; an unchanged folder costs a constant number of queries; a model change swaps in a new
index atomically; a crash mid-update leaves the old version searchable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stackyard.rag.chunking import Section
from stackyard.rag.collections import Collection, Collections, CollectionSettings, SourceSpec
from stackyard.rag.loaders import Document
from stackyard.rag.stores.base import StoreError, VectorStore
from stackyard.rag.stores.embedded import EmbeddedStore
from stackyard.rag.sync import sync, upsert
from tests.rag.conftest import HashingEmbedder


def make_folder(root: Path, count: int) -> Path:
    folder = root / "docs"
    folder.mkdir()
    for i in range(count):
        (folder / f"doc{i}.md").write_text(f"# Doc {i}\n\nThe body of document number {i}.\n")
    return folder


def create(collections: Collections, folder: Path, **settings: object) -> Collection:
    return collections.create(
        "docs",
        CollectionSettings(
            embedding_model="hashing",
            sources=[SourceSpec(path=str(folder))],
            **settings,  # type: ignore[arg-type]
        ),
    )


def all_chunks(store: VectorStore, index: str) -> list[tuple[str, str]]:
    hits = store.keyword(index, "document body doc", 10_000, None)
    return sorted((h.source_id, h.text) for h in hits)


def touch_later(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


async def test_only_new_and_changed_chunks_are_embedded(
    tmp_path: Path, collections: Collections, any_store: VectorStore
) -> None:
    folder = make_folder(tmp_path, 10)
    embedder = HashingEmbedder()
    first = await sync(create(collections, folder), any_store, embedder, collections)
    assert (first.added, first.chunks_embedded) == (10, 10)
    assert len(embedder.texts) == 10

    (folder / "doc1.md").write_text("# Doc 1\n\nA rewritten body for document 1.\n")
    touch_later(folder / "doc1.md")
    (folder / "doc2.md").unlink()
    (folder / "new.md").write_text("# New\n\nA brand new document body.\n")
    # The same text as doc3: its vector is reused, not embedded again.
    (folder / "copy.md").write_text((folder / "doc3.md").read_text())
    embedder.texts.clear()
    second = await sync(collections.get("docs"), any_store, embedder, collections)
    assert (second.added, second.changed, second.deleted) == (2, 1, 1)
    assert second.unchanged == 8
    assert sorted(embedder.texts) == sorted(
        ["# Doc 1\n\nA rewritten body for document 1.", "# New\n\nA brand new document body."]
    )
    assert second.chunks_embedded == 2
    assert second.chunks_reused == 1

    index = collections.get("docs").active_index
    assert index is not None
    chunks = all_chunks(any_store, index)
    assert len(chunks) == len(set(chunks)) == 11  # no duplicates
    assert not any(source == "docs/doc2.md" for source, _ in chunks)  # no stale document
    assert ("docs/doc1.md", "# Doc 1\n\nA rewritten body for document 1.") in chunks


async def test_an_unchanged_folder_embeds_nothing_in_constant_queries(
    tmp_path: Path, collections: Collections, embedded: EmbeddedStore
) -> None:
    folder = make_folder(tmp_path, 5)
    embedder = HashingEmbedder()
    await sync(create(collections, folder), embedded, embedder, collections)
    embedder.texts.clear()
    before = embedded.statements
    report = await sync(collections.get("docs"), embedded, embedder, collections)
    small = embedded.statements - before
    assert (report.unchanged, report.chunks_embedded, embedder.texts) == (5, 0, [])

    for i in range(5, 60):
        (folder / f"doc{i}.md").write_text(f"# Doc {i}\n\nMore text {i}.\n")
    await sync(collections.get("docs"), embedded, embedder, collections)
    before = embedded.statements
    await sync(collections.get("docs"), embedded, embedder, collections)
    assert embedded.statements - before == small  # 60 files cost what 5 did


async def test_a_touched_but_identical_file_is_not_embedded(
    tmp_path: Path, collections: Collections, embedded: EmbeddedStore
) -> None:
    folder = make_folder(tmp_path, 2)
    embedder = HashingEmbedder()
    await sync(create(collections, folder), embedded, embedder, collections)
    touch_later(folder / "doc0.md")
    embedder.texts.clear()
    report = await sync(collections.get("docs"), embedded, embedder, collections)
    assert (report.unchanged, report.changed, embedder.texts) == (2, 0, [])


async def test_a_crash_mid_sync_leaves_the_old_version_searchable(
    tmp_path: Path, collections: Collections, any_store: VectorStore
) -> None:
    folder = make_folder(tmp_path, 3)
    embedder = HashingEmbedder()
    await sync(create(collections, folder), any_store, embedder, collections)
    (folder / "doc0.md").write_text("# Doc 0\n\nA replacement body.\n")
    touch_later(folder / "doc0.md")

    def crash(source_id: str) -> None:
        raise RuntimeError("killed")

    any_store.before_commit = crash  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError):
        await sync(collections.get("docs"), any_store, embedder, collections)
    any_store.before_commit = None  # type: ignore[attr-defined]
    index = collections.get("docs").active_index
    assert index is not None
    assert ("docs/doc0.md", "# Doc 0\n\nThe body of document number 0.") in all_chunks(
        any_store, index
    )
    report = await sync(collections.get("docs"), any_store, embedder, collections)
    assert report.changed == 1
    texts = [t for s, t in all_chunks(any_store, index) if s == "docs/doc0.md"]
    assert texts == ["# Doc 0\n\nA replacement body."]


async def test_a_new_model_builds_a_shadow_index_and_swaps_it_in(
    tmp_path: Path, collections: Collections, any_store: VectorStore
) -> None:
    folder = make_folder(tmp_path, 4)
    old_model = HashingEmbedder("hashing", 64)
    await sync(create(collections, folder), any_store, old_model, collections)
    docs = collections.get("docs")
    old_index = docs.active_index
    assert old_index == f"docs#{docs.id}@hashing:r1"

    new_model = HashingEmbedder("hashing", 32, revision="r2")
    seen_during_build: list[str | None] = []

    def watch(source_id: str) -> None:  # while the new index fills, queries use the old one
        seen_during_build.append(collections.get("docs").active_index)

    any_store.before_commit = watch  # type: ignore[attr-defined]
    report = await sync(collections.get("docs"), any_store, new_model, collections)
    any_store.before_commit = None  # type: ignore[attr-defined]
    assert seen_during_build == [old_index] * 4
    assert report.swapped
    assert report.chunks_embedded == 4
    collection = collections.get("docs")
    new_index = f"docs#{docs.id}@hashing:r2"
    assert (collection.active_index, collection.building_index) == (new_index, None)
    assert any_store.count(new_index) == (4, 4)
    with pytest.raises(StoreError, match="no index"):
        any_store.count(old_index)  # dropped: two models' vectors never mix
    hits = any_store.dense(new_index, new_model.vector("document number 2"), 1, None)
    assert hits[0].source_id == "docs/doc2.md"


async def test_csv_and_jsonl_rows_are_documents(
    tmp_path: Path, collections: Collections, embedded: EmbeddedStore
) -> None:
    folder = tmp_path / "rows"
    folder.mkdir()
    (folder / "faq.jsonl").write_text(
        '{"id": "q1", "text": "How do I reset my password?", "lang": "en"}\n'
        '{"id": "q2", "text": "Where is my invoice?", "lang": "en"}\n'
    )
    collection = collections.create(
        "faq",
        CollectionSettings(
            embedding_model="hashing", sources=[SourceSpec(path=str(folder), id_field="id")]
        ),
    )
    embedder = HashingEmbedder()
    report = await sync(collection, embedded, embedder, collections)
    assert report.added == 2
    (folder / "faq.jsonl").write_text(
        '{"id": "q1", "text": "How do I reset my password?", "lang": "en"}\n'
        '{"id": "q3", "text": "Can I pay by card?", "lang": "en"}\n'
    )
    touch_later(folder / "faq.jsonl")
    embedder.texts.clear()
    report = await sync(collections.get("faq"), embedded, embedder, collections)
    assert (report.added, report.deleted, report.unchanged) == (1, 1, 1)
    assert embedder.texts == ["Can I pay by card?"]
    index = f"faq#{collection.id}@hashing:r1"
    hits = embedded.keyword(index, "card password invoice", 10, {"lang": "en"})
    assert sorted(h.source_id for h in hits) == ["rows/faq.jsonl#q1", "rows/faq.jsonl#q3"]


async def test_unreadable_files_are_reported_and_skipped(
    tmp_path: Path, collections: Collections, embedded: EmbeddedStore
) -> None:
    folder = make_folder(tmp_path, 1)
    (folder / "broken.pdf").write_bytes(b"not a pdf")
    (folder / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    report = await sync(create(collections, folder), embedded, HashingEmbedder(), collections)
    assert report.added == 1
    assert sorted(f["source"] for f in report.failed) == ["docs/broken.pdf", "docs/latin1.txt"]


async def test_pushed_documents_are_upserted(
    tmp_path: Path, collections: Collections, embedded: EmbeddedStore
) -> None:
    collection = collections.create("notes", CollectionSettings(embedding_model="hashing"))
    embedder = HashingEmbedder()

    def doc(key: str, text: str) -> Document:
        return Document(key, [Section(text, 0)], {"author": "ada"})

    report = await upsert(collection, embedded, embedder, collections, [doc("n1", "alpha")])
    assert report.added == 1
    assert collections.get("notes").active_index == f"notes#{collection.id}@hashing:r1"
    report = await upsert(
        collections.get("notes"),
        embedded,
        embedder,
        collections,
        [doc("n1", "alpha"), doc("n2", "beta")],
    )
    assert (report.added, report.unchanged, embedder.texts) == (1, 1, ["alpha", "beta"])


async def test_batches_embedded_while_others_are_written_embed_each_text_once(
    collections: Collections, any_store: VectorStore
) -> None:
    """With one document per batch, batch n+1 is embedded while batch n is written: a text
    shared across batches is still embedded once, and every document gets its vectors."""
    from stackyard.rag.sync import Ingest, SyncReport, _Pending

    collection = collections.create("notes", CollectionSettings(embedding_model="hashing"))
    embedder = HashingEmbedder()
    texts = ["shared words", "shared words", "other words", "shared words", "last one"]
    pending = [
        _Pending(Document(f"n{i}", [Section(t, 0)], {}), "", True) for i, t in enumerate(texts)
    ]
    report = SyncReport(index="notes@hashing:r1")
    ingest = Ingest(collection, any_store, embedder, report.index, report, docs_per_batch=1)
    await ingest.write(pending)
    assert sorted(embedder.texts) == ["last one", "other words", "shared words"]
    assert (report.added, report.chunks_embedded, report.chunks_reused) == (5, 3, 2)
    assert any_store.count(report.index) == (5, 5)
    hits = any_store.dense(report.index, embedder.vector("shared words"), 5, None)
    assert sorted(h.source_id for h in hits if h.text == "shared words") == ["n0", "n1", "n3"]


async def test_a_sync_keeps_the_documents_pushed_through_the_api(
    tmp_path: Path, collections: Collections, any_store: VectorStore
) -> None:
    """Sync deleted every pushed document once ("3 deleted", then no hits): it deletes only
    what vanished from the sources."""
    folder = make_folder(tmp_path, 2)
    embedder = HashingEmbedder()
    collection = create(collections, folder)
    await sync(collection, any_store, embedder, collections)
    pushed = [Document(f"note-{i}", [Section(f"pushed note body {i}", 0)], {}) for i in range(3)]
    await upsert(collections.get("docs"), any_store, embedder, collections, pushed)
    (folder / "doc1.md").unlink()
    report = await sync(collections.get("docs"), any_store, embedder, collections)
    assert report.deleted == 1  # the file that went, and nothing else
    index = collections.get("docs").active_index
    assert index is not None
    assert sorted(any_store.documents(index)) == ["docs/doc0.md", "note-0", "note-1", "note-2"]
    hits = any_store.keyword(index, "pushed note", 10, None)
    assert {h.source_id for h in hits} >= {"note-0", "note-1", "note-2"}


async def test_a_new_model_carries_the_pushed_documents_into_its_index(
    tmp_path: Path, collections: Collections, any_store: VectorStore
) -> None:
    """Pushed documents have no file to read again: the new index embeds their stored chunks,
    so that the swap does not drop them."""
    folder = make_folder(tmp_path, 2)
    old_model = HashingEmbedder("hashing", 64)
    await sync(create(collections, folder), any_store, old_model, collections)
    pushed = [
        Document("note-a", [Section("pushed alpha note", 0)], {"author": "ada"}),
        Document("note-b", [Section("pushed beta note", 0)], {}),
    ]
    await upsert(collections.get("docs"), any_store, old_model, collections, pushed)
    new_model = HashingEmbedder("hashing", 32, revision="r2")
    report = await sync(collections.get("docs"), any_store, new_model, collections)
    assert report.swapped
    assert report.deleted == 0
    docs = collections.get("docs")
    index = f"docs#{docs.id}@hashing:r2"
    assert docs.active_index == index
    assert sorted(any_store.documents(index)) == [
        "docs/doc0.md",
        "docs/doc1.md",
        "note-a",
        "note-b",
    ]
    hits = any_store.dense(index, new_model.vector("pushed alpha note"), 1, None)
    assert (hits[0].source_id, hits[0].text) == ("note-a", "pushed alpha note")
    assert "pushed beta note" in new_model.texts
    again = await sync(collections.get("docs"), any_store, new_model, collections)
    assert (again.added, again.deleted) == (0, 0)  # carried once, and kept
