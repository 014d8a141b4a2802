"""The activity interface: something that holds agents over ticks, as an explicit, snapshottable state machine."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from agents.agent import Agent, Outcome
from agents.context import Phase, TickContext
from agents.gateway import CallScope, ModelGateway
from worlds.events import ActivityEnded, ActivityStarted
from worlds.scenario import Scenario
from worlds.world import World


@dataclass
class ActivityEnv:
    """What activities act on: the world, the agents, the model gateway and the scenario's settings."""

    world: World
    agents: dict[str, Agent]
    gateway: ModelGateway
    scenario: Scenario


class Activity(ABC):
    """Occupies its participants from `start` until `finished`; `get_state`/`set_state` cover everything it holds.

    Subclasses set `kind`, keep their progress in plain fields (a state machine, never a generator),
    and register themselves in `ACTIVITY_TYPES` so snapshots can rebuild them.
    """

    kind: ClassVar[str]
    #: A routine that a reaction or a due appointment may cut short.
    interruptible: ClassVar[bool] = False

    def __init__(self, activity_id: str, participants: list[str], place: str) -> None:
        self.id = activity_id
        self.participants = participants
        self.place = place
        self.finished = False

    def scope(self, ctx: TickContext, agent: str | None = None, part: str = "") -> CallScope:
        """This activity's event buffer in the advance phase (one per `part`, joined in part order)."""
        return ctx.scope(Phase.ADVANCE, f"{self.id}/{part}", agent)

    @abstractmethod
    def status(self, agent: str) -> str:
        """The one-line status a participant shows while in this activity."""

    def start(self, ctx: TickContext, env: ActivityEnv, scope: CallScope) -> None:
        """Announce the activity; subclasses add what starting changes in the world."""
        for name in self.participants:
            env.agents[name].state.status = self.status(name)

    @abstractmethod
    async def advance(self, ctx: TickContext, env: ActivityEnv) -> None:
        """One tick of progress; sets `finished` when done."""

    def end(self, ctx: TickContext, env: ActivityEnv, scope: CallScope, how: str) -> None:
        """Close the activity (`how`: done, interrupted or run_ended) and hand each participant its outcome."""
        self.finished = True
        for name in self.participants:
            outcome = self.outcome(name)
            if outcome is not None and how != "run_ended":
                env.agents[name].state.outcomes.append(outcome)

    def outcome(self, agent: str) -> Outcome | None:
        """What this activity leaves the agent to think about once it ends (None: nothing)."""
        return None

    def get_state(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "participants": self.participants, "place": self.place,
                "finished": self.finished, **self.extra_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.id, self.participants, self.place = state["id"], state["participants"], state["place"]
        self.finished = state["finished"]
        self.restore_extra(state)

    @abstractmethod
    def extra_state(self) -> dict[str, Any]:
        """The subclass's own fields, JSON-able."""

    @abstractmethod
    def restore_extra(self, state: dict[str, Any]) -> None:
        """Set the subclass's own fields from `extra_state`'s output."""


class SoloActivity(Activity):
    """An activity of one agent announced by activity_started/ended events (travel, actions, sleep)."""

    description: str = ""
    object: str | None = None
    until: Any = None

    def start(self, ctx: TickContext, env: ActivityEnv, scope: CallScope) -> None:
        super().start(ctx, env, scope)
        scope.emit(ActivityStarted(
            tick=ctx.tick, sim_time=ctx.now, agents=list(self.participants), activity_id=self.id, activity=self.kind,
            place=self.place, description=self.description, object=self.object, until=self.until,
        ))

    def end(self, ctx: TickContext, env: ActivityEnv, scope: CallScope, how: str) -> None:
        scope.emit(ActivityEnded(tick=ctx.tick, sim_time=ctx.now, agents=list(self.participants), activity_id=self.id,
                                 activity=self.kind, outcome=how))
        super().end(ctx, env, scope, how)


ACTIVITY_TYPES: dict[str, type[Activity]] = {}


def register(cls: type[Activity]) -> type[Activity]:
    """Class decorator: make an activity kind restorable from snapshots."""
    ACTIVITY_TYPES[cls.kind] = cls
    return cls


def restore(state: dict[str, Any]) -> Activity:
    """Rebuild an activity from `get_state` output."""
    activity = ACTIVITY_TYPES[state["kind"]].__new__(ACTIVITY_TYPES[state["kind"]])
    activity.set_state(state)
    return activity
