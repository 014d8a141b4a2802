"""An agent's memory stream: batched importance, embedded records, exact scored retrieval, reflection trigger."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

import numpy as np
from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field

from memory.embedders import embed_matrix, embed_query_row
from memory.index import VectorIndex, hours
from memory.records import MemoryKind, MemoryRecord
from memory.reports import (
    ImportanceScored,
    MemoryAdded,
    MemoryReport,
    MemoryRetrieved,
    RetrievedMemory,
)
from memory.scoring import RetrievalWeights, score_memories
from memory.stores import MemoryStore



class Trace(Protocol):
    """Where the caller wants reports to go; passed per call, so nothing depends on ambient state."""

    def emit(self, report: BaseModel) -> None: ...


#: Given an agent, new memory texts and the caller's trace, one 1-10 score per text (one call for the batch).
ImportanceScorer = Callable[[str, list[str], Trace | None], Awaitable[list[int]]]


def report(trace: Trace | None, item: MemoryReport) -> None:
    """Send a report to the trace, if the caller gave one."""
    if trace is not None:
        trace.emit(item)
#: Reported scores are rounded so logs match across BLAS builds that sum in another order (ranking is unrounded).
REPORT_DIGITS = 6


class PendingMemory(BaseModel):
    """A memory waiting for its batched importance call."""

    kind: MemoryKind
    text: str
    created: datetime
    evidence: list[str] = Field(default_factory=list)
    source_event: int | None = None


class ScoredBatch(BaseModel):
    """The first `count` pending memories, scored and embedded, waiting for `MemoryStream.apply`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    count: int
    texts: list[str] = Field(default_factory=list)
    scores: list[int] = Field(default_factory=list)
    #: One float32 row per text.
    vectors: np.ndarray = Field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))


class MemoryStream:
    """Everything one agent remembers, durable in a store and scored from an in-process index."""

    def __init__(
        self,
        agent: str,
        store: MemoryStore,
        embedder: Embeddings,
        scorer: ImportanceScorer,
        weights: RetrievalWeights | None = None,
        reflection_threshold: float = 150.0,
        durable_until: datetime | None = None,
    ) -> None:
        self.agent = agent
        self.store = store
        self.embedder = embedder
        self.scorer = scorer
        self.weights = weights or RetrievalWeights()
        self.reflection_threshold = reflection_threshold
        self.index = VectorIndex()
        self.records: list[MemoryRecord] = []
        self.by_id: dict[str, int] = {}
        self.pending: list[PendingMemory] = []
        self.importance_since_reflection = 0.0
        self._load(durable_until)

    def _load(self, durable_until: datetime | None) -> None:
        """Rebuild the index from the store; the reflection sum is derived, so nothing else is saved.

        Rows created after `durable_until` (the last tick the event log made durable) are ignored:
        the log is the point of truth, and a crash may leave the store a tick ahead of it.
        """
        stored = self.store.load(self.agent)
        self._keep(stored, [r for r in stored if durable_until is None or r.created <= durable_until])
        for record in reversed(self.records):
            if record.kind == "reflection":
                break
            self.importance_since_reflection += record.importance

    def _keep(self, stored: list[MemoryRecord], kept: list[MemoryRecord]) -> None:
        """Index exactly `kept`, a prefix of the stored rows, and drop the rest so their ids can be written again."""
        self.store.discard([r.id for r in stored[len(kept):]])
        self.index = VectorIndex()
        self.records, self.by_id = [], {}
        if kept:
            self.index_records(kept, np.asarray([r.embedding for r in kept], dtype=np.float32))

    def index_records(self, records: list[MemoryRecord], vectors: np.ndarray) -> None:
        """Make already-stored records retrievable: used on reload, and by bulk loaders with a vector matrix."""
        self.index.append(
            vectors,
            np.asarray([r.importance for r in records], dtype=np.float32),
            np.asarray([hours(r.last_accessed) for r in records], dtype=np.float64),
        )
        for record in records:
            self.by_id[record.id] = len(self.records)
            self.records.append(record if record.embedding is None else record.without_embedding())

    def remember(
        self, kind: MemoryKind, text: str, created: datetime, source_event: int | None = None,
        evidence: list[str] | None = None,
    ) -> None:
        """Queue a memory; it becomes retrievable once a batch holding it is applied (`commit`, `apply`)."""
        self.pending.append(
            PendingMemory(kind=kind, text=text, created=created, source_event=source_event, evidence=evidence or [])
        )

    def insert(self, records: list[MemoryRecord], vectors: np.ndarray, trace: Trace | None = None) -> None:
        """Add fully formed records (importance set, no embedding) and their vectors to the index and the store."""
        self.store.add(records, vectors)
        self.index_records(records, vectors)
        for record in records:
            if record.kind != "reflection":
                self.importance_since_reflection += record.importance
            # A copy: the record is marked accessed in place before the event is written.
            report(trace, MemoryAdded(agent=self.agent, memory=record.without_embedding()))

    async def commit(self, trace: Trace | None = None) -> list[MemoryRecord]:
        """Score the pending memories in one importance call, embed them in one batch, and store them."""
        return self.apply(await self.score_pending(trace), trace)

    async def score_pending(self, trace: Trace | None = None, count: int | None = None) -> ScoredBatch:
        """Score and embed the first `count` queued memories (all) without changing anything, so it can run
        beside other thinking: the queue only grows meanwhile, so a count taken up front names a fixed batch.

        Nothing queued is lost when scoring or embedding fails: the memories stay pending.
        """
        texts = [p.text for p in self.pending[:count]]
        if not texts:
            return ScoredBatch(count=0)
        scores = [min(10, max(1, int(s))) for s in await self.scorer(self.agent, texts, trace)]
        if len(scores) != len(texts):
            raise ValueError(f"importance scorer returned {len(scores)} scores for {len(texts)} memories")
        report(trace, ImportanceScored(agent=self.agent, texts=texts, scores=scores))
        vectors = await embed_matrix(self.embedder, texts)
        if len(vectors) != len(texts):
            raise ValueError(f"embedder returned {len(vectors)} vectors for {len(texts)} memories")
        return ScoredBatch(count=len(texts), texts=texts, scores=scores, vectors=vectors)

    def apply(self, batch: ScoredBatch, trace: Trace | None = None) -> list[MemoryRecord]:
        """Make a scored batch retrievable: the first `batch.count` pending memories become records."""
        taken = self.pending[:batch.count]
        if [p.text for p in taken] != batch.texts:
            raise RuntimeError(f"{self.agent}: the pending memories changed while they were being scored")
        self.pending = self.pending[batch.count:]
        records = []
        for number, (item, score) in enumerate(zip(taken, batch.scores), start=len(self.records)):
            depth = 1 + max((self.records[self.by_id[e]].depth for e in item.evidence), default=0) if item.kind == "reflection" else 0
            records.append(
                MemoryRecord.checked(
                    id=f"{self.agent}#{number}", agent=self.agent, kind=item.kind, text=item.text,
                    created=item.created, last_accessed=item.created, importance=score, evidence=item.evidence,
                    depth=depth, source_event=item.source_event,
                )
            )
        if records:
            self.insert(records, batch.vectors, trace)
        return records

    async def retrieve(
        self, query: str, now: datetime, k: int = 10, trace: Trace | None = None
    ) -> list[RetrievedMemory]:
        """Top-k memories for a query by weighted recency, importance and relevance; marks them accessed."""
        vector = await embed_query_row(self.embedder, query)
        return self.retrieve_by_vector(query, vector, now, k, trace)

    def retrieve_by_vector(
        self, query: str, vector: np.ndarray, now: datetime, k: int = 10, trace: Trace | None = None
    ) -> list[RetrievedMemory]:
        if not self.records:
            report(trace, MemoryRetrieved(agent=self.agent, query=query, k=k, candidates=0, results=[], accessed_at=now))
            return []
        columns, importance, last_access = self.index.view()
        norm = float(np.linalg.norm(vector)) or 1.0
        now_hours = hours(now)
        elapsed = np.maximum(now_hours - last_access, 0.0).astype(np.float32)
        scored = score_memories(vector / norm, columns, importance, elapsed, self.weights, k)
        results = []
        for i, position in enumerate(scored.indices):
            record = self.records[position]
            results.append(
                RetrievedMemory(
                    id=record.id, text=record.text, recency=round(scored.recency[i], REPORT_DIGITS),
                    importance=round(scored.importance[i], REPORT_DIGITS),
                    relevance=round(scored.relevance[i], REPORT_DIGITS), score=round(scored.total[i], REPORT_DIGITS),
                )
            )
            record.last_accessed = now  # in place: a copy per retrieved memory costs more than the scoring
        if scored.indices:
            self.index.last_access[scored.indices] = now_hours
            self.store.touch([r.id for r in results], now)
        report(
            trace,
            MemoryRetrieved(agent=self.agent, query=query, k=k, candidates=len(self.records), results=results,
                            accessed_at=now),
        )
        return results

    def get_state(self) -> dict:
        """What a snapshot needs; the records themselves (and their embeddings) stay in the store."""
        return {
            "count": len(self.records),
            "last_accessed": [r.last_accessed.isoformat() for r in self.records],
            "pending": [p.model_dump(mode="json") for p in self.pending],
            "importance_since_reflection": self.importance_since_reflection,
        }

    def set_state(self, state: dict) -> None:
        """Rewind to a snapshot: the first `count` stored records, with their access times as they were."""
        stored = self.store.load(self.agent)
        if len(stored) < state["count"]:
            raise ValueError(f"{self.agent}: the store holds {len(stored)} memories, the snapshot needs {state['count']}")
        accessed = [datetime.fromisoformat(t) for t in state["last_accessed"]]
        self._keep(stored, [r.model_copy(update={"last_accessed": t}) for r, t in zip(stored, accessed)])
        self.pending = [PendingMemory.model_validate(p) for p in state["pending"]]
        self.importance_since_reflection = state["importance_since_reflection"]

    def recent(self, n: int = 100) -> list[MemoryRecord]:
        """The last `n` memories by creation, oldest first."""
        return self.records[-n:]

    def get(self, memory_id: str) -> MemoryRecord | None:
        position = self.by_id.get(memory_id)
        return None if position is None else self.records[position]

    def should_reflect(self) -> bool:
        return self.importance_since_reflection >= self.reflection_threshold

    def reset_reflection(self) -> None:
        self.importance_since_reflection = 0.0
