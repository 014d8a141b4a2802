"""A batch's units of work, run the same way in the batch's own process and as Ray tasks on other cores or hosts.

A unit (a role pair's brainstorm and sessions, a slice of a loop batch's input lines) is a pydantic
record that carries everything it needs. In the batch's process it runs on the batch's gateway and
files each finished block straight into the log; as a Ray task, `run_remote` runs it on a gateway
of its own, built from the model spec, and hands back the blocks and the answers it paid for, which
the batch's process alone writes into its log and cache.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, Field

from agents.gateway import CallScope, GatewayCounters, ModelGateway, ModelUnavailableError, RequestCache, build_backend
from agents.gateway.cache import CachedAnswer
from agents.roleplay.session import RoleplaySession
from agents.roleplay.setup import CriticSetup, RoleCard, RoleplaySetup
from agents.roleplay.tasks import brainstorm
from agents.seeding import stable_int
from agents.sessions import SessionMachine
from worlds.activities.hosted import stamped
from worlds.events import Error, EventBase, TasksBrainstormed
from worlds.scenario import SocietyScenario

#: (assistant index, assistant role, user index, user role): the indexes name the pair's sessions.
RolePair = tuple[int, str, int, str]

#: Files one finished block: its name (the session id, `tasks:ROLE\nROLE`) and its events.
FileBlock = Callable[[str, list[EventBase]], None]


class BatchUnit(Protocol):
    @property
    def name(self) -> str:
        """How the log names the unit when it fails."""

    @property
    def concurrency(self) -> int:
        """Sessions of this unit in progress at once."""

    async def run(self, gateway: ModelGateway, file: FileBlock, may_start: Callable[[], bool],
                  limit: asyncio.Semaphore) -> None:
        """Run what is left of the unit, filing each block as it finishes; nothing starts once `may_start()` is
        False, and at most `limit` sessions are in progress."""


class Block(BaseModel):
    unit: str
    events: list[EventBase]


class UnitOutcome(BaseModel):
    """What a unit run as a Ray task hands back: its finished blocks, the answers they used, and how it ended."""

    blocks: list[Block] = Field(default_factory=list)
    answers: list[CachedAnswer] = Field(default_factory=list)
    counters: GatewayCounters = Field(default_factory=GatewayCounters)
    #: Why the unit stopped short (its finished blocks still count); empty when it ran to the end.
    error: str = ""


def run_remote(unit: BatchUnit, model: str) -> UnitOutcome:
    """A Ray task's body: the unit on its own backend and cache; a failure is part of the outcome, not a crash."""
    outcome = UnitOutcome()
    with tempfile.TemporaryDirectory(prefix="simulacra-unit-") as scratch:
        cache = RequestCache(Path(scratch) / "cache.sqlite")
        gateway = ModelGateway(build_backend(model), cache=cache)

        def keep(name: str, events: list[EventBase]) -> None:
            outcome.blocks.append(Block(unit=name, events=events))

        async def work() -> None:
            await unit.run(gateway, keep, lambda: True, asyncio.Semaphore(unit.concurrency))

        try:
            asyncio.run(work())
        except Exception as exc:  # noqa: BLE001 - one unit's failure is reported, never the batch's end
            outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.answers, outcome.counters = cache.entries(), gateway.counters
        cache.close()
    return outcome


def session_setup(scenario: SocietyScenario, pair: RolePair, number: int, task: str) -> RoleplaySetup:
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
    """One whole session, as the events it leaves."""
    return await run_machine(RoleplaySession(setup), gateway, start, step, setup.max_messages)


def pair_key(pair: RolePair) -> str:
    """How the log names a pair's tasks block (`tasks:KEY`) and finds its tasks again."""
    return f"{pair[1]}\n{pair[3]}"


class PairUnit(BaseModel):
    """One role pair: its tasks (brainstormed unless an earlier run did), then a session per task not yet written."""

    scenario: SocietyScenario
    pair: RolePair
    #: The tasks an earlier run brainstormed; None: brainstorm them first.
    tasks: list[str] | None = None
    #: Sessions of this pair already written.
    written: set[str] = Field(default_factory=set)

    @property
    def name(self) -> str:
        return f"pair:a{self.pair[0]:03d}-u{self.pair[2]:03d}"

    @property
    def concurrency(self) -> int:
        return self.scenario.society.concurrency

    @property
    def has_work(self) -> bool:
        return self.tasks is None or len(self.written) < len(self.tasks)

    async def run(self, gateway: ModelGateway, file: FileBlock, may_start: Callable[[], bool],
                  limit: asyncio.Semaphore) -> None:
        society = self.scenario.society
        step = timedelta(minutes=society.minutes_per_message)
        tasks = self.tasks
        if tasks is None:
            async with limit:
                if not may_start():
                    return
                tasks = await self._brainstorm(gateway, file, step)

        async def session(setup: RoleplaySetup) -> None:
            async with limit:
                if not may_start():
                    return
                events = await run_session(setup, gateway, society.start, step)
            file(setup.session_id, events)

        setups = [session_setup(self.scenario, self.pair, n, task) for n, task in enumerate(tasks, 1)]
        await asyncio.gather(*(session(s) for s in setups if s.session_id not in self.written))

    async def _brainstorm(self, gateway: ModelGateway, file: FileBlock, step: timedelta) -> list[str]:
        """The pair's tasks as one filed block; a pair whose call fails files an `error` and gets none."""
        society, (_, assistant, _, user), key = self.scenario.society, self.pair, pair_key(self.pair)
        records: list[EventBase] = []
        scope = stamped(CallScope(seed=stable_int(self.scenario.seed, "tasks", key, bits=31), sink=records.append),
                        0, society.start, step, [])
        try:
            tasks = await brainstorm(assistant, user, society.tasks_per_pair, gateway, scope)
        except ModelUnavailableError as exc:
            file(f"tasks:{key}", [*records, Error(tick=0, sim_time=society.start, message=f"no tasks for "
                 f"{assistant} and {user}; the pair is skipped and tried again on the next run", detail=str(exc))])
            return []
        file(f"tasks:{key}", [*records, TasksBrainstormed(tick=0, sim_time=society.start, assistant_role=assistant,
                                                          user_role=user, requested=society.tasks_per_pair,
                                                          tasks=tasks)])
        return tasks
