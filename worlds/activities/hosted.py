"""An activity that hosts a session (a role-play, a Self-* loop): messages take simulated time, agents recall first."""

from __future__ import annotations

from abc import abstractmethod
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel

from agents.context import TickContext
from agents.gateway import CallScope
from agents.roleplay.records import CriticChoiceRecord, SessionEndedRecord, SessionMessageRecord
from agents.roleplay.setup import RoleCard
from agents.sessions import SessionMachine
from worlds.activities.base import Activity, ActivityEnv
from worlds.events import from_report


def stamped(scope: CallScope, tick: int, start: datetime, step: timedelta, agents: list[str],
            until: datetime | None = None, now: datetime | None = None) -> CallScope:
    """A scope that turns session records into events: message `i` at `start + i * step`, naming `agents`.

    Other records (model calls) take the time of the message before them, or `now` (the tick's start)
    before the stretch's first message. The end comes one `step` after the last message. Nothing is
    stamped after `until` (the tick's end).
    """

    now = now or start

    def place(record: BaseModel) -> None:
        nonlocal now
        if isinstance(record, SessionMessageRecord | CriticChoiceRecord):
            now = start + step * record.index
        elif isinstance(record, SessionEndedRecord):
            now = start + step * record.messages
        if until is not None:  # messages one step says together (a loop's samples) stay in their tick
            now = min(now, until)
        event = from_report(record, tick, now)
        if not event.agents:
            event.agents = list(agents)
        scope.emit(event)

    return CallScope(agent=scope.agent, seed=scope.seed, sink=place)


class HostedSession(Activity):
    """Holds its world agents while the session it hosts runs, a few messages a tick.

    Subclasses say which session machine they host (`machine`), whose memories it draws on
    (`cards`), and what each participant shows and keeps (`status`, `outcome`).
    """

    machine: ClassVar[type[SessionMachine]]

    def __init__(self, activity_id: str, participants: list[str], session: SessionMachine,
                 minutes_per_message: int) -> None:
        super().__init__(activity_id, participants, "")
        self.session = session
        self.minutes_per_message = minutes_per_message
        self.recalled = False
        #: When the first message was said: every later message is timed from here.
        self.began: datetime | None = None

    @abstractmethod
    def cards(self) -> list[RoleCard]:
        """The sides a world agent may play; each such agent recalls memories about the task into its card."""

    def start(self, ctx: TickContext, env: ActivityEnv, scope: CallScope) -> None:
        if self.participants:
            self.place = env.agents[self.participants[0]].state.place
        super().start(ctx, env, scope)

    async def advance(self, ctx: TickContext, env: ActivityEnv) -> None:
        scope = self.scope(ctx, part="turns")
        if not self.recalled:
            await self._recall(ctx, env, scope)
        if self.began is None:
            self.began = ctx.now
        # Message i is said at began + i * minutes: as many as start before this tick ends (none, if one
        # message outlasts the tick), so a session takes its simulated time whatever the tick length.
        due = -(-(ctx.end - self.began) // self._per_message)
        await self.session.advance(env.gateway, self._timed(ctx, scope), max(0, due - len(self.session.progress.turns)))
        if self.session.finished:
            super().end(ctx, env, self.scope(ctx, part="turns"), "done")

    async def _recall(self, ctx: TickContext, env: ActivityEnv, scope: CallScope) -> None:
        """World agents bring what they remember about the task into their side."""
        for card in self.cards():
            if card.agent:
                found = await env.agents[card.agent].memory.retrieve(
                    self.session.setup.task, ctx.now, k=env.scenario.memory.retrieve_k, trace=scope)
                card.memories = [m.text for m in found]
        self.recalled = True

    @property
    def _per_message(self) -> timedelta:
        return timedelta(minutes=self.minutes_per_message)

    def _timed(self, ctx: TickContext, scope: CallScope) -> CallScope:
        return stamped(scope, ctx.tick, self.began or ctx.now, self._per_message, self.participants, until=ctx.end,
                       now=ctx.now)

    def end(self, ctx: TickContext, env: ActivityEnv, scope: CallScope, how: str) -> None:
        """Stopped from outside (the run ended): the session logs why, then participants are released."""
        self.session.end(how if how in ("interrupted", "run_ended") else "interrupted", self._timed(ctx, scope))
        super().end(ctx, env, scope, how)

    def extra_state(self) -> dict[str, Any]:
        return {"session": self.session.get_state(), "minutes_per_message": self.minutes_per_message,
                "recalled": self.recalled, "began": self.began.isoformat() if self.began else None}

    def restore_extra(self, state: dict[str, Any]) -> None:
        self.session = self.machine_for(state).from_state(state["session"])
        self.minutes_per_message = state["minutes_per_message"]
        self.recalled = state["recalled"]
        self.began = datetime.fromisoformat(state["began"]) if state.get("began") else None

    @classmethod
    def machine_for(cls, state: dict[str, Any]) -> type[SessionMachine]:
        """Which machine a saved activity hosts (one kind per activity unless a subclass says otherwise)."""
        return cls.machine
