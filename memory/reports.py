"""What the memory stream reports; the event log stores these so a run can show why an agent said what it said."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from memory.records import MemoryRecord


class MemoryAdded(BaseModel):
    kind: Literal["memory_added"] = "memory_added"
    agent: str
    memory: MemoryRecord


class ImportanceScored(BaseModel):
    """One batched importance call's outcome for an agent's new records."""

    kind: Literal["importance_scored"] = "importance_scored"
    agent: str
    texts: list[str]
    scores: list[int]


class RetrievedMemory(BaseModel):
    """One retrieved memory with its three normalised partial scores and their weighted total."""

    id: str
    text: str
    recency: float
    importance: float
    relevance: float
    score: float


class MemoryRetrieved(BaseModel):
    kind: Literal["memory_retrieved"] = "memory_retrieved"
    agent: str
    query: str
    k: int
    candidates: int
    results: list[RetrievedMemory]
    accessed_at: datetime


class CitedInsight(BaseModel):
    text: str
    evidence: list[str]


class ReflectionRecorded(BaseModel):
    """A reflection pass: the questions asked, the insights kept, and citations that pointed nowhere."""

    kind: Literal["reflection"] = "reflection"
    agent: str
    importance_sum: float
    questions: list[str]
    insights: list[CitedInsight]
    dropped_citations: list[int]


MemoryReport = MemoryAdded | ImportanceScored | MemoryRetrieved | ReflectionRecorded
