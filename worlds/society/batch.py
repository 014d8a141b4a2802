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
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from agents.gateway import (
    CallScope,
    GatewayCounters,
    ModelGateway,
    ModelUnavailableError,
    RequestCache,
    build_backend,
)
from agents.gateway.backends.base import Backend
from agents.roleplay.session import RoleplaySession
from agents.roleplay.setup import CriticSetup, RoleCard, RoleplaySetup
from agents.roleplay.tasks import brainstorm
from agents.sessions import SessionMachine
from agents.seeding import stable_int
from worlds.activities.hosted import stamped
from worlds.eventlog import EventWriter
from worlds.budget import Spend
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


class BatchSummary(BaseModel):
    """What a batch run did, and what it found already done."""

    folder: Path
    planned: int
    skipped: int = 0
    finished: int = 0
    pairs_failed: int = 0
    #: The budget's reason, when the batch stopped starting units at it.
    stopped: str = ""
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


def role_pairs(scenario: SocietyScenario) -> list[tuple[int, str, int, str]]:
    """Every (assistant index, role, user index, role), assistant-major, skipping a role paired with itself."""
    society = scenario.society
    return [(a, assistant, u, user)
            for a, assistant in enumerate(society.assistant_roles.names, 1)
            for u, user in enumerate(society.user_roles.names, 1) if assistant != user]


def session_setup(scenario: SocietyScenario, pair: tuple[int, str, int, str], number: int, task: str) -> RoleplaySetup:
    """One session's self-contained inputs; its id names the pair and the task, so re-runs find it."""
    a, assistant, u, user = pair
    session_id = f"a{a:03d}-u{u:03d}-t{number:02d}"
    society = scenario.society
    critic = CriticSetup(**society.critic.model_dump()) if society.critic else None
    return RoleplaySetup(session_id=session_id, seed=stable_int(scenario.seed, session_id, bits=31),
                         assistant=RoleCard(role=assistant), user=RoleCard(role=user), task=task, critic=critic,
                         **society.session.model_dump())


async def run_machine(machine: SessionMachine, gateway: ModelGateway, start: datetime, step: timedelta,
                      messages: int = 10**9) -> list[EventBase]:
    """Advance a session by up to `messages` messages (by default to its end); its events, stamped from `start`."""
    events: list[EventBase] = []
    scope = stamped(CallScope(seed=machine.setup.seed, sink=events.append), 0, start, step, [])
    await machine.advance(gateway, scope, messages)
    return events


async def run_session(setup: RoleplaySetup, gateway: ModelGateway, start: datetime, step: timedelta) -> list[EventBase]:
    """One whole session, as the events it leaves: the unit a batch (or a cluster) schedules."""
    return await run_machine(RoleplaySession(setup), gateway, start, step, setup.max_messages)


class _Done(BaseModel):
    tasks: dict[str, list[str]] = Field(default_factory=dict)
    sessions: set[str] = Field(default_factory=set)
    spent: Spend = Field(default_factory=Spend)


def already_done(folder: RunFolder) -> _Done:
    """What the folder's closed blocks hold: brainstormed tasks, finished sessions, and what their calls cost."""
    done = _Done()
    for event in folder.reader().events({"tasks_brainstormed", "session_ended", "model_call"},
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
                 start: datetime) -> None:
        self.backend = build_backend(model if model is not None else scenario.models.default)
        if isinstance(model, str):  # the folder records the spec it ran with; a resume must give the same
            scenario = scenario.model_copy(update={"models": scenario.models.model_copy(update={"default": model})})
        self.scenario = scenario
        self.folder, self.resuming = open_batch(out_dir, scenario)
        self.start = start
        self.cache = RequestCache(self.folder.cache_path, mode="read_write")
        self.gateway = ModelGateway(self.backend, cache=self.cache)
        self.writer = EventWriter.reopen(self.folder.events_path)
        self.reasons: Counter[str] = Counter()
        self.done = already_done(self.folder) if self.resuming else _Done()
        self.stopped = ""

    def out_of_budget(self) -> bool:
        """Checked before a unit starts: once the budget is spent no unit starts (those under way finish)."""
        self.stopped = self.stopped or self.scenario.budget.reached(self.done.spent) or ""
        return bool(self.stopped)

    def file(self, unit: str, events: list[EventBase]) -> None:
        """One finished unit: its answers committed, then its events and the block's close, fsync'ed."""
        self.gateway.checkpoint()
        self.writer.write([*events, BatchUnitDone(tick=0, sim_time=self.start, unit=unit)])
        self.writer.sync()
        self.reasons.update(e.reason for e in events if isinstance(e, SessionEnded))
        for event in events:
            if isinstance(event, ModelCall):
                self.done.spent.add(event)

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
            written = f"{summary.skipped + summary.finished} of {summary.planned} written"
            self.writer.write([RunEnded(tick=0, sim_time=self.start, status=status, ticks=0,
                                        detail=f"{self.stopped}; {written}" if self.stopped else written)])
            self.writer.close()
            self.cache.close()
        summary.reasons = dict(sorted(self.reasons.items()))
        summary.stopped = self.stopped
        summary.counters = self.gateway.counters
        return summary


async def run_batch(
    scenario: SocietyScenario, out_dir: Path, model: str | Backend | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> BatchSummary:
    """Run (or resume) the batch into `<out>/<name>/`; `on_progress(done, planned)` after every session."""
    society = scenario.society
    batch = BatchRun(scenario, out_dir, model, society.start)
    done = batch.done
    pairs = role_pairs(scenario)
    summary = BatchSummary(folder=batch.folder.path, planned=len(pairs) * society.tasks_per_pair)
    gateway, file = batch.gateway, batch.file
    step = timedelta(minutes=society.minutes_per_message)
    limit = asyncio.Semaphore(society.concurrency)

    async def tasks_for(pair: tuple[int, str, int, str]) -> list[str]:
        key = f"{pair[1]}\n{pair[3]}"
        if key in done.tasks:
            return done.tasks[key]
        records: list[Any] = []
        scope = stamped(CallScope(seed=stable_int(scenario.seed, "tasks", key, bits=31), sink=records.append),
                        0, society.start, step, [])
        async with limit:
            if batch.out_of_budget():
                return []
            try:
                tasks = await brainstorm(pair[1], pair[3], society.tasks_per_pair, gateway, scope)
            except ModelUnavailableError as exc:
                file(f"tasks:{key}", [*records, Error(tick=0, sim_time=society.start, message=f"no tasks for "
                     f"{pair[1]} and {pair[3]}; the pair is skipped and tried again on the next run", detail=str(exc))])
                summary.pairs_failed += 1
                return []
        file(f"tasks:{key}", [*records, TasksBrainstormed(tick=0, sim_time=society.start, assistant_role=pair[1],
                                                          user_role=pair[3], requested=society.tasks_per_pair,
                                                          tasks=tasks)])
        return tasks

    async def session(setup: RoleplaySetup) -> None:
        async with limit:
            if batch.out_of_budget():
                return
            events = await run_session(setup, gateway, society.start, step)
        file(setup.session_id, events)
        summary.finished += 1
        if on_progress is not None:
            on_progress(summary.skipped + summary.finished, summary.planned)

    async def pair_work(pair: tuple[int, str, int, str]) -> None:
        tasks = await tasks_for(pair)
        if batch.stopped and not tasks:  # never brainstormed: its sessions stay planned for the next run
            return
        summary.planned -= society.tasks_per_pair - len(tasks)
        setups = [session_setup(scenario, pair, n, task) for n, task in enumerate(tasks, 1)]
        summary.skipped += sum(1 for s in setups if s.session_id in done.sessions)
        if on_progress is not None:
            on_progress(summary.skipped + summary.finished, summary.planned)
        await asyncio.gather(*(session(s) for s in setups if s.session_id not in done.sessions))

    return await batch.run(lambda: asyncio.gather(*(pair_work(pair) for pair in pairs)), summary)
