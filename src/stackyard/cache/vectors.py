"""The semantic tier's in-process vector table: the embedded questions of cached entries, kept
apart by partition (tenant, model, system prompt, tools, format, earlier turns), so that a
search can only ever see entries of the request's own partition. Within a partition the search
is exact (one matrix product over unit vectors); a partition's rows are packed densely, a
removed row replaced by the last one."""

from __future__ import annotations

from typing import Any

import numpy as np

from stackyard.cache.entry import Candidate


class _Partition:
    __slots__ = ("keys", "matrix", "questions", "rows")

    def __init__(self, dimension: int) -> None:
        self.matrix = np.zeros((8, dimension), dtype=np.float32)
        self.keys: list[str] = []
        self.questions: list[str] = []
        self.rows: dict[str, int] = {}

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

    def remove(self, key: str) -> None:
        row = self.rows.pop(key)
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
