"""PostgreSQL with pgvector: one table per index (its vectors have one dimension), an HNSW
index for dense search with iterative scans for filters, and PostgreSQL's full text search
(``ts_rank_cd`` over an English ``tsvector``) for keywords.

Needs pgvector 0.8 or later (``hnsw.iterative_scan``). A filtered search that the index cannot
fill (fewer than k hits while k match) is answered again exactly.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

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
from stackyard.store.pgvector import Vector as Binary
from stackyard.store.pgvector import register_vector_sync

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS rag_indexes (
    name TEXT PRIMARY KEY, dimension INTEGER NOT NULL, tbl TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rag_documents (
    index_name TEXT NOT NULL, source_id TEXT NOT NULL, digest TEXT NOT NULL,
    stamp TEXT NOT NULL, metadata JSONB NOT NULL, PRIMARY KEY (index_name, source_id));
"""


def _table(index: str) -> str:
    return "rag_chunks_" + hashlib.sha256(index.encode()).hexdigest()[:16]


def _binary(vector: Vector) -> Binary:
    """The unit vector, sent in pgvector's binary form (:mod:`stackyard.store.pgvector`)."""
    return Binary(normalised(np.asarray(vector, dtype=np.float32)))


class PgVectorStore:
    kind = "pgvector"

    def __init__(self, url: str) -> None:
        if url.startswith("postgresql+psycopg://"):
            url = "postgresql://" + url.split("://", 1)[1]
        self.url = url
        self._conn = psycopg.connect(url, autocommit=True)
        self._lock = threading.RLock()
        self._tables: dict[str, str] = {}
        # Called between writing a document's new chunks and retiring the old ones (tests
        # inject a crash here).
        self.before_commit: Callable[[str], None] | None = None
        with self._lock:
            self._conn.execute("SELECT pg_advisory_lock(712001)")
            try:
                for statement in filter(str.strip, SCHEMA.split(";")):
                    self._conn.execute(statement)
            finally:
                self._conn.execute("SELECT pg_advisory_unlock(712001)")
            register_vector_sync(self._conn)

    def create_index(self, index: str, dimension: int) -> None:
        table = _table(index)
        with self._tx() as db:
            row = db.execute(
                "SELECT dimension FROM rag_indexes WHERE name = %s", (index,)
            ).fetchone()
            if row is not None:
                if row[0] != dimension:
                    raise StoreError(f"index {index} has {row[0]} dimensions, not {dimension}")
                return
            db.execute(
                "INSERT INTO rag_indexes VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (index, dimension, table),
            )
            db.execute(
                f"""CREATE TABLE IF NOT EXISTS {table} (
                    id BIGSERIAL PRIMARY KEY, source_id TEXT NOT NULL, position INTEGER NOT NULL,
                    start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT NOT NULL,
                    metadata JSONB NOT NULL, digest TEXT NOT NULL,
                    embedding vector({int(dimension)}) NOT NULL,
                    tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED)"""
            )
            db.execute(
                f"CREATE INDEX IF NOT EXISTS {table}_hnsw ON {table} "
                "USING hnsw (embedding vector_cosine_ops)"
            )
            db.execute(f"CREATE INDEX IF NOT EXISTS {table}_tsv ON {table} USING gin (tsv)")
            db.execute(f"CREATE INDEX IF NOT EXISTS {table}_meta ON {table} USING gin (metadata)")
            db.execute(f"CREATE INDEX IF NOT EXISTS {table}_src ON {table} (source_id)")
            db.execute(f"CREATE INDEX IF NOT EXISTS {table}_digest ON {table} (digest)")

    def drop_index(self, index: str) -> None:
        with self._tx() as db:
            db.execute(f"DROP TABLE IF EXISTS {_table(index)}")
            db.execute("DELETE FROM rag_documents WHERE index_name = %s", (index,))
            db.execute("DELETE FROM rag_indexes WHERE name = %s", (index,))
        self._tables.pop(index, None)

    def _known(self, index: str) -> str:
        table = self._tables.get(index)
        if table is None:
            with self._lock:
                row = self._conn.execute(
                    "SELECT tbl FROM rag_indexes WHERE name = %s", (index,)
                ).fetchone()
            if row is None:
                raise StoreError(f"no index {index}")
            table = self._tables[index] = str(row[0])
        return table

    def documents(self, index: str) -> dict[str, DocState]:
        rows = self._rows(
            "SELECT source_id, digest, stamp FROM rag_documents WHERE index_name = %s", (index,)
        )
        return {r[0]: DocState(r[0], r[1], r[2]) for r in rows}

    def find_documents(self, index: str, source_ids: list[str]) -> dict[str, DocState]:
        rows = self._rows(
            "SELECT source_id, digest, stamp FROM rag_documents "
            "WHERE index_name = %s AND source_id = ANY(%s)",
            (index, source_ids),
        )
        return {r[0]: DocState(r[0], r[1], r[2]) for r in rows}

    def vectors_for(self, index: str, digests: list[str]) -> dict[str, Vector]:
        table = self._known(index)
        rows = self._rows(
            f"SELECT DISTINCT ON (digest) digest, embedding FROM {table} WHERE digest = ANY(%s)",
            (sorted(set(digests)),),
            binary=True,
        )
        return {r[0]: r[1] for r in rows}

    def write_document(
        self, index: str, doc: DocState, chunks: list[NewChunk], metadata: dict[str, Any]
    ) -> None:
        table = self._known(index)
        with self._tx() as db:
            # One writer per document at a time, across instances.
            db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (index + doc.source_id,))
            old = [
                r[0]
                for r in db.execute(
                    f"SELECT id FROM {table} WHERE source_id = %s", (doc.source_id,)
                ).fetchall()
            ]
            with db.cursor() as cursor:
                cursor.executemany(
                    f'INSERT INTO {table} (source_id, position, start, "end", text, metadata, '
                    "digest, embedding) VALUES (%s, %s, %s, %s, %s, %s, %s, %b)",
                    [
                        (
                            doc.source_id,
                            c.position,
                            c.start,
                            c.end,
                            c.text,
                            Jsonb(c.metadata),
                            c.digest,
                            _binary(c.vector),
                        )
                        for c in chunks
                    ],
                )
            if self.before_commit is not None:
                self.before_commit(doc.source_id)
            if old:
                db.execute(f"DELETE FROM {table} WHERE id = ANY(%s)", (old,))
            db.execute(
                "INSERT INTO rag_documents VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (index_name, source_id) DO UPDATE SET digest = excluded.digest, "
                "stamp = excluded.stamp, metadata = excluded.metadata",
                (index, doc.source_id, doc.digest, doc.stamp, Jsonb(metadata)),
            )

    def restamp(self, index: str, source_id: str, stamp: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE rag_documents SET stamp = %s WHERE index_name = %s AND source_id = %s",
                (stamp, index, source_id),
            )

    def chunks_of(
        self, index: str, source_ids: list[str]
    ) -> dict[str, tuple[dict[str, Any], list[StoredChunk]]]:
        table = self._known(index)
        found: dict[str, tuple[dict[str, Any], list[StoredChunk]]] = {
            r[0]: (dict(r[1]), [])
            for r in self._rows(
                "SELECT source_id, metadata FROM rag_documents "
                "WHERE index_name = %s AND source_id = ANY(%s)",
                (index, source_ids),
            )
        }
        for row in self._rows(
            f'SELECT source_id, text, position, start, "end", digest, metadata FROM {table} '
            "WHERE source_id = ANY(%s) ORDER BY source_id, position",
            (source_ids,),
        ):
            if row[0] in found:
                found[row[0]][1].append(
                    StoredChunk(row[1], row[2], row[3], row[4], row[5], dict(row[6]))
                )
        return found

    def delete_documents(self, index: str, source_ids: list[str]) -> int:
        table = self._known(index)
        with self._tx() as db:
            db.execute(f"DELETE FROM {table} WHERE source_id = ANY(%s)", (source_ids,))
            cursor = db.execute(
                "DELETE FROM rag_documents WHERE index_name = %s AND source_id = ANY(%s)",
                (index, source_ids),
            )
            return cursor.rowcount

    def count(self, index: str) -> tuple[int, int]:
        table = self._known(index)
        documents = self._rows("SELECT count(*) FROM rag_documents WHERE index_name = %s", (index,))
        chunks = self._rows(f"SELECT count(*) FROM {table}")
        return int(documents[0][0]), int(chunks[0][0])

    def dense(self, index: str, vector: Vector, k: int, where: Where | None) -> list[Hit]:
        table = self._known(index)
        clause, params = _filter(check_where(where))
        query = _binary(vector)
        sql = (
            f"SELECT id, source_id, position, text, metadata, "
            f"1 - (embedding <=> %b) AS score FROM {table} {clause} "
            "ORDER BY embedding <=> %b LIMIT %s"
        )
        with self._tx() as db:
            db.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            db.execute(f"SET LOCAL hnsw.ef_search = {max(40, min(1000, 2 * k))}")
            rows = db.execute(sql, (query, *params, query, k)).fetchall()
            if len(rows) < k and clause:
                db.execute("SET LOCAL enable_indexscan = off")  # exact, when HNSW fell short
                rows = db.execute(sql, (query, *params, query, k)).fetchall()
        rows.sort(key=lambda r: -r[5])  # relaxed order: nearly sorted
        return [Hit(str(r[0]), r[1], r[3], r[2], float(r[5]), r[4]) for r in rows]

    def keyword(self, index: str, query: str, k: int, where: Where | None) -> list[Hit]:
        table = self._known(index)
        clause, params = _filter(check_where(where))
        match = "tsv @@ q"
        sql = (
            "SELECT id, source_id, position, text, metadata, ts_rank_cd(tsv, q) AS score "
            f"FROM {table}, to_tsquery('simple', "
            "replace(plainto_tsquery('english', %s)::text, '&', '|')) q "
            f"{clause + ' AND ' + match if clause else 'WHERE ' + match} "
            "ORDER BY score DESC LIMIT %s"
        )
        rows = self._rows(sql, (query, *params, k))
        return [Hit(str(r[0]), r[1], r[3], r[2], float(r[5]), r[4]) for r in rows]

    def _rows(self, sql: str, params: Any = (), binary: bool = False) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, params, binary=binary).fetchall()

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        with self._lock, self._conn.transaction():
            yield self._conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _filter(where: Where | None) -> tuple[str, list[Any]]:
    if not where:
        return "", []
    clauses: list[str] = []
    params: list[Any] = []
    for name, value in where.items():
        values = value if isinstance(value, list) else [value]
        clauses.append("(" + " OR ".join(["metadata @> %s"] * len(values)) + ")")
        params.extend(Jsonb({name: v}) for v in values)
    return "WHERE " + " AND ".join(clauses), params
