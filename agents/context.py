"""The per-tick context: when it is, a seed per purpose, and event buffers joined in a fixed order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum

from pydantic import BaseModel

from agents.gateway import CallScope
from agents.seeding import stable_int


class Phase(IntEnum):
    """The parts of a tick, in the order their events appear in the log."""

    DECIDE = 1
    APPLY = 2
    ADVANCE = 3
    MEMORY = 4
    REFLECT = 5
    PROBE = 6


@dataclass
class TickContext:
    """Handed to everything that acts in a tick; replaces ambient state so work can run anywhere.

    Each piece of concurrent work asks for its own scope (a buffer plus a seed); the engine joins
    the buffers sorted by (phase, owner), so the log never depends on which task finished first.
    """

    tick: int
    now: datetime
    step: timedelta
    run_seed: int
    _scopes: dict[tuple[int, str], CallScope] = field(default_factory=dict)
    _buffers: dict[tuple[int, str], list[BaseModel]] = field(default_factory=dict)

    def scope(self, phase: Phase, owner: str, agent: str | None = None) -> CallScope:
        """The call scope (seed + event buffer) of one owner's work in one phase; the same one if asked twice."""
        key = (int(phase), owner)
        if key not in self._scopes:
            buffer: list[BaseModel] = []
            self._buffers[key] = buffer
            self._scopes[key] = CallScope(agent=agent, seed=self.seed(phase.name, owner), sink=buffer.append)
        return self._scopes[key]

    def seed(self, *purpose: object) -> int:
        """A seed for one purpose in this tick, equal in every process."""
        return stable_int(self.run_seed, self.tick, *purpose)

    def drain(self) -> list[BaseModel]:
        """Everything emitted so far, in (phase, owner) order; buffers are emptied."""
        out: list[BaseModel] = []
        for key in sorted(self._buffers):
            out.extend(self._buffers[key])
            self._buffers[key].clear()
        return out

    @property
    def end(self) -> datetime:
        """The moment this tick hands over to the next."""
        return self.now + self.step
