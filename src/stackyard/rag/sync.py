"""Keeping a collection's index in step with its sources.

A sync reads only what changed: a file whose modification time and size match what the index
recorded is not even opened; a document whose content hash matches is not re-chunked; a chunk
whose text is already in the index (in this document or another) reuses its vector. So the
texts sent to the embedding model are exactly the new or changed chunks, each once. Each
document is replaced in one transaction, and vanished documents are deleted last.

When the collection's embedding model (or its revision) changes, the sync builds a new index
beside the old one, which keeps serving queries, and swaps it in once complete; a sync that
stops half-way resumes the build next time.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from stackyard.rag.chunking import Chunk, chunk_sections
from stackyard.rag.collections import Collection, Collections, CollectionSettings
from stackyard.rag.distributed import FileTask, Parsed, parse_batch
from stackyard.rag.embedder import Embedder, index_name
from stackyard.rag.loaders import LOADERS, Document, Fields
from stackyard.rag.stores.base import DocState, NewChunk, Vector, VectorStore

DOCS_PER_BATCH = 128
Progress = Callable[[str, int, int], None]  # stage, done, total


@dataclass
class SyncReport:
    index: str
    scanned: int = 0
    unchanged: int = 0
    added: int = 0
    changed: int = 0
    deleted: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    chunks_written: int = 0
    swapped: bool = False
    seconds: float = 0.0
    finished_at: float = 0.0  # epoch seconds
    failed: list[dict[str, str]] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class _Pending:
    document: Document
    stamp: str
    new: bool
    chunks: list[Chunk] | None = None  # None: chunked when written


class Cluster(Protocol):
    """Where a large sync's stages run instead of in process (``rag/distributed.py``)."""

    min_files: int  # fewer changed files than this: in process
    docs_per_batch: int  # documents per write batch (one embedding job each)

    def parse(self, tasks: list[FileTask], size: int, overlap: int) -> Iterator[Parsed]: ...
    def embedder(self, local: Embedder) -> Embedder: ...


def chunk_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def document_digest(document: Document, settings: CollectionSettings) -> str:
    """The content hash and the chunking settings: new settings re-chunk every document
    (unchanged chunks keep their vectors)."""
    chunking = f"{document.digest}:{settings.chunk_size}:{settings.chunk_overlap}"
    return hashlib.sha256(chunking.encode()).hexdigest()


def collection_key(collection: Collection) -> str:
    """What names a collection's indexes: its name, for people, and its id, which no other
    collection has. ``#`` is never in a name, so this never equals the name alone (what
    indexes were named after before names were per team)."""
    return f"{collection.name}#{collection.id}"


def target_index(collection: Collection, embedder: Embedder) -> str:
    """The index for ``collection``'s vectors by ``embedder``'s model and revision: the one
    the collection has (active, or being built) if it is for them, else a new one named after
    the collection's id, which no other collection shares (two teams may each have a
    collection of one name). Indexes named after the name alone, before names were per team,
    stay with the collection that has them: an upgrade re-embeds nothing."""
    model, revision = embedder.model, embedder.revision()
    owned = index_name(collection_key(collection), model, revision)
    legacy = index_name(collection.name, model, revision)
    for existing in (collection.active_index, collection.building_index):
        if existing is not None and existing in (owned, legacy):
            return existing
    return owned


class Ingest:
    """Writes documents into one index, embedding only what the index lacks."""

    def __init__(
        self,
        collection: Collection,
        store: VectorStore,
        embedder: Embedder,
        index: str,
        report: SyncReport,
        progress: Progress | None = None,
        docs_per_batch: int = DOCS_PER_BATCH,
    ) -> None:
        self.docs_per_batch = docs_per_batch
        self.collection = collection
        self.store = store
        self.embedder = embedder
        self.index = index
        self.report = report
        self.progress = progress
        self._created = False

    async def write(self, pending: list[_Pending]) -> None:
        """Chunk, embed and write ``pending`` in batches; a batch's texts are embedded while
        the batch before it is written, so the model does not wait for the store."""
        size = self.docs_per_batch
        batches = [pending[i : i + size] for i in range(0, len(pending), size)]
        fresh: dict[str, Vector] = {}  # vectors embedded in this run and not written yet
        done = 0
        upcoming = asyncio.ensure_future(self._embedded(batches[0], fresh)) if batches else None
        for number, batch in enumerate(batches):
            assert upcoming is not None
            chunked, vectors, digests = await upcoming
            upcoming = None
            if number + 1 < len(batches):
                upcoming = asyncio.ensure_future(self._embedded(batches[number + 1], fresh))
            try:
                await self._write_batch(chunked, vectors)
            except BaseException:
                if upcoming is not None:
                    upcoming.cancel()
                raise
            for digest in digests:  # in the store now: the next batches find them there
                fresh.pop(digest, None)
            done += len(batch)
            if self.progress is not None:
                self.progress("embedding", done, len(pending))

    async def _embedded(
        self, batch: list[_Pending], fresh: dict[str, Vector]
    ) -> tuple[list[tuple[_Pending, list[Chunk]]], dict[str, Vector], dict[str, str]]:
        """The batch's chunks, a vector for each of their texts (from the index, from this
        run, or embedded now: each text once), and their texts by digest."""
        settings = self.collection.settings
        chunked = [
            (
                p,
                p.chunks
                if p.chunks is not None
                else chunk_sections(
                    p.document.sections, settings.chunk_size, settings.chunk_overlap
                ),
            )
            for p in batch
        ]
        digests = {chunk_digest(c.text): c.text for _, chunks in chunked for c in chunks}
        known = {d: fresh[d] for d in digests if d in fresh}
        wanted = [d for d in digests if d not in known]
        if wanted and self._exists():
            known.update(await asyncio.to_thread(self.store.vectors_for, self.index, wanted))
        # Longest first, so that each batch the model sees holds texts of similar lengths
        # (little padding).
        missing = sorted((d for d in digests if d not in known), key=lambda d: -len(digests[d]))
        if missing:
            vectors = await self.embedder.embed([digests[d] for d in missing])
            embedded = dict(zip(missing, vectors, strict=True))
            fresh.update(embedded)
            known.update(embedded)
            self.report.chunks_embedded += len(missing)
            if not self._created:
                await asyncio.to_thread(
                    self.store.create_index, self.index, int(vectors[0].shape[0])
                )
                self._created = True
        self.report.chunks_reused += sum(len(c) for _, c in chunked) - len(missing)
        return chunked, known, digests

    async def _write_batch(
        self, chunked: list[tuple[_Pending, list[Chunk]]], vectors: dict[str, Vector]
    ) -> None:
        settings = self.collection.settings
        for item, chunks in chunked:
            doc = item.document
            base = {**doc.metadata, "source": doc.source_id}
            rows = [
                NewChunk(
                    c.text,
                    c.position,
                    c.start,
                    c.end,
                    chunk_digest(c.text),
                    vectors[chunk_digest(c.text)],
                    {**base, **c.metadata},
                )
                for c in chunks
            ]
            if not rows and not self._exists():
                continue  # an empty document in an index not created yet
            state = DocState(doc.source_id, document_digest(doc, settings), item.stamp)
            await asyncio.to_thread(
                self.store.write_document, self.index, state, rows, doc.metadata
            )
            self.report.chunks_written += len(rows)
            if item.new:
                self.report.added += 1
            else:
                self.report.changed += 1

    def _exists(self) -> bool:
        if not self._created:
            try:
                self.store.count(self.index)
                self._created = True
            except ValueError:
                return False
        return True


def _files(spec_path: Path, glob: str) -> Iterator[tuple[Path, str]]:
    if spec_path.is_file():
        yield spec_path, spec_path.name
        return
    for path in sorted(spec_path.glob(glob)):
        if path.is_file() and path.suffix.lower() in LOADERS and not path.name.startswith("."):
            yield path, f"{spec_path.name}/{path.relative_to(spec_path).as_posix()}"


async def sync(
    collection: Collection,
    store: VectorStore,
    embedder: Embedder,
    collections: Collections,
    *,
    base_dir: Path | None = None,
    progress: Progress | None = None,
    cluster: Cluster | None = None,
) -> SyncReport:
    """Bring the collection's index up to date with its sources (reading, chunking and
    embedding on ``cluster`` when enough files changed)."""
    started = time.monotonic()
    target = target_index(collection, embedder)
    shadow = collection.active_index is not None and collection.active_index != target
    if shadow and collection.building_index != target:
        collection = collections.update(collection, building_index=target)
    report = SyncReport(index=target)
    try:
        known = await asyncio.to_thread(store.documents, target)
    except ValueError:
        known = {}
    rows_of: dict[str, list[str]] = {}  # CSV and JSONL files: their rows' documents
    for source_id in known:
        if "#" in source_id:
            rows_of.setdefault(source_id.split("#", 1)[0], []).append(source_id)
    seen: set[str] = set()
    pending: list[_Pending] = []
    settings = collection.settings
    chunking = f"{settings.chunk_size}/{settings.chunk_overlap}"
    to_read: dict[str, tuple[FileTask, str, list[DocState]]] = {}
    for spec in settings.sources:
        root = Path(spec.path)
        if not root.is_absolute() and base_dir is not None:
            root = base_dir / root
        if not root.exists():
            report.failed.append({"source": spec.path, "error": "no such file or folder"})
            continue
        fields = Fields(spec.text_field, spec.id_field)
        for path, source_id in _files(root, spec.glob):
            stat = path.stat()
            # The chunking is in the stamp too: new settings make every file read again.
            stamp = f"{stat.st_mtime_ns}:{stat.st_size}:{chunking}"
            previous = (
                [known[source_id]]
                if source_id in known
                else [known[s] for s in rows_of.get(source_id, ())]
            )
            if previous and all(p.stamp == stamp for p in previous):
                seen.update(p.source_id for p in previous)
                report.scanned += len(previous)
                report.unchanged += len(previous)
                continue
            to_read[source_id] = (FileTask(str(path), source_id, fields), stamp, previous)
    if cluster is not None and len(to_read) < cluster.min_files:
        cluster = None  # too few files to be worth the cluster
    tasks = [task for task, _, _ in to_read.values()]
    size, overlap = settings.chunk_size, settings.chunk_overlap
    parsed: Iterator[Parsed]
    if cluster is not None:
        parsed = cluster.parse(tasks, size, overlap)
    else:
        parsed = (parse_batch([task], size, overlap, chunk=False)[0] for task in tasks)
    for item in parsed:
        _, stamp, previous = to_read[item.source_id]
        if item.error is not None:
            report.failed.append({"source": item.source_id, "error": item.error})
            seen.update(p.source_id for p in previous)  # keep what was there
            continue
        for document, chunks in item.documents:
            seen.add(document.source_id)
            report.scanned += 1
            old = known.get(document.source_id)
            if old is not None and old.digest == document_digest(document, settings):
                report.unchanged += 1
                await asyncio.to_thread(store.restamp, target, document.source_id, stamp)
            else:
                pending.append(_Pending(document, stamp, old is None, chunks))
        if progress is not None:
            progress("scanning", report.scanned, 0)
    ingest = Ingest(
        collection,
        store,
        embedder if cluster is None else cluster.embedder(embedder),
        target,
        report,
        progress,
        docs_per_batch=DOCS_PER_BATCH if cluster is None else cluster.docs_per_batch,
    )
    await ingest.write(pending)
    if shadow and collection.active_index is not None:
        seen |= await _carry_pushed(store, embedder, collection.active_index, target, known, report)
    # Only documents read from the sources can vanish from them: documents pushed through the
    # API (no stamp: no file behind them) stay until they are deleted through the API.
    vanished = sorted(s for s in set(known) - seen if known[s].stamp)
    if vanished:
        report.deleted = await asyncio.to_thread(store.delete_documents, target, vanished)
    await _finish(collection, store, collections, target, report, ingest)
    report.seconds = round(time.monotonic() - started, 3)
    report.finished_at = round(time.time(), 3)
    collections.update(collection, last_sync=report.public())
    return report


async def _carry_pushed(
    store: VectorStore,
    embedder: Embedder,
    active: str,
    target: str,
    known: dict[str, DocState],
    report: SyncReport,
) -> set[str]:
    """Documents pushed through the API have no source to read again: when a new embedding
    model builds a new index, their chunks are embedded again from the active index, so that
    the swap does not drop them. Returns their ids."""
    try:
        current = await asyncio.to_thread(store.documents, active)
    except ValueError:
        return set()
    pushed = [s for s, state in current.items() if not state.stamp and s not in known]
    for start in range(0, len(pushed), DOCS_PER_BATCH):
        part = pushed[start : start + DOCS_PER_BATCH]
        stored = await asyncio.to_thread(store.chunks_of, active, part)
        for source_id, (metadata, chunks) in stored.items():
            vectors = await embedder.embed([c.text for c in chunks]) if chunks else []
            report.chunks_embedded += len(chunks)
            if vectors:  # the new index may not exist yet (no file wrote to it)
                await asyncio.to_thread(store.create_index, target, int(vectors[0].shape[0]))
            new = [
                NewChunk(c.text, c.position, c.start, c.end, c.digest, v, c.metadata)
                for c, v in zip(chunks, vectors, strict=True)
            ]
            state = current[source_id]
            await asyncio.to_thread(store.write_document, target, state, new, metadata)
            report.added += 1
    return set(pushed)


async def _finish(
    collection: Collection,
    store: VectorStore,
    collections: Collections,
    target: str,
    report: SyncReport,
    ingest: Ingest,
) -> None:
    """Make ``target`` the active index (swapping out an old model's index)."""
    if collection.active_index == target or not ingest._exists():
        return
    old = collection.active_index
    collections.update(collection, active_index=target, building_index=None)
    report.swapped = old is not None
    if old is not None:
        await asyncio.to_thread(store.drop_index, old)


async def upsert(
    collection: Collection,
    store: VectorStore,
    embedder: Embedder,
    collections: Collections,
    documents: list[Document],
) -> SyncReport:
    """Write documents pushed through the API (no sources to scan, nothing deleted)."""
    started = time.monotonic()
    target = collection.active_index or target_index(collection, embedder)
    report = SyncReport(index=target)
    try:
        known = await asyncio.to_thread(
            store.find_documents, target, [d.source_id for d in documents]
        )
    except ValueError:
        known = {}
    pending = []
    for document in documents:
        report.scanned += 1
        old = known.get(document.source_id)
        if old is not None and old.digest == document_digest(document, collection.settings):
            report.unchanged += 1
        else:
            pending.append(_Pending(document, "", old is None))
    ingest = Ingest(collection, store, embedder, target, report)
    await ingest.write(pending)
    await _finish(collection, store, collections, target, report, ingest)
    report.seconds = round(time.monotonic() - started, 3)
    return report
