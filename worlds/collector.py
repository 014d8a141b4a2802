"""When Python's cycle collector runs during a run: between ticks, as often as the run's kept objects grow."""

from __future__ import annotations

import gc
from types import TracebackType


class TickCollector:
    """Reference counting frees nearly all of a run's garbage (a few hundred cyclic objects a tick in a town of
    10,000); the cycle collector's own schedule, a young collection every so many allocations, re-scanned each
    tick's live working set again and again, and that set grows with the town, so a larger town cost more per
    agent (docs/benchmarks.md, a population).

    Instead, while a run goes: no automatic collection; after each tick, what survived it is frozen out of
    collections; and once the frozen objects have grown by `growth` times since the last full collection, one
    full collection frees the cycles that piled up. That costs time in proportion to what the run keeps, and
    holds cyclic garbage to at most (`growth` - 1) times the objects kept. The growth is measured against
    everything frozen, the caller's objects included, so a small town run inside a large process may end before
    its garbage is worth a collection; what is left is collected on the usual schedule once the run hands the
    collector back. A caller that froze objects itself or turned the collector off keeps its own arrangement.
    """

    def __init__(self, growth: float = 2.0) -> None:
        self.growth = growth
        self.active = False
        #: Objects frozen right after the last full collection (or at the start), and frozen since, as the
        #: collector's net allocation count tells it: counting the frozen list itself walks the whole heap.
        self.frozen_after_collection = 0
        self.frozen = 0
        #: Full collections run, and the cyclic objects they freed: what a test or a profiler reads.
        self.collections = 0
        self.freed = 0

    def __enter__(self) -> TickCollector:
        self.active = gc.isenabled() and gc.get_freeze_count() == 0
        if self.active:
            gc.disable()
            self._freeze_all()
        return self

    def tick_done(self) -> None:
        """A tick is in the log: what it left behind is long-lived now, or garbage for the next full collection."""
        if not self.active:
            return
        self.frozen += gc.get_count()[0]
        gc.freeze()
        if self.frozen > self.growth * self.frozen_after_collection:
            gc.unfreeze()
            self.freed += gc.collect()
            self.collections += 1
            self._freeze_all()

    def _freeze_all(self) -> None:
        gc.freeze()
        self.frozen = self.frozen_after_collection = gc.get_freeze_count()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.active:
            gc.unfreeze()
            gc.enable()
            self.active = False
