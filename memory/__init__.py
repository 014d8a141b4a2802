"""What agents remember: records, importance, scored retrieval, reflection triggers, stores, embedders.

Imports nothing else of simulacra: it is handed an embedder and an importance scorer.
"""

from memory.embedders import CachedEmbeddings, FakeHashEmbeddings, build_embedder
from memory.records import MemoryKind, MemoryRecord
from memory.reports import (
    ImportanceScored,
    MemoryAdded,
    MemoryReport,
    MemoryRetrieved,
    ReflectionRecorded,
    RetrievedMemory,
)
from memory.scoring import RetrievalWeights, score_memories
from memory.stores import ChromaStore, InMemoryStore, MemoryStore
from memory.stream import ImportanceScorer, MemoryStream

__all__ = [
    "CachedEmbeddings", "ChromaStore", "FakeHashEmbeddings", "ImportanceScored", "ImportanceScorer", "InMemoryStore",
    "MemoryAdded", "MemoryKind", "MemoryRecord", "MemoryReport", "MemoryRetrieved", "MemoryStore", "MemoryStream",
    "ReflectionRecorded", "RetrievalWeights", "RetrievedMemory", "build_embedder", "score_memories",
]
