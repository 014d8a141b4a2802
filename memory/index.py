"""One agent's memories as contiguous arrays, so scoring every candidate is a few vector operations."""

from __future__ import annotations

from datetime import datetime

import numpy as np

#: Times are stored as hours since this moment (float64 keeps sub-second precision for centuries).
EPOCH = datetime(2000, 1, 1)


def hours(moment: datetime) -> float:
    return (moment.replace(tzinfo=None) - EPOCH).total_seconds() / 3600.0


class VectorIndex:
    """Growable embeddings plus importance and last-access arrays; memory i is column / element i.

    Embeddings are stored one memory per *column* (dimensions x capacity): OpenBLAS streams
    `query @ columns` at nearly twice the speed of `rows @ query` on the same bytes, and the scan
    over every memory is what retrieval's time is made of (docs/benchmarks.md).
    """

    def __init__(self, dimensions: int = 0, capacity: int = 16) -> None:
        """`dimensions` 0 takes the width of the first vectors appended, so any embedder fits; the arrays start
        small and double as they fill, so ten thousand agents with a few memories each stay a few megabytes."""
        self.dimensions = dimensions
        self.size = 0
        self.columns = np.zeros((dimensions, capacity), dtype=np.float32)
        self.importance = np.zeros(capacity, dtype=np.float32)
        self.last_access = np.zeros(capacity, dtype=np.float64)

    def _grow(self, needed: int) -> None:
        capacity = self.columns.shape[1]
        if needed <= capacity:
            return
        new = max(needed, capacity * 2)
        columns = np.zeros((self.dimensions, new), dtype=np.float32)
        columns[:, : self.size] = self.columns[:, : self.size]
        self.columns = columns
        self.importance = np.resize(self.importance, new)
        self.last_access = np.resize(self.last_access, new)

    def append(self, vectors: np.ndarray, importance: np.ndarray, last_access: np.ndarray) -> None:
        """Add rows; vectors are normalised here so relevance is a dot product."""
        count = vectors.shape[0]
        if count == 0:
            return
        if self.size == 0 and self.dimensions != vectors.shape[1]:
            self.dimensions = vectors.shape[1]
            self.columns = np.zeros((self.dimensions, self.columns.shape[1]), dtype=np.float32)
        if vectors.shape[1] != self.dimensions:
            raise ValueError(f"embedding width {vectors.shape[1]} differs from the index's {self.dimensions}")
        self._grow(self.size + count)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        end = self.size + count
        self.columns[:, self.size : end] = (vectors / norms).T
        self.importance[self.size : end] = importance
        self.last_access[self.size : end] = last_access
        self.size = end

    def view(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(dimensions x size columns, importance, last access) of the memories held; views, not copies."""
        return self.columns[:, : self.size], self.importance[: self.size], self.last_access[: self.size]
