"""Generative Agents' retrieval score: recency + importance + relevance, each min-max normalised."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

#: The value every candidate gets when a term cannot tell candidates apart (one candidate, all equal).
NEUTRAL = 0.5


class RetrievalWeights(BaseModel):
    """The three weights and the hourly recency decay; settable per scenario."""

    model_config = ConfigDict(extra="forbid")

    recency: float = Field(default=1.0, ge=0)
    importance: float = Field(default=1.0, ge=0)
    relevance: float = Field(default=1.0, ge=0)
    decay: float = Field(default=0.995, gt=0, le=1)


class ScoredMemories(BaseModel):
    """Top-k candidate positions, best first, with each normalised partial score and the total."""

    indices: list[int]
    recency: list[float]
    importance: list[float]
    relevance: list[float]
    total: list[float]


def normalise(values: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1]; a term with no spread gives every candidate NEUTRAL."""
    if values.size == 0:
        return values
    low, high = values.min(), values.max()
    if high - low <= 1e-12:
        return np.full_like(values, NEUTRAL)
    return (values - low) / (high - low)


def score_memories(
    query: np.ndarray,
    columns: np.ndarray,
    importance: np.ndarray,
    hours_since_access: np.ndarray,
    weights: RetrievalWeights,
    k: int,
) -> ScoredMemories:
    """Exact scored top-k over all candidates; `columns` (dimensions x n) and `query` are unit vectors."""
    n = columns.shape[1]
    if n == 0 or k <= 0:
        return ScoredMemories(indices=[], recency=[], importance=[], relevance=[], total=[])
    recency = normalise(np.exp(hours_since_access * np.float32(np.log(weights.decay))).astype(np.float32))
    imp = normalise(importance.astype(np.float32, copy=False))
    relevance = normalise(query.astype(np.float32, copy=False) @ columns)
    total = weights.recency * recency + weights.importance * imp + weights.relevance * relevance
    k = min(k, n)
    top = np.argpartition(-total, k - 1)[:k] if k < n else np.arange(n)
    top = top[np.lexsort((top, -total[top]))]  # best first; ties broken by insertion order
    return ScoredMemories(
        indices=top.tolist(),
        recency=recency[top].tolist(),
        importance=imp[top].tolist(),
        relevance=relevance[top].tolist(),
        total=total[top].tolist(),
    )
