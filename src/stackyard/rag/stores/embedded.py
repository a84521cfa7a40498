"""The embedded store: chunks and metadata in SQLite, vectors in an in-process HNSW index
(usearch) and keywords in an in-process BM25 index.

The in-memory indexes follow the database, not the other way round: each search first applies
what changed since the last one (chunks above the last id seen, and the log of retired chunks),
so a sync run by another process (``stackyard rag sync``) is visible to the server at once.
Deleted vectors free their slots in the HNSW index, so churn does not grow it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from usearch.index import Index

from stackyard.rag.bm25 import BM25Index
from stackyard.rag.stores.base import (
    DocState,
    Hit,
    NewChunk,
    StoredChunk,
    StoreError,
    Vector,
    Where,
    check_where,
    normalised,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS rag_indexes (name TEXT PRIMARY KEY, dimension INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rag_documents (
    index_name TEXT NOT NULL, source_id TEXT NOT NULL, digest TEXT NOT NULL,
    stamp TEXT NOT NULL, metadata TEXT NOT NULL, PRIMARY KEY (index_name, source_id));
CREATE TABLE IF NOT EXISTS rag_chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, index_name TEXT NOT NULL, source_id TEXT NOT NULL,
    position INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    text TEXT NOT NULL, metadata TEXT NOT NULL, digest TEXT NOT NULL, vector BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS ix_rag_chunks_source ON rag_chunks (index_name, source_id);
CREATE INDEX IF NOT EXISTS ix_rag_chunks_digest ON rag_chunks (index_name, digest);
CREATE TABLE IF NOT EXISTS rag_retired (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, index_name TEXT NOT NULL, chunk_id INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS ix_rag_retired ON rag_retired (index_name, seq);
"""
EXACT_BELOW = 2000  # filtered searches over fewer chunks than this are exact
BATCH = 500  # parameters per IN (...) list


@dataclass
class _Live:
    """One index's in-memory state, and how far into the database it has read."""

    ann: Index
    bm25: BM25Index
    last_chunk: int = 0
    last_retired: int = 0


class EmbeddedStore:
    kind = "embedded"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()
        self._live: dict[str, _Live] = {}
        self.statements = 0  # counted, for the tests of "no full scan"
        # Called between writing a document's new chunks and retiring the old ones (tests
        # inject a crash here).
        self.before_commit: Callable[[str], None] | None = None

    # -- indexes ---------------------------------------------------------------------------

    def create_index(self, index: str, dimension: int) -> None:
        with self._write() as db:
            row = db.execute(
                "SELECT dimension FROM rag_indexes WHERE name = ?", (index,)
            ).fetchone()
            if row is None:
                db.execute("INSERT INTO rag_indexes VALUES (?, ?)", (index, dimension))
            elif row[0] != dimension:
                raise StoreError(f"index {index} has {row[0]} dimensions, not {dimension}")

    def drop_index(self, index: str) -> None:
        with self._write() as db:
            for table in ("rag_chunks", "rag_documents", "rag_retired", "rag_indexes"):
                column = "name" if table == "rag_indexes" else "index_name"
                db.execute(f"DELETE FROM {table} WHERE {column} = ?", (index,))
        with self._lock:
            self._live.pop(index, None)

    def _dimension(self, index: str) -> int:
        row = self._query("SELECT dimension FROM rag_indexes WHERE name = ?", (index,))
        if not row:
            raise StoreError(f"no index {index}")
        return int(row[0][0])

    # -- documents -------------------------------------------------------------------------

    def documents(self, index: str) -> dict[str, DocState]:
        rows = self._query(
            "SELECT source_id, digest, stamp FROM rag_documents WHERE index_name = ?", (index,)
        )
        return {r[0]: DocState(r[0], r[1], r[2]) for r in rows}

    def find_documents(self, index: str, source_ids: list[str]) -> dict[str, DocState]:
        found: dict[str, DocState] = {}
        for part in _batches(source_ids):
            rows = self._query(
                "SELECT source_id, digest, stamp FROM rag_documents WHERE index_name = ? "
                f"AND source_id IN ({_marks(part)})",
                (index, *part),
            )
            found.update({r[0]: DocState(r[0], r[1], r[2]) for r in rows})
        return found

    def vectors_for(self, index: str, digests: list[str]) -> dict[str, Vector]:
        found: dict[str, Vector] = {}
        for part in _batches(sorted(set(digests))):
            rows = self._query(
                "SELECT digest, vector FROM rag_chunks WHERE index_name = ? "
                f"AND digest IN ({_marks(part)})",
                (index, *part),
            )
            found.update({r[0]: np.frombuffer(r[1], dtype=np.float32) for r in rows})
        return found

    def write_document(
        self, index: str, doc: DocState, chunks: list[NewChunk], metadata: dict[str, Any]
    ) -> None:
        dimension = self._dimension(index)
        for chunk in chunks:
            if chunk.vector.shape != (dimension,):
                raise StoreError(f"a vector of {chunk.vector.shape} in a {dimension}-d index")
        with self._write() as db:
            old = [
                r[0]
                for r in db.execute(
                    "SELECT id FROM rag_chunks WHERE index_name = ? AND source_id = ?",
                    (index, doc.source_id),
                )
            ]
            db.executemany(
                'INSERT INTO rag_chunks (index_name, source_id, position, start, "end", text,'
                " metadata, digest, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        index,
                        doc.source_id,
                        c.position,
                        c.start,
                        c.end,
                        c.text,
                        orjson.dumps(c.metadata).decode(),
                        c.digest,
                        normalised(c.vector).astype(np.float32).tobytes(),
                    )
                    for c in chunks
                ],
            )
            if self.before_commit is not None:
                self.before_commit(doc.source_id)
            self._retire(db, index, old)
            db.execute(
                "INSERT OR REPLACE INTO rag_documents VALUES (?, ?, ?, ?, ?)",
                (index, doc.source_id, doc.digest, doc.stamp, orjson.dumps(metadata).decode()),
            )

    def chunks_of(
        self, index: str, source_ids: list[str]
    ) -> dict[str, tuple[dict[str, Any], list[StoredChunk]]]:
        found: dict[str, tuple[dict[str, Any], list[StoredChunk]]] = {}
        for part in _batches(source_ids):
            marks = _marks(part)
            for source_id, metadata in self._query(
                "SELECT source_id, metadata FROM rag_documents WHERE index_name = ? "
                f"AND source_id IN ({marks})",
                (index, *part),
            ):
                found[source_id] = (orjson.loads(metadata), [])
            for row in self._query(
                'SELECT source_id, text, position, start, "end", digest, metadata FROM rag_chunks'
                f" WHERE index_name = ? AND source_id IN ({marks}) ORDER BY source_id, position",
                (index, *part),
            ):
                if row[0] in found:
                    found[row[0]][1].append(
                        StoredChunk(row[1], row[2], row[3], row[4], row[5], orjson.loads(row[6]))
                    )
        return found

    def restamp(self, index: str, source_id: str, stamp: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE rag_documents SET stamp = ? WHERE index_name = ? AND source_id = ?",
                (stamp, index, source_id),
            )

    def delete_documents(self, index: str, source_ids: list[str]) -> int:
        deleted = 0
        with self._write() as db:
            for part in _batches(source_ids):
                marks = _marks(part)
                old = [
                    r[0]
                    for r in db.execute(
                        "SELECT id FROM rag_chunks WHERE index_name = ? "
                        f"AND source_id IN ({marks})",
                        (index, *part),
                    )
                ]
                self._retire(db, index, old)
                deleted += db.execute(
                    f"DELETE FROM rag_documents WHERE index_name = ? AND source_id IN ({marks})",
                    (index, *part),
                ).rowcount
        return deleted

    def _retire(self, db: sqlite3.Connection, index: str, ids: list[int]) -> None:
        for part in _batches(ids):
            db.execute(f"DELETE FROM rag_chunks WHERE id IN ({_marks(part)})", part)
        db.executemany(
            "INSERT INTO rag_retired (index_name, chunk_id) VALUES (?, ?)",
            [(index, i) for i in ids],
        )

    def count(self, index: str) -> tuple[int, int]:
        self._dimension(index)  # raises for an unknown index
        documents = self._query(
            "SELECT count(*) FROM rag_documents WHERE index_name = ?", (index,)
        )[0][0]
        chunks = self._query("SELECT count(*) FROM rag_chunks WHERE index_name = ?", (index,))
        return int(documents), int(chunks[0][0])

    # -- search ----------------------------------------------------------------------------

    def dense(self, index: str, vector: Vector, k: int, where: Where | None) -> list[Hit]:
        where = check_where(where)
        with self._lock:
            live = self._refresh(index)
            query = normalised(np.asarray(vector, dtype=np.float32))
            if query.shape != (live.ann.ndim,):
                raise StoreError(f"a {query.shape} query on a {live.ann.ndim}-d index")
            size = len(live.ann)
            if not size or k <= 0:
                return []
            allowed = self._matching(index, where) if where else None
            if allowed is not None and len(allowed) < EXACT_BELOW:
                scored = self._exact(live, query, k, allowed)
            else:
                scored = self._approximate(live, query, k, allowed, size)
        return self._hits(scored)

    def _exact(
        self, live: _Live, query: Vector, k: int, allowed: set[int]
    ) -> list[tuple[int, float]]:
        if not allowed:
            return []
        keys = np.fromiter(allowed, dtype=np.uint64, count=len(allowed))
        vectors = np.asarray(live.ann.get(keys), dtype=np.float32)
        scores = vectors @ query
        top = np.argsort(-scores)[:k]
        return [(int(keys[i]), float(scores[i])) for i in top]

    def _approximate(
        self, live: _Live, query: Vector, k: int, allowed: set[int] | None, size: int
    ) -> list[tuple[int, float]]:
        wanted = k if allowed is None else min(k * 4, size)
        while True:
            matches = live.ann.search(query, min(wanted, size))
            scored = [
                (int(key), 1.0 - float(distance))
                for key, distance in zip(matches.keys, matches.distances, strict=True)
                if allowed is None or int(key) in allowed
            ]
            if len(scored) >= k or wanted >= size:
                break
            wanted *= 4
        if allowed is not None and len(scored) < min(k, len(allowed)):
            return self._exact(live, query, k, allowed)  # HNSW missed some: be exact
        return scored[:k]

    def keyword(self, index: str, query: str, k: int, where: Where | None) -> list[Hit]:
        where = check_where(where)
        with self._lock:
            live = self._refresh(index)
            allowed = self._matching(index, where) if where else None
            scored = live.bm25.search(query, k, allowed)
        return self._hits(scored)

    def _matching(self, index: str, where: Where) -> set[int]:
        clauses, params = [], []
        for name, value in where.items():
            values = value if isinstance(value, list) else [value]
            clauses.append(f"json_extract(metadata, '$.\"{name}\"') IN ({_marks(values)})")
            params.extend(values)
        rows = self._query(
            f"SELECT id FROM rag_chunks WHERE index_name = ? AND {' AND '.join(clauses)}",
            (index, *params),
        )
        return {r[0] for r in rows}

    def _hits(self, scored: list[tuple[int, float]]) -> list[Hit]:
        if not scored:
            return []
        ids = [key for key, _ in scored]
        rows = self._query(
            "SELECT id, source_id, position, text, metadata FROM rag_chunks "
            f"WHERE id IN ({_marks(ids)})",
            ids,
        )
        by_id = {r[0]: r for r in rows}
        hits = []
        for key, score in scored:
            row = by_id.get(key)
            if row is not None:  # retired since the search: drop it
                hits.append(Hit(str(key), row[1], row[3], row[2], score, orjson.loads(row[4])))
        return hits

    # -- the in-memory indexes -------------------------------------------------------------

    def _refresh(self, index: str) -> _Live:
        """Bring the in-memory indexes up to date with the database (two indexed queries
        when nothing changed)."""
        live = self._live.get(index)
        if live is None:
            dimension = self._dimension(index)
            live = _Live(Index(ndim=dimension, metric="cos", dtype="f32"), BM25Index())
            retired = self._query(
                "SELECT coalesce(max(seq), 0) FROM rag_retired WHERE index_name = ?", (index,)
            )
            live.last_retired = int(retired[0][0])
            self._live[index] = live
        retired_rows = self._query(
            "SELECT seq, chunk_id FROM rag_retired WHERE index_name = ? AND seq > ?",
            (index, live.last_retired),
        )
        if retired_rows:
            gone = [r[1] for r in retired_rows if r[1] <= live.last_chunk]
            if gone:
                keys = np.asarray(gone, dtype=np.uint64)
                live.ann.remove(keys)
                for key in gone:
                    live.bm25.remove(key)
            live.last_retired = retired_rows[-1][0]
        while True:
            added = self._query(
                "SELECT id, text, vector FROM rag_chunks WHERE index_name = ? AND id > ? "
                "ORDER BY id LIMIT 5000",
                (index, live.last_chunk),
            )
            if not added:
                return live
            keys = np.asarray([r[0] for r in added], dtype=np.uint64)
            vectors = np.stack([np.frombuffer(r[2], dtype=np.float32) for r in added])
            live.ann.add(keys, vectors)
            for row in added:
                live.bm25.add(row[0], row[1])
            live.last_chunk = added[-1][0]

    def memory(self, index: str) -> dict[str, int]:
        """The in-memory index's size (for the churn test and ``stackyard rag show``)."""
        with self._lock:
            live = self._refresh(index)
            return {
                "vectors": len(live.ann),
                "capacity": int(live.ann.capacity),
                "bytes": int(live.ann.memory_usage),
                "terms": len(live.bm25.postings),
            }

    # -- plumbing --------------------------------------------------------------------------

    def _query(self, sql: str, params: Any = ()) -> list[Any]:
        with self._lock:
            self.statements += 1
            return self._db.execute(sql, params).fetchall()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self.statements += 1
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.rollback()
                raise
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _marks(values: list[Any] | tuple[Any, ...]) -> str:
    return ", ".join("?" * len(values))


def _batches(values: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(values), BATCH):
        yield values[i : i + BATCH]
