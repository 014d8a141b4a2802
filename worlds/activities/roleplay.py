"""A CAMEL role-play session on the clock: it holds its world agents while messages take simulated time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from agents.agent import Outcome
from agents.context import TickContext
from agents.gateway import CallScope
from agents.roleplay.records import (
    CriticChoiceRecord,
    SessionEndedRecord,
    SessionMessageRecord,
)
from agents.roleplay.session import RoleplaySession
from agents.roleplay.setup import CriticSetup, RoleCard, RoleplayOptions, RoleplaySetup
from worlds.activities.base import Activity, ActivityEnv, register
from worlds.events import from_report
from worlds.scenario import RoleplaySession as RoleplaySpec
from worlds.scenario import Scenario, SessionRole
from worlds.scheduler import Appointment


def _card(side: SessionRole, scenario: Scenario) -> RoleCard:
    persona = next((p for p in scenario.agents if p.name == side.agent), None)
    return RoleCard(role=side.role or side.agent or "", agent=side.agent,
                    persona=persona.describe() if persona else "")


def setup_from_scenario(session_id: str, spec: RoleplaySpec, scenario: Scenario) -> RoleplaySetup:
    """The session's self-contained inputs, with world agents' personas filled in (memories come at start)."""
    critic = None
    if spec.critic is not None:
        persona = next((p.describe() for p in scenario.agents if p.name == spec.critic.agent), "")
        critic = CriticSetup(**spec.critic.model_dump(), persona=persona)
    options = {name: getattr(spec, name) for name in RoleplayOptions.model_fields}
    return RoleplaySetup(session_id=session_id, seed=scenario.seed, assistant=_card(spec.assistant, scenario),
                         user=_card(spec.user, scenario), task=spec.task, critic=critic, **options)


def stamped(scope: CallScope, tick: int, start: datetime, step: timedelta, agents: list[str],
            until: datetime | None = None, now: datetime | None = None) -> CallScope:
    """A scope that turns session records into events: message `i` at `start + i * step`, naming `agents`.

    Other records (model calls) take the time of the message before them, or `now` (the tick's start)
    before the stretch's first message. The end comes one `step` after the last message, or at `until`
    (the tick's end) if that is sooner.
    """

    now = now or start

    def place(record: BaseModel) -> None:
        nonlocal now
        if isinstance(record, SessionMessageRecord | CriticChoiceRecord):
            now = start + step * record.index
        elif isinstance(record, SessionEndedRecord):
            now = start + step * record.messages
            now = min(now, until) if until is not None else now
        event = from_report(record, tick, now)
        if not event.agents:
            event.agents = list(agents)
        scope.emit(event)

    return CallScope(agent=scope.agent, seed=scope.seed, sink=place)


@register
class Roleplay(Activity):
    kind = "roleplay"

    def __init__(self, activity_id: str, setup: RoleplaySetup, minutes_per_message: int) -> None:
        players = [c.agent for c in (setup.assistant, setup.user) if c.agent]
        if setup.critic is not None and setup.critic.agent and setup.critic.agent not in players:
            players.append(setup.critic.agent)
        super().__init__(activity_id, players, "")
        self.session = RoleplaySession(setup)
        self.minutes_per_message = minutes_per_message
        self.recalled = False
        #: When the first message was said: every later message is timed from here.
        self.began: datetime | None = None

    def status(self, agent: str) -> str:
        setup = self.session.setup
        card = setup.assistant if setup.assistant.agent == agent else setup.user if setup.user.agent == agent else None
        if card is None:
            return f"judging a role-play session: {setup.task[:60]}"
        side = "assistant" if card is setup.assistant else "user"
        role = f"the {side}" if card.role == agent else f"{card.role} ({side})"
        return f"in a role-play session as {role}: {setup.task[:60]}"

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
            self._finish(ctx, env)

    async def _recall(self, ctx: TickContext, env: ActivityEnv, scope: CallScope) -> None:
        """World agents bring what they remember about the task into their role."""
        setup = self.session.setup
        for card in (setup.assistant, setup.user):
            if card.agent:
                found = await env.agents[card.agent].memory.retrieve(
                    setup.task, ctx.now, k=env.scenario.memory.retrieve_k, trace=scope)
                card.memories = [m.text for m in found]
        self.recalled = True

    @property
    def _per_message(self) -> timedelta:
        return timedelta(minutes=self.minutes_per_message)

    def _timed(self, ctx: TickContext, scope: CallScope) -> CallScope:
        return stamped(scope, ctx.tick, self.began or ctx.now, self._per_message, self.participants, until=ctx.end,
                       now=ctx.now)

    def _finish(self, ctx: TickContext, env: ActivityEnv) -> None:
        super().end(ctx, env, self.scope(ctx, part="turns"), "done")

    def end(self, ctx: TickContext, env: ActivityEnv, scope: CallScope, how: str) -> None:
        """Stopped from outside (the run ended): the session logs why, then participants are released."""
        self.session.end(how if how in ("interrupted", "run_ended") else "interrupted", self._timed(ctx, scope))
        super().end(ctx, env, scope, how)

    def outcome(self, agent: str) -> Outcome | None:
        turns = self.session.progress.turns
        if not turns:
            return None
        others = [p for p in self.participants if p != agent]
        return Outcome(activity=self.kind, activity_id=self.id, place=self.place, others=others,
                       transcript=[(t.speaker, t.content) for t in turns])

    def extra_state(self) -> dict[str, Any]:
        return {"session": self.session.get_state(), "minutes_per_message": self.minutes_per_message,
                "recalled": self.recalled, "began": self.began.isoformat() if self.began else None}

    def restore_extra(self, state: dict[str, Any]) -> None:
        self.session = RoleplaySession.from_state(state["session"])
        self.minutes_per_message = state["minutes_per_message"]
        self.recalled = state["recalled"]
        self.began = datetime.fromisoformat(state["began"]) if state["began"] else None


def session_appointments(scenario: Scenario) -> list[Appointment]:
    """The scenario's role-play sessions as appointments, numbered in file order (`session-1`, ...)."""
    booked = []
    for number, spec in enumerate(scenario.sessions, 1):
        if isinstance(spec, RoleplaySpec):
            session_id = f"session-{number}"
            activity = Roleplay(session_id, setup_from_scenario(session_id, spec, scenario), spec.minutes_per_message)
            at = scenario.clock.start if spec.at in ("start", "meeting") else spec.at
            meeting = [spec.assistant.agent, spec.user.agent] if spec.at == "meeting" else []
            booked.append(Appointment(at=at, activity=activity.get_state(), order=number, meeting=meeting))
    return booked
