"""Who is calling and where reports go: passed explicitly to every gateway call."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from pydantic import BaseModel

from agents.seeding import stable_int

RecordSink = Callable[[BaseModel], None]


@dataclass
class CallScope:
    """The caller's identity, a seed base for per-call seeds, and the sink for reports."""

    agent: str | None = None
    seed: int = 0
    sink: RecordSink | None = None
    _counter: Iterator[int] = field(default_factory=itertools.count, repr=False)

    def next_seed(self, purpose: str) -> int:
        """Derive a distinct, reproducible seed for each successive call in this scope."""
        return stable_int(self.seed, self.agent, purpose, next(self._counter), bits=31)

    def emit(self, record: BaseModel) -> None:
        if self.sink is not None:
            self.sink(record)

    def branch(self, label: str) -> tuple[CallScope, list[BaseModel]]:
        """A scope for one of several concurrent calls, with its own seed and a buffer to hand back in order."""
        buffer: list[BaseModel] = []
        return CallScope(agent=self.agent, seed=stable_int(self.seed, label, bits=31), sink=buffer.append), buffer
