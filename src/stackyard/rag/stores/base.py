"""The vector store Protocol, and the records that cross it.

A store holds *indexes*: one per collection and embedding model (``docs@<model key>``), so
that vectors of two models never mix. Within an index, a document's chunks are replaced in
one transaction (the new version is written, then the old one retired): a reader sees one
version or the other, never neither, never both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]
Scalar = str | int | float | bool
Where = dict[str, Scalar | list[Scalar]]
FIELD = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class StoreError(ValueError):
    """A request the store cannot answer (an unknown index, a bad filter)."""


@dataclass(frozen=True, slots=True)
class DocState:
    """What the store knows of a document: its content hash and, for files, a stamp
    (modification time and size) that lets a sync skip reading an unchanged file."""

    source_id: str
    digest: str
    stamp: str = ""


@dataclass(frozen=True, slots=True)
class NewChunk:
    text: str
    position: int
    start: int
    end: int
    digest: str
    vector: Vector
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk as the store keeps it, without its vector (to embed it again elsewhere)."""

    text: str
    position: int
    start: int
    end: int
    digest: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    source_id: str
    text: str
    position: int
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)


class VectorStore(Protocol):
    """Synchronous (the server calls it from a thread); safe to share between threads."""

    kind: str

    def create_index(self, index: str, dimension: int) -> None: ...
    def drop_index(self, index: str) -> None: ...
    def documents(self, index: str) -> dict[str, DocState]: ...
    def find_documents(self, index: str, source_ids: list[str]) -> dict[str, DocState]: ...
    def vectors_for(self, index: str, digests: list[str]) -> dict[str, Vector]: ...
    def write_document(
        self, index: str, doc: DocState, chunks: list[NewChunk], metadata: dict[str, Any]
    ) -> None: ...
    def chunks_of(
        self, index: str, source_ids: list[str]
    ) -> dict[str, tuple[dict[str, Any], list[StoredChunk]]]:
        """Each document's metadata and chunks, in order (to carry it to a new index)."""
        ...

    def restamp(self, index: str, source_id: str, stamp: str) -> None: ...
    def delete_documents(self, index: str, source_ids: list[str]) -> int: ...
    def dense(self, index: str, vector: Vector, k: int, where: Where | None) -> list[Hit]: ...
    def keyword(self, index: str, query: str, k: int, where: Where | None) -> list[Hit]: ...
    def count(self, index: str) -> tuple[int, int]: ...  # documents, chunks
    def close(self) -> None: ...


def check_where(where: Where | None) -> Where | None:
    """Metadata filters: ``{"field": value}`` (equal) or ``{"field": [v1, v2]}`` (any of)."""
    if not where:
        return None
    for name, value in where.items():
        if not FIELD.match(name):
            raise StoreError(f"'{name}' is not a metadata field name (letters, digits, _.-)")
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str | int | float | bool) for v in values):
            raise StoreError(f"the filter on '{name}' must be a value or a list of values")
    return where


def normalised(vector: Vector) -> Vector:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector
