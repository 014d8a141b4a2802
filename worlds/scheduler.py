"""Agents as capacity-one resources (SimPy's Resource): an activity acquires its participants, or it waits."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from agents.context import Phase, TickContext
from worlds.activities.base import Activity, ActivityEnv, restore


async def cancelled(tasks: list[asyncio.Future[Any]]) -> None:
    """Stop these tasks and wait until they have stopped."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def all_or_none(work: list[Coroutine[Any, Any, Any]]) -> list[Any]:
    """Run concurrently; if one fails, the rest are stopped before the failure goes on (no call outlives its tick)."""
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        await cancelled(tasks)
        raise


class Appointment(BaseModel):
    """An activity due at a moment (a session, in later kinds); it starts once its participants are free."""

    at: datetime
    activity: dict[str, Any]
    #: Among appointments due at the same moment, lower goes first (a scenario's file order).
    order: int = 0
    #: Two agents whose meeting starts it instead of the clock: from `at` on, their next talk becomes this.
    meeting: list[str] = []
    #: The pair did talk while booked, but someone else the activity needs (its critic) was busy then.
    missed: int = 0


class Scheduler:
    """Owns the running activities and the agenda; every start and end goes through here.

    The rule for a due appointment: participants in an interruptible routine (an action, a walk) are
    taken out of it; if any is in a conversation or asleep, the appointment waits and is tried again
    every tick until all are free. Reactions follow the same rule but never wait: they are dropped.
    An appointment booked on a meeting has no clock time: the pair's next talk starts it instead.
    """

    def __init__(self) -> None:
        self.running: dict[str, Activity] = {}
        self.agenda: list[Appointment] = []
        #: Counts starts and stops: numbers new activities and orders their events in the log.
        self.serial = 0

    def available(self, names: list[str], env: ActivityEnv) -> bool:
        """True when every participant is free or only in an interruptible activity."""
        return all(
            env.agents[n].state.activity is None or self.running[env.agents[n].state.activity].interruptible
            for n in names
        )

    def start(self, activity: Activity, ctx: TickContext, env: ActivityEnv) -> bool:
        """Acquire the participants (interrupting routines) and start; False if someone is unavailable."""
        if not self.available(activity.participants, env):
            return False
        scope = self._apply_scope(ctx)
        if not activity.id:
            activity.id = f"{activity.kind[0]}{ctx.tick:05d}-{self.serial}"
        for name in activity.participants:
            current = env.agents[name].state.activity
            if current is not None:
                self.running[current].end(ctx, env, scope, "interrupted")
                self._release(self.running.pop(current), env)
        for name in activity.participants:
            env.agents[name].state.activity = activity.id
            env.agents[name].state.activity_kind = activity.kind
        self.running[activity.id] = activity
        activity.start(ctx, env, scope)
        return True

    def start_due(self, ctx: TickContext, env: ActivityEnv) -> None:
        """Start every appointment whose time has come and whose participants can be had; the rest wait."""
        waiting = []
        for appointment in sorted(self.agenda, key=lambda a: (a.at, a.order, a.activity["id"])):
            if appointment.meeting or appointment.at >= ctx.end or not self.start(restore(appointment.activity),
                                                                                    ctx, env):
                waiting.append(appointment)
        self.agenda = waiting

    def start_intent(self, activity: Activity, ctx: TickContext, env: ActivityEnv) -> bool:
        """Start what an agent chose; a talk between two agents booked to meet becomes their booked activity.

        If the booked activity cannot start (a third participant, such as its critic, is busy), the
        talk goes ahead and the booking waits for their next one.
        """
        pair = sorted(activity.participants)
        blocked = []
        for appointment in sorted(self.agenda, key=lambda a: (a.order, a.activity["id"])):
            if activity.kind == "conversation" and sorted(appointment.meeting) == pair and appointment.at < ctx.end:
                if self.start(restore(appointment.activity), ctx, env):
                    self.agenda.remove(appointment)
                    return True
                blocked.append(appointment)
        started = self.start(activity, ctx, env)
        for appointment in blocked if started else []:
            appointment.missed += 1
        return started

    def held(self) -> list[str]:
        """Running activities that no decision this tick can touch: nobody in them decides or can be taken out."""
        return [key for key in sorted(self.running) if not self.running[key].interruptible]

    async def advance(self, ctx: TickContext, env: ActivityEnv, keys: list[str]) -> None:
        """Advance these running activities at once; what they finish stays held until `release_finished`."""
        await all_or_none([self.running[key].advance(ctx, env) for key in keys])

    def release_finished(self, env: ActivityEnv) -> None:
        """Free the participants of every finished activity, in id order."""
        for key in sorted(self.running):
            if self.running[key].finished:
                self._release(self.running.pop(key), env)

    def end_all(self, ctx: TickContext, env: ActivityEnv, how: str) -> None:
        """Close whatever still runs (the run stopped)."""
        for key in sorted(self.running):
            self.running[key].end(ctx, env, self._apply_scope(ctx), how)
            self._release(self.running.pop(key), env)

    def _apply_scope(self, ctx: TickContext):
        """A fresh buffer per start or stop, numbered so the log keeps the order they happened in."""
        self.serial += 1
        return ctx.scope(Phase.APPLY, f"{self.serial:09d}")

    @staticmethod
    def _release(activity: Activity, env: ActivityEnv) -> None:
        for name in activity.participants:
            state = env.agents[name].state
            if state.activity == activity.id:  # the status line stays: it says what the agent did this tick
                state.activity = state.activity_kind = None

    def get_state(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "running": [self.running[k].get_state() for k in sorted(self.running)],
            "agenda": [a.model_dump(mode="json") for a in self.agenda],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.serial = state["serial"]
        self.running = {s["id"]: restore(s) for s in state["running"]}
        self.agenda = [Appointment.model_validate(a) for a in state["agenda"]]
