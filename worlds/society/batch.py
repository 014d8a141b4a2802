"""A role-play batch: tasks brainstormed per role pair, then one session per task, many at once, resumable.

The batch folder is a run folder (resolved scenario, event log, request cache). Every unit of work
(a pair's tasks, a session) is written as one block closed by a `batch_unit` record and fsynced as
soon as it finishes, so an interruption loses only the units in progress, and a re-run with the
same scenario and folder skips everything already written.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from agents.gateway import GatewayCounters, ModelGateway, RequestCache, build_backend
from agents.gateway.backends.base import Backend
from worlds.budget import Spend
from worlds.cluster import RaySpec, each_as_task, ray_started
from worlds.eventlog import EventWriter, SkipHook
from worlds.events import (
    BatchUnitDone,
    Error,
    EventBase,
    ModelCall,
    RunEnded,
    RunStarted,
    SessionEnded,
    TasksBrainstormed,
)
from worlds.runfolder import RunFolder
from worlds.scenario import Loc, LoopBatchScenario, Scenario, SocietyScenario, load_any, problem_in_file
from worlds.society.units import BatchUnit, FileBlock, PairUnit, RolePair, UnitOutcome, pair_key, run_remote


class BatchSummary(BaseModel):
    """What a batch run did, and what it found already done."""

    folder: Path
    planned: int
    skipped: int = 0
    finished: int = 0
    pairs_failed: int = 0
    #: The budget's reason, when the batch stopped starting units at it.
    stopped: str = ""
    #: Units run as Ray tasks that failed or lost their worker (their unwritten sessions run again next time).
    units_failed: int = 0
    reasons: dict[str, int] = Field(default_factory=dict)
    counters: GatewayCounters = Field(default_factory=GatewayCounters)


def _first_difference(old: Any, new: Any, loc: Loc = ()) -> Loc | None:
    """Where two resolved scenarios first differ (None when they are equal)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            if (found := _first_difference(old.get(key), new.get(key), (*loc, key))) is not None:
                return found
        return None
    return None if old == new else loc


def open_batch(out_dir: Path, scenario: SocietyScenario | LoopBatchScenario) -> tuple[RunFolder, bool]:
    """`<out>/<name>/`, new or to resume; a folder made from another scenario is an input error at its line.

    Only the budget may change between runs (a batch stopped by it goes on with a higher one); the folder
    then records the new one.
    """
    folder = RunFolder(out_dir / scenario.name)
    if not folder.scenario_path.exists():
        folder.path.mkdir(parents=True, exist_ok=True)
        folder.write_scenario(scenario)
        folder.events_path.touch()
        return folder, False
    stored = load_any(folder.scenario_path)
    if isinstance(stored, Scenario):
        raise problem_in_file(folder.scenario_path, ("society",), "this folder holds a world run, not a batch")
    old, new = stored.model_dump(mode="json", exclude={"budget"}), scenario.model_dump(mode="json", exclude={"budget"})
    if (loc := _first_difference(old, new)) is not None:
        value = old
        for part in loc:
            value = value.get(part) if isinstance(value, dict) else None
        raise problem_in_file(folder.scenario_path, loc, f"this batch folder was made from a different scenario "
                                                         f"(here {value!r}); use another --out folder")
    if stored.budget != scenario.budget:
        folder.write_scenario(scenario)
    if not folder.events_path.exists():
        folder.events_path.touch()
    return folder, True


def role_pairs(scenario: SocietyScenario) -> list[RolePair]:
    """Every (assistant index, role, user index, role), assistant-major, skipping a role paired with itself."""
    society = scenario.society
    return [(a, assistant, u, user)
            for a, assistant in enumerate(society.assistant_roles.names, 1)
            for u, user in enumerate(society.user_roles.names, 1) if assistant != user]


class _Done(BaseModel):
    tasks: dict[str, list[str]] = Field(default_factory=dict)
    sessions: set[str] = Field(default_factory=set)
    spent: Spend = Field(default_factory=Spend)


def already_done(folder: RunFolder, on_skip: SkipHook | None = None) -> _Done:
    """What the folder's closed blocks hold: brainstormed tasks, finished sessions, and what their calls cost; a
    line that is not a record is passed over and told to `on_skip` (what it closed is done again)."""
    done = _Done()
    for event in folder.reader(on_skip).events({"tasks_brainstormed", "session_ended", "model_call"},
                                        complete_ticks_only=True):
        if isinstance(event, TasksBrainstormed):
            done.tasks[f"{event.assistant_role}\n{event.user_role}"] = event.tasks
        elif isinstance(event, SessionEnded):
            done.sessions.add(event.session_id)
        elif isinstance(event, ModelCall):
            done.spent.add(event)
    return done


class BatchRun:
    """What every batch shares: its model (as the folder records it), cache, gateway, a log of closed blocks,
    and its budget, counted from the calls in those blocks (earlier runs' included)."""

    def __init__(self, scenario: SocietyScenario | LoopBatchScenario, out_dir: Path, model: str | Backend | None,
                 start: datetime, cluster: RaySpec | None = None, on_skip: SkipHook | None = None) -> None:
        if cluster is not None and not (model is None or isinstance(model, str)):
            raise TypeError("a batch on Ray builds its model in each worker: give the model as a spec string")
        self.backend = build_backend(model if model is not None else scenario.models.default)
        self.cluster = cluster
        if isinstance(model, str):  # the folder records the spec it ran with; a resume must give the same
            scenario = scenario.model_copy(update={"models": scenario.models.model_copy(update={"default": model})})
        self.scenario = scenario
        self.folder, self.resuming = open_batch(out_dir, scenario)
        self.start = start
        self.cache = RequestCache(self.folder.cache_path, mode="read_write")
        self.gateway = ModelGateway(self.backend, cache=self.cache)
        self.writer = EventWriter.reopen(self.folder.events_path)
        self.reasons: Counter[str] = Counter()
        self.done = already_done(self.folder, on_skip) if self.resuming else _Done()
        self.stopped = ""
        self.units_failed = 0

    def may_start(self) -> bool:
        """Checked before a unit starts: once the budget is spent no unit starts (those under way finish)."""
        self.stopped = self.stopped or self.scenario.budget.reached(self.done.spent) or ""
        return not self.stopped

    def file(self, unit: str, events: list[EventBase]) -> None:
        """One finished unit: its answers committed, then its events and the block's close, fsync'ed."""
        self.gateway.checkpoint()
        self.writer.write([*events, BatchUnitDone(tick=0, sim_time=self.start, unit=unit)])
        self.writer.sync()
        self.reasons.update(e.reason for e in events if isinstance(e, SessionEnded))
        for event in events:
            if isinstance(event, ModelCall):
                self.done.spent.add(event)

    async def run_units(self, units: list[BatchUnit], file: FileBlock, concurrency: int) -> None:
        """Every unit here (at most `concurrency` sessions at once, on this gateway) or, on a cluster, each as a
        Ray task; either way `file` gets each finished block, and only this process writes the log and cache."""
        if not units:
            return
        if self.cluster is None:
            limit = asyncio.Semaphore(concurrency)
            await asyncio.gather(*(unit.run(self.gateway, file, self.may_start, limit) for unit in units))
            return

        def returned(unit: BatchUnit, outcome: UnitOutcome | None, lost: str) -> None:
            if outcome is not None:
                self.cache.add(outcome.answers)
                self.gateway.counters.merge(outcome.counters)
                for block in outcome.blocks:
                    file(block.unit, block.events)
                self._count_unfiled(outcome)
            if why := lost or (outcome.error if outcome else ""):
                self.units_failed += 1
                self.file(f"failed:{unit.name}", [Error(tick=0, sim_time=self.start, detail=why, message=f"unit "
                          f"{unit.name} stopped short; what it left unwritten is tried again on the next run")])

        with ray_started(self.cluster) as ray:
            each_as_task(ray, self.cluster, run_remote, units, (self.scenario.models.default,), returned,
                         self.may_start)

    def _count_unfiled(self, outcome: UnitOutcome) -> None:
        """Calls a task paid for in sessions it never finished (it failed) are in no block, yet spent: this run's
        budget counts them too (a task's gateway pays for every call: its scratch cache inherits nothing)."""
        filed = Spend()
        for event in (e for block in outcome.blocks for e in block.events if isinstance(e, ModelCall)):
            filed.add(event)
        spent, used = self.done.spent, outcome.counters
        spent.calls += used.calls - filed.calls
        spent.prompt_tokens += used.prompt_tokens - filed.prompt_tokens
        spent.completion_tokens += used.completion_tokens - filed.completion_tokens

    async def run(self, work: Callable[[], Awaitable[Any]], summary: BatchSummary) -> BatchSummary:
        """Open the log (once), do the work, and close the log saying how far it got, even when interrupted."""
        status = "interrupted"
        try:
            if self.writer.next_seq == 0:
                self.file("start", [RunStarted(tick=0, sim_time=self.start, run_id=self.folder.path.name,
                                               scenario=self.scenario.name, seed=self.scenario.seed,
                                               model=self.backend.name, until=self.start)])
            await work()
            status = "budget" if self.stopped else "completed"
        finally:
            written = f"{summary.skipped + summary.finished} of {summary.planned} written" + (
                f"; {self.units_failed} unit(s) failed" if self.units_failed else "")
            self.writer.write([RunEnded(tick=0, sim_time=self.start, status=status, ticks=0,
                                        detail=self.stopped or written)])
            self.writer.close()
            self.cache.close()
        summary.reasons = dict(sorted(self.reasons.items()))
        summary.stopped, summary.units_failed = self.stopped, self.units_failed
        summary.counters = self.gateway.counters
        return summary


async def run_batch(
    scenario: SocietyScenario, out_dir: Path, model: str | Backend | None = None,
    on_progress: Callable[[int, int], None] | None = None, cluster: RaySpec | None = None,
    on_skip: SkipHook | None = None,
) -> BatchSummary:
    """Run (or resume) the batch into `<out>/<name>/`, here or (given a cluster) one role pair per Ray task;
    `on_progress(done, planned)` after every session, `on_skip` for each line of the log that is not a record."""
    society = scenario.society
    batch = BatchRun(scenario, out_dir, model, society.start, cluster, on_skip)
    done = batch.done
    pairs = role_pairs(scenario)
    summary = BatchSummary(folder=batch.folder.path, planned=len(pairs) * society.tasks_per_pair,
                           skipped=len(done.sessions))
    units = [PairUnit(scenario=batch.scenario, pair=pair, tasks=done.tasks.get(pair_key(pair)),
                      written={s for s in done.sessions if s.startswith(f"a{pair[0]:03d}-u{pair[2]:03d}-")})
             for pair in pairs]
    summary.planned -= sum(society.tasks_per_pair - len(u.tasks) for u in units if u.tasks is not None)

    def progress() -> None:
        if on_progress is not None:
            on_progress(summary.skipped + summary.finished, summary.planned)

    def file(unit: str, events: list[EventBase]) -> None:
        batch.file(unit, events)
        if not unit.startswith("tasks:"):
            summary.finished += 1
        elif brainstormed := [e for e in events if isinstance(e, TasksBrainstormed)]:
            summary.planned -= society.tasks_per_pair - len(brainstormed[0].tasks)
        else:
            summary.pairs_failed += 1
            summary.planned -= society.tasks_per_pair
        progress()

    async def work() -> None:
        progress()
        await batch.run_units([u for u in units if u.has_work], file, society.concurrency)

    return await batch.run(work, summary)
