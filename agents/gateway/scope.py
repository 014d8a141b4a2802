"""Who is calling and where reports go, carried by a context variable across asyncio tasks."""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from agents.gateway.records import GatewayRecord

RecordSink = Callable[[GatewayRecord], None]


@dataclass
class CallScope:
    """The caller's identity, a seed base for per-call seeds, and the sink for reports."""

    agent: str | None = None
    seed: int = 0
    sink: RecordSink | None = None
    _counter: Iterator[int] = field(default_factory=itertools.count, repr=False)

    def next_seed(self, purpose: str) -> int:
        """Derive a distinct, reproducible seed for each successive call in this scope."""
        n = next(self._counter)
        digest = hashlib.sha256(f"{self.seed}|{self.agent}|{purpose}|{n}".encode()).digest()
        return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF

    def emit(self, record: GatewayRecord) -> None:
        if self.sink is not None:
            self.sink(record)


_current: contextvars.ContextVar[CallScope | None] = contextvars.ContextVar("simulacra_call_scope", default=None)


def current_scope() -> CallScope:
    """The active scope, or an anonymous one that keeps reports nowhere."""
    scope = _current.get()
    return scope if scope is not None else CallScope()


@contextlib.contextmanager
def call_scope(agent: str | None, seed: int, sink: RecordSink | None) -> Iterator[CallScope]:
    """Attribute every gateway call made inside the block to `agent`, reporting into `sink`."""
    scope = CallScope(agent=agent, seed=seed, sink=sink)
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)
