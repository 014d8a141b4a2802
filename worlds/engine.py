"""The tick loop: start what is due, decide beside held activities and scoring, advance, perceive, reflect, write."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from agents.agent import Agent
from agents.cognition.perceive import perceive
from agents.cognition.reflect import reflect
from agents.context import Phase, TickContext
from agents.gateway import ModelGateway
from memory.stores import MemoryStore
from memory.stream import ScoredBatch
from worlds.activities.base import ActivityEnv
from worlds.eventlog import EventWriter
from worlds.budget import Spend
from worlds.events import EventBase, ModelCall, RunEnded, TickCompleted, Warning_, from_report
from worlds.perception import activity_ends, perceptions
from worlds.probes import ask_due, due
from worlds.routine import decide
from worlds.scenario import Scenario
from worlds.scheduler import Scheduler, all_or_none, cancelled
from worlds.sessions import session_appointments
from worlds.world import World

TickHook = Callable[[int, datetime, list[EventBase]], None]


def spent_in(state: dict[str, Any]) -> Spend:
    """What a snapshot's run had spent; a snapshot from before budgets counts from zero."""
    return Spend.model_validate(state.get("spent", {}))


class Engine:
    """Keeps time and nothing else: the agents think, the activities act, the scheduler holds who is busy."""

    def __init__(self, scenario: Scenario, gateway: ModelGateway, writer: EventWriter, store: MemoryStore,
                 agents: dict[str, Agent], world: World) -> None:
        self.scenario = scenario
        self.clock = scenario.clock
        self.writer = writer
        self.store = store
        self.env = ActivityEnv(world=world, agents=agents, gateway=gateway, scenario=scenario)
        self.scheduler = Scheduler()
        self.scheduler.agenda = session_appointments(scenario)
        self.next_tick = 0
        self.probes_done: set[int] = set()
        self.stop_requested = False
        #: What the run has paid for so far: the scenario's budget is checked against it.
        self.spent = Spend()

    @property
    def agents(self) -> dict[str, Agent]:
        return self.env.agents

    def request_stop(self) -> None:
        """Ask the loop to stop at the next tick boundary (Ctrl-C)."""
        self.stop_requested = True

    def context(self, tick: int) -> TickContext:
        return TickContext(tick=tick, now=self.clock.time_of(tick), step=self.clock.step, run_seed=self.scenario.seed)

    async def run(self, until: datetime, on_tick: TickHook | None = None,
                  on_snapshot: Callable[[dict[str, Any]], None] | None = None) -> RunEnded:
        """Run ticks up to `until`; the returned RunEnded is already in the log.

        Every `snapshot_every` ticks, after the tick is in the log, `on_snapshot` gets the whole state.
        """
        total = self.clock.ticks_until(until)
        status, detail = "completed", ""
        try:
            if self.next_tick == 0:
                await self.seed_memories()
            while self.next_tick < total:
                if self.stop_requested:
                    status = "interrupted"
                    break
                if (spent := self._over_budget(on_snapshot)) is not None:
                    status, detail = "budget", spent
                    break
                tick = self.next_tick
                events = await self.step(tick)
                self._write(events)  # the log first: it is the point of truth ...
                self.next_tick = tick + 1
                if on_snapshot is not None and self.next_tick % self.scenario.snapshot_every == 0:
                    on_snapshot(self.get_state())  # flushes the store too
                elif self.next_tick % self.scenario.memory.flush_every == 0:
                    self.store.flush(access_times=False)  # ... then, now and then, the store it feeds
                if on_tick is not None:
                    on_tick(tick, self.clock.time_of(tick), events)
            else:
                if self._finish_needs_calls() and (spent := self._over_budget(on_snapshot)) is not None:
                    status, detail = "budget", spent  # the last probes and scores wait for a higher limit
        except Exception as exc:
            await self._finish("failed", f"{type(exc).__name__}: {exc}")
            raise
        return await self._finish(status, detail)

    async def seed_memories(self) -> None:
        """The scenario's starting memories become the first records of each stream (once per run folder)."""
        ctx = self.context(0)
        for name, agent in sorted(self.agents.items()):
            if not agent.memory.records:
                for fact in agent.persona.memories:
                    agent.memory.remember("observation", fact, ctx.now)
        await self._score_queued(ctx)
        self._write(self._collect(ctx))
        self.store.flush()

    async def step(self, tick: int) -> list[EventBase]:
        """One tick; its events come back in a fixed order whatever finished first."""
        ctx = self.context(tick)
        agents, env = self.agents, self.env
        positions = {name: agent.state.place for name, agent in agents.items()}
        scoring = self._score_ahead(ctx)
        try:
            self.scheduler.start_due(ctx, env)
            deciding = [a for _, a in sorted(agents.items()) if self._free_to_decide(a)]
            held = self.scheduler.held()  # talks and sessions go on while the others think
            *intents, _ = await all_or_none([*(decide(a, ctx, env) for a in deciding),
                                             self.scheduler.advance(ctx, env, held)])
            for intent in intents:
                if intent is not None and not self.scheduler.start_intent(intent.activity, ctx, env):
                    intent.refused(env)
            held_now = set(held)
            await self.scheduler.advance(ctx, env, [key for key in sorted(self.scheduler.running) if key not in held_now])
            self.scheduler.release_finished(env)
        except BaseException:
            await cancelled([scoring])
            raise
        scored = await scoring  # joined at the same point whatever finished first
        for name, batch in scored:
            agents[name].memory.apply(batch, ctx.scope(Phase.MEMORY, name, name))
        events = self._collect(ctx)
        self.writer.number(events)
        self._perceive(ctx, events, positions)
        await self._reflect_due(ctx)
        await ask_due(self.scenario.probes, self.probes_done, ctx, agents, env.gateway, final=False)
        events += self._collect(ctx)
        events.append(self._closing(ctx))
        return events

    def _over_budget(self, on_snapshot: Callable[[dict[str, Any]], None] | None) -> str | None:
        """Why the budget stops the run here, snapshotting first so that resume carries on from exactly here."""
        spent = self.scenario.budget.reached(self.spent)
        if spent is not None and on_snapshot is not None:
            on_snapshot(self.get_state())
        return spent

    def _finish_needs_calls(self) -> bool:
        """Whether closing a completed run calls the model: memories still to score, or `end` probes."""
        ctx = self.context(self.next_tick)
        return any(a.memory.pending for a in self.agents.values()) or any(
            number not in self.probes_done and due(probe, ctx, final=True)
            for number, probe in enumerate(self.scenario.probes))

    def _free_to_decide(self, agent: Agent) -> bool:
        """Idle agents decide; one in an interruptible routine only when something new may call for a reaction."""
        if agent.state.activity is None:
            return True
        current = self.scheduler.running[agent.state.activity]
        return current.interruptible and bool(agent.state.inbox or agent.state.outcomes)

    def _collect(self, ctx: TickContext) -> list[EventBase]:
        return [from_report(item, ctx.tick, ctx.now) for item in ctx.drain()]

    def _write(self, events: list[EventBase]) -> None:
        """Commit the model answers first, then write and fsync the events that cite them."""
        self.env.gateway.checkpoint()
        self.writer.write(events)
        self.writer.sync()
        for event in events:
            if isinstance(event, ModelCall):
                self.spent.add(event)

    async def _score_queued(self, ctx: TickContext) -> None:
        """Score every agent's queued memories now, one call per agent, all agents at once."""
        ready = [(n, a) for n, a in sorted(self.agents.items()) if a.memory.pending]
        await asyncio.gather(*(a.memory.commit(ctx.scope(Phase.MEMORY, n, n)) for n, a in ready))

    def _perceive(self, ctx: TickContext, events: list[EventBase], positions: dict[str, str]) -> None:
        ends = activity_ends(events)
        for agent in self.agents.values():
            for outcome in agent.state.outcomes:
                outcome.source_event = ends.get(outcome.activity_id, outcome.source_event)
        seen = perceptions(events, positions, self.scenario.world.earshot)
        for name, agent in sorted(self.agents.items()):
            perceive(agent, seen[name], ctx.now, self.scenario.memory.attention)

    def _score_ahead(self, ctx: TickContext) -> asyncio.Future[list[tuple[str, ScoredBatch]]]:
        """Score what the last tick queued (one call per agent with `memory.commit_batch` queued), beside this
        tick's thinking: the memories become retrievable when the engine applies the batches, after the advance.

        The batches are counted now, before anything else in the tick can queue more.
        """
        ready = [(n, a.memory, len(a.memory.pending)) for n, a in sorted(self.agents.items())
                 if len(a.memory.pending) >= self.scenario.memory.commit_batch]

        async def score() -> list[tuple[str, ScoredBatch]]:
            batches = await asyncio.gather(*(memory.score_pending(ctx.scope(Phase.MEMORY, n, n), count)
                                             for n, memory, count in ready))
            return [(name, batch) for (name, _, _), batch in zip(ready, batches)]

        return asyncio.ensure_future(score())

    async def _reflect_due(self, ctx: TickContext) -> None:
        due = [(n, a) for n, a in sorted(self.agents.items()) if a.memory.should_reflect() and not a.asleep]
        await asyncio.gather(*(self._reflect(n, a, ctx) for n, a in due))

    async def _reflect(self, name: str, agent: Agent, ctx: TickContext) -> None:
        scope = ctx.scope(Phase.REFLECT, name, name)
        outcome = await reflect(self.env.gateway, agent.memory, ctx.now, scope)
        notes = ([f"reflection skipped: {outcome.skipped}"] if outcome.skipped else []) + [
            f"reflection question dropped, the model gave no insight: {q}" for q in outcome.failed_questions
        ]
        for note in notes:
            scope.emit(Warning_(tick=ctx.tick, sim_time=ctx.now, agents=[name], message=note))

    def _closing(self, ctx: TickContext) -> TickCompleted:
        return TickCompleted(
            tick=ctx.tick, sim_time=ctx.now, positions={n: a.state.place for n, a in sorted(self.agents.items())},
            status={n: a.state.status for n, a in sorted(self.agents.items())},
        )

    async def _finish(self, status: str, detail: str) -> RunEnded:
        """Close running activities, score what is still queued (budget left), ask `end` probes, and write RunEnded.

        A failed run writes only its closing record: the tick that failed never reached the log, so
        nothing it produced may reach the store either.
        """
        ctx = self.context(self.next_tick)
        if status != "failed":
            self.scheduler.end_all(ctx, self.env, "run_ended")
            self._report_unstarted(ctx)
        if status in ("completed", "interrupted"):  # a budget spent buys no more calls
            await self._score_queued(ctx)
        if status == "completed":
            await ask_due(self.scenario.probes, self.probes_done, ctx, self.agents, self.env.gateway, final=True)
        ended = RunEnded(tick=ctx.tick, sim_time=ctx.now, status=status, ticks=self.next_tick, detail=detail)
        self._write([*self._collect(ctx), ended])
        if status != "failed":
            self.store.flush()
        return ended

    def _report_unstarted(self, ctx: TickContext) -> None:
        """Appointments the run ended before: never silently dropped."""
        scope = ctx.scope(Phase.APPLY, "unstarted")
        for appointment in self.scheduler.agenda:
            activity = appointment.activity
            if appointment.missed:
                why = (f"{' and '.join(appointment.meeting)} talked {appointment.missed} time(s), but never while "
                       f"everyone it needs was free")
            elif appointment.meeting:
                why = f"{' and '.join(appointment.meeting)} never met and chose to talk"
            elif appointment.at >= ctx.now:
                why = f"due {appointment.at:%Y-%m-%d %H:%M}, after the run stopped"
            else:
                why = f"due {appointment.at:%Y-%m-%d %H:%M}, the run ended before its participants were free"
            scope.emit(Warning_(tick=ctx.tick, sim_time=ctx.now, agents=list(activity["participants"]),
                                message=f"{activity['kind']} {activity['id']} never started ({why})"))

    def get_state(self) -> dict[str, Any]:
        """The whole run at a tick boundary, JSON-able; memories' records stay in the store (flushed here).

        Access times are not written to the store here: the state carries them, and restoring applies them.
        """
        self.store.flush(access_times=False)
        return {
            "next_tick": self.next_tick,
            "next_seq": self.writer.next_seq,
            "agents": {name: agent.get_state() for name, agent in sorted(self.agents.items())},
            "world": self.env.world.get_state(),
            "scheduler": self.scheduler.get_state(),
            "probes_done": sorted(self.probes_done),
            "spent": self.spent.model_dump(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.next_tick = state["next_tick"]
        self.writer.next_seq = state["next_seq"]
        for name, agent_state in state["agents"].items():
            self.agents[name].set_state(agent_state)
        self.env.world.set_state(state["world"])
        self.scheduler.set_state(state["scheduler"])
        self.probes_done = set(state["probes_done"])
        self.spent = spent_in(state)
