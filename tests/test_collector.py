"""The run's collector policy: nothing automatic during a run, a full collection as the kept objects grow."""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path

import pytest

from tests.conftest import SMALL_TOWN
from worlds.collector import TickCollector
from worlds.runner import execute_run
from worlds.scenario import parse_scenario


class Node:
    """A cycle of two: only the cycle collector frees it."""

    def __init__(self) -> None:
        self.other = self


@pytest.fixture(autouse=True)
def collector_restored():
    """Each test starts and ends with the collector on and nothing frozen, as a run's caller has it."""
    gc.unfreeze()
    gc.enable()
    yield
    gc.unfreeze()
    gc.enable()


def test_no_automatic_collection_during_a_run_and_the_collector_back_after() -> None:
    with TickCollector() as collector:
        assert collector.active and not gc.isenabled()
        assert gc.get_freeze_count() > 0  # what existed when the run started is out of every collection
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_cycles_from_ticks_are_freed_once_the_kept_objects_grow_by_the_factor() -> None:
    with TickCollector(growth=1.5) as collector:
        start = gc.get_freeze_count()
        garbage = Node()
        gone = weakref.ref(garbage)
        del garbage
        collector.tick_done()  # a tick that left one cycle: frozen, not yet collected
        assert gone() is not None and collector.collections == 0
        kept = [[] for _ in range(start)]  # the run keeps more than half as much again
        collector.tick_done()
        assert gone() is None and collector.collections == 1 and collector.freed >= 1
        assert collector.frozen_after_collection > len(kept)  # what the run keeps is frozen again


def test_a_caller_that_froze_objects_keeps_its_own_arrangement() -> None:
    gc.freeze()
    frozen = gc.get_freeze_count()
    with TickCollector() as collector:
        collector.tick_done()
        assert not collector.active and gc.isenabled() and gc.get_freeze_count() == frozen
    assert gc.get_freeze_count() == frozen


def test_a_caller_that_turned_the_collector_off_keeps_it_off() -> None:
    gc.disable()
    with TickCollector() as collector:
        collector.tick_done()
        assert not collector.active and gc.get_freeze_count() == 0
    assert not gc.isenabled() and gc.get_freeze_count() == 0


def test_a_run_inside_a_run_leaves_the_outer_arrangement_alone() -> None:
    with TickCollector() as outer:
        frozen = gc.get_freeze_count()
        with TickCollector() as inner:
            inner.tick_done()
            assert not inner.active
        assert outer.active and not gc.isenabled() and gc.get_freeze_count() == frozen
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_the_kept_objects_are_counted_without_walking_the_heap() -> None:
    with TickCollector(growth=100.0) as collector:
        kept = [[] for _ in range(5000)]
        collector.tick_done()
        assert abs(collector.frozen - gc.get_freeze_count()) < 100 and len(kept) == 5000


def test_the_collector_comes_back_when_the_run_fails() -> None:
    with pytest.raises(RuntimeError), TickCollector():
        raise RuntimeError("a model server died")
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_run_ticks_with_the_collector_off_and_hands_it_back(tmp_path: Path) -> None:
    scenario = parse_scenario(SMALL_TOWN)
    during: list[tuple[bool, int]] = []
    asyncio.run(execute_run(scenario, tmp_path, model="fake", until=scenario.clock.start.replace(hour=9),
                            on_tick=lambda *_: during.append((gc.isenabled(), gc.get_freeze_count()))))
    assert during and all(not enabled and frozen > 0 for enabled, frozen in during)
    assert gc.isenabled() and gc.get_freeze_count() == 0
