"""Evaluated prompt prefixes kept as llama.cpp sequence states, so a call evaluates only what follows its prefix.

Determinism rests on one rule, kept by the backend and its decoder: every prompt is evaluated as its
prefix (the rendered leading system message) and then the rest, whether the prefix comes from here
or is evaluated afresh. Restoring a kept state gives the same cache bits as evaluating it, so keeping
prefixes never changes a call's text; this store only decides how often that is cheap.
"""

from __future__ import annotations

from collections import OrderedDict
from pydantic import BaseModel

#: The default bound (`prefix_mb=256` in a model spec): about a hundred 200-token prefixes of the 0.5B
#: model (12 KB a token).
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


class PrefixCounters(BaseModel):
    """How the prefixes fared, for benchmarks and docs."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0
    bytes: int = 0


class PrefixStates:
    """Least recently used first out, bounded by bytes; keyed by the prefix's tokens themselves."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._states: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        self.counters = PrefixCounters()

    def get(self, tokens: tuple[int, ...]) -> bytes | None:
        state = self._states.get(tokens)
        if state is None:
            self.counters.misses += 1
            return None
        self._states.move_to_end(tokens)
        self.counters.hits += 1
        return state

    def put(self, tokens: tuple[int, ...], state: bytes) -> None:
        """Keep a state unless it alone is over the bound; the oldest go until the rest fit."""
        if len(state) > self.max_bytes or tokens in self._states:
            return
        self._states[tokens] = state
        self.counters.bytes += len(state)
        while self.counters.bytes > self.max_bytes:
            _, old = self._states.popitem(last=False)
            self.counters.bytes -= len(old)
            self.counters.evictions += 1
