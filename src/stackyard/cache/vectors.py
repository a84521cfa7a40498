"""The semantic tier's in-process vector table: the embedded questions of cached entries, kept
apart by partition (tenant, model, system prompt, tools, format, earlier turns), so that a
search can only ever see entries of the request's own partition. Within a partition the search
is exact (one matrix product over unit vectors) until the partition holds ``ANN_ROWS`` entries;
from there it also keeps an approximate index (HNSW, from usearch, vectors in 8 bits), built a
little with each new entry, whose candidates, a few times more than asked for, are re-scored
exactly. A partition's rows are
packed densely, a removed row replaced by the last one."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from stackyard.cache.entry import Candidate

#: Rows from which a partition keeps an approximate index as well: below them one exact pass
#: is quick (about 1 ms for 20,000 rows on one core; 5 ms at 100,000).
ANN_ROWS = 20_000
#: How many of the index's candidates are re-scored exactly, for each one asked for.
WIDEN = 8
#: Rows added to a growing index with each new entry, besides the entry itself. Building the
#: index for 20,000 rows at once would hold the event loop for seconds (0.4 ms a row on one
#: core); a little at a time, it costs each add a few milliseconds until it has caught up, and
#: the search stays exact until then.
CATCH_UP = 8


@functools.cache
def _usearch() -> Any:
    """usearch's index class, or None where it is not installed (the search stays exact)."""
    try:
        from usearch.index import Index
    except ImportError:
        return None
    return Index


class _Partition:
    __slots__ = (
        "ann",
        "by_label",
        "keys",
        "labels",
        "matrix",
        "next_label",
        "pending",
        "questions",
        "rows",
    )

    def __init__(self, dimension: int) -> None:
        self.matrix = np.zeros((8, dimension), dtype=np.float32)
        self.keys: list[str] = []
        self.questions: list[str] = []
        self.rows: dict[str, int] = {}
        self.ann: Any = None  # from ANN_ROWS rows on
        self.labels: dict[str, int] = {}  # the index's label of each key in it
        self.by_label: dict[int, str] = {}
        self.next_label = 0
        self.pending: dict[str, None] = {}  # keys not in the index yet, oldest first

    def _unindex(self, key: str) -> None:
        label = self.labels.pop(key, None)
        if label is not None:
            self.ann.remove(label)
            del self.by_label[label]
        self.pending.pop(key, None)

    def _catch_up(self) -> None:
        """Index the oldest pending rows, ``CATCH_UP`` and one more (the new row's share)."""
        for _ in range(min(CATCH_UP + 1, len(self.pending))):
            key = next(iter(self.pending))
            del self.pending[key]
            label = self.next_label
            self.next_label += 1
            self.labels[key] = label
            self.by_label[label] = key
            self.ann.add(label, self.matrix[self.rows[key]], threads=1)

    def add(self, key: str, vector: Any, question: str) -> None:
        row = self.rows.get(key)
        if row is None:
            row = len(self.keys)
            if row == len(self.matrix):
                grown = np.zeros((2 * row, self.matrix.shape[1]), dtype=np.float32)
                grown[:row] = self.matrix
                self.matrix = grown
            self.keys.append(key)
            self.questions.append(question)
            self.rows[key] = row
        else:
            self.questions[row] = question
        self.matrix[row] = vector
        if self.ann is None and len(self.keys) >= ANN_ROWS and _usearch() is not None:
            self.ann = _usearch()(ndim=self.matrix.shape[1], metric="cos", dtype="i8")
            self.pending = dict.fromkeys(self.keys)
        elif self.ann is not None:
            self._unindex(key)  # an updated vector is indexed again
            self.pending[key] = None
        if self.ann is not None:
            self._catch_up()

    def remove(self, key: str) -> None:
        row = self.rows.pop(key)
        if self.ann is not None:
            self._unindex(key)
        last = len(self.keys) - 1
        if row != last:
            self.matrix[row] = self.matrix[last]
            self.keys[row] = self.keys[last]
            self.questions[row] = self.questions[last]
            self.rows[self.keys[row]] = row
        self.keys.pop()
        self.questions.pop()

    def nearest(self, vector: Any, k: int) -> list[Candidate]:
        count = len(self.keys)
        if not count:
            return []
        if self.ann is not None and not self.pending and count > k * WIDEN:
            found = self.ann.search(vector, k * WIDEN, threads=1)
            rows = np.fromiter(
                (self.rows[self.by_label[int(label)]] for label in found.keys),
                dtype=np.int64,
            )
            similarities = np.einsum("ij,j->i", self.matrix[rows], vector)
            order = np.argsort(-similarities)[:k]
            return [
                Candidate(self.keys[rows[i]], float(similarities[i]), self.questions[rows[i]])
                for i in order
            ]
        # Not `@`: BLAS would wake its own threads, which then spin and slow the models that
        # run next on the same two cores; einsum's loop stays on this thread.
        similarities = np.einsum("ij,j->i", self.matrix[:count], vector)
        if count > k:
            top = np.argpartition(-similarities, k)[:k]
            top = top[np.argsort(-similarities[top])]
        else:
            top = np.argsort(-similarities)
        return [Candidate(self.keys[i], float(similarities[i]), self.questions[i]) for i in top]


class VectorTable:
    """Unit vectors by partition and entry key."""

    def __init__(self) -> None:
        self._partitions: dict[str, _Partition] = {}
        self._where: dict[str, str] = {}  # entry key -> partition

    def __len__(self) -> int:
        return len(self._where)

    def add(self, partition: str, key: str, vector: Any, question: str) -> None:
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if self._where.get(key, partition) != partition:
            self.remove(key)
        table = self._partitions.get(partition)
        if table is None:
            table = self._partitions[partition] = _Partition(len(vector))
        table.add(key, vector, question)
        self._where[key] = partition

    def remove(self, key: str) -> bool:
        partition = self._where.pop(key, None)
        if partition is None:
            return False
        table = self._partitions[partition]
        table.remove(key)
        if not table.keys:
            del self._partitions[partition]
        return True

    def nearest(self, partition: str, vector: Any, k: int) -> list[Candidate]:
        table = self._partitions.get(partition)
        if table is None:
            return []
        return table.nearest(np.asarray(vector, dtype=np.float32).reshape(-1), k)

    def clear(self) -> None:
        self._partitions.clear()
        self._where.clear()
