"""The memory record: one natural-language fact an agent holds, with its scores and provenance."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

MemoryKind = Literal["observation", "reflection", "plan", "chat", "session", "summary"]


class MemoryRecord(BaseModel):
    """A memory as stored; `embedding` is left out of logs (see `without_embedding`)."""

    id: str
    agent: str
    kind: MemoryKind
    text: str
    created: datetime
    last_accessed: datetime
    importance: int = Field(ge=1, le=10)
    evidence: list[str] = Field(default_factory=list)
    depth: int = Field(default=0, ge=0)
    source_event: int | None = None
    embedding: list[float] | None = Field(default=None, repr=False)

    def without_embedding(self) -> MemoryRecord:
        return self.model_copy(update={"embedding": None})

    @classmethod
    def checked(cls, **fields: object) -> MemoryRecord:
        """A record from values its maker has already checked: no validation, and one field set shared by
        all such records (every field counts as given, which nothing here reads), where each would
        otherwise carry its own: 728 bytes of a record's 1.4 KB."""
        return cls.model_construct(_fields_set=_EVERY_FIELD, **fields)


#: Shared by `MemoryRecord.checked` records; setting a field adds its name, already here, so it never changes.
_EVERY_FIELD = set(MemoryRecord.model_fields)
