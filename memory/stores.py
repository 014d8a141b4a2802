"""Durable homes for memory records: chromadb (persistent, the default) and a dict (tests, small runs)."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from datetime import datetime
from pathlib import Path

import numpy as np

from memory.records import MemoryRecord

#: chromadb rejects batches above its own limit (5461 here); stay under it.
_CHROMA_BATCH = 5000


def _lean_schema():
    """Retrieval is exact and in-process, so chroma's indexes only need to exist, not to be good.

    Cheap HNSW construction and no full-text index on documents roughly triple insert throughput
    (docs/benchmarks.md); ANN queries and metadata filters still work.
    """
    from chromadb import FtsIndexConfig, HnswIndexConfig, K, Schema, VectorIndexConfig

    schema = Schema()
    hnsw = HnswIndexConfig(ef_construction=16, max_neighbors=4, batch_size=10_000, sync_threshold=50_000)
    schema.create_index(config=VectorIndexConfig(space="cosine", hnsw=hnsw))
    schema.delete_index(config=FtsIndexConfig(), key=K.DOCUMENT)
    return schema


class MemoryStore(ABC):
    """Where records persist; streams keep their own in-process index for scoring.

    Writes may be buffered: what `flush` has written survives a crash, like the event log's ticks.
    """

    @abstractmethod
    def add(self, records: list[MemoryRecord], vectors: np.ndarray) -> None:
        """Accept new records (without embeddings) and their embeddings, one float32 row each."""

    @abstractmethod
    def touch(self, ids: list[str], when: datetime) -> None:
        """Record that these memories were just retrieved."""

    @abstractmethod
    def discard(self, ids: list[str]) -> None:
        """Forget records a rewind left behind, so their ids can be written again (applied at once)."""

    @abstractmethod
    def load(self, agent: str) -> list[MemoryRecord]:
        """All of an agent's flushed records, embeddings included, oldest first."""

    def flush(self, access_times: bool = True) -> None:
        """Make accepted writes durable: new records always, access times only when asked.

        The engine flushes records every `memory.flush_every` ticks and access times only at the end:
        snapshots carry them, and writing them each tick would cost chroma more than all the records do.
        """


class InMemoryStore(MemoryStore):
    """Dicts of records and their vectors: nothing survives the process.

    Vectors are kept apart as float32 rows, not as the records' lists of Python floats, which took 8x
    the bytes and were walked by the collector (docs/benchmarks.md, a population); `load` puts them back.
    The records are the very objects the stream indexes, not copies: the stream marks them accessed in
    place, which is what `touch` would do here, and a town's memories are held once.
    """

    def __init__(self) -> None:
        self.records: dict[str, MemoryRecord] = {}
        self.vectors: dict[str, np.ndarray] = {}

    def add(self, records: list[MemoryRecord], vectors: np.ndarray) -> None:
        for record, vector in zip(records, np.asarray(vectors, dtype=np.float32), strict=True):
            self.records[record.id] = record
            self.vectors[record.id] = vector

    def touch(self, ids: list[str], when: datetime) -> None:
        for memory_id in ids:
            self.records[memory_id].last_accessed = when

    def discard(self, ids: list[str]) -> None:
        for memory_id in ids:
            self.records.pop(memory_id, None)
            self.vectors.pop(memory_id, None)

    def load(self, agent: str) -> list[MemoryRecord]:
        return [self._with_vector(r) for r in self.records.values() if r.agent == agent]

    def _with_vector(self, record: MemoryRecord) -> MemoryRecord:
        vector = self.vectors.get(record.id)
        return record if vector is None else record.model_copy(update={"embedding": vector.tolist()})


def _metadata(record: MemoryRecord) -> dict[str, str | int]:
    """Filterable fields as their own keys; provenance, never filtered on, packed in one (each key costs a row)."""
    return {
        "agent": record.agent, "kind": record.kind, "created": record.created.isoformat(),
        "last_accessed": record.last_accessed.isoformat(), "importance": record.importance, "depth": record.depth,
        "provenance": json.dumps({"evidence": record.evidence, "source_event": record.source_event}),
    }


def _position(memory_id: str) -> int:
    """Streams number their records `agent#N`; order by N."""
    tail = memory_id.rsplit("#", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class ChromaStore(MemoryStore):
    """A chromadb PersistentClient collection in the run folder, metadata filterable by agent, kind, time.

    Writes wait for `flush`, which sends them in as few calls as chroma allows: each call costs far
    more than each record (docs/benchmarks.md).
    """

    def __init__(self, path: Path, collection: str = "memories") -> None:
        import chromadb
        from chromadb.config import Settings

        path.mkdir(parents=True, exist_ok=True)
        self.client = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
        # embedding_function=None: we always pass vectors, and chroma's default would download a model.
        self.collection = self.client.get_or_create_collection(
            collection, embedding_function=None, schema=_lean_schema()
        )
        self._new: list[tuple[MemoryRecord, np.ndarray]] = []
        self._touched: dict[str, datetime] = {}

    def add(self, records: list[MemoryRecord], vectors: np.ndarray) -> None:
        """Copies wait for `flush`: the stream marks its records accessed in place, and a row is written as added."""
        self._new.extend(zip((r.model_copy() for r in records), vectors, strict=True))

    def touch(self, ids: list[str], when: datetime) -> None:
        for memory_id in ids:
            self._touched[memory_id] = when

    def flush(self, access_times: bool = True) -> None:
        new, self._new = self._new, []
        for start in range(0, len(new), _CHROMA_BATCH):
            batch, vectors = zip(*new[start : start + _CHROMA_BATCH])
            self.collection.add(
                ids=[r.id for r in batch],
                # One float32 matrix: chroma checks Python lists value by value, arrays in one go.
                embeddings=np.stack(vectors),
                documents=[r.text for r in batch],
                metadatas=[_metadata(r) for r in batch],
            )
        if not access_times:
            return
        touched, self._touched = list(self._touched.items()), {}
        for start in range(0, len(touched), _CHROMA_BATCH):
            batch = touched[start : start + _CHROMA_BATCH]
            self.collection.update(
                ids=[memory_id for memory_id, _ in batch],
                metadatas=[{"last_accessed": when.isoformat()} for _, when in batch],
            )

    def discard(self, ids: list[str]) -> None:
        if ids:
            self.collection.delete(ids=ids)

    def load(self, agent: str) -> list[MemoryRecord]:
        got = self.collection.get(where={"agent": agent}, include=["embeddings", "metadatas", "documents"])
        rows = sorted(zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"]), key=lambda r: _position(r[0]))
        return [
            MemoryRecord(
                id=memory_id, agent=meta["agent"], kind=meta["kind"], text=text,
                created=datetime.fromisoformat(meta["created"]),
                last_accessed=datetime.fromisoformat(meta["last_accessed"]),
                importance=meta["importance"], depth=meta["depth"], **json.loads(meta["provenance"]),
                embedding=[float(x) for x in embedding],
            )
            for memory_id, text, meta, embedding in rows
        ]
