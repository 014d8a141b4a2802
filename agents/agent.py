"""The agent: persona, memory stream, plan, relationships and whereabouts in one object that snapshots."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from agents.persona import Persona
from agents.plans import DayPlan
from agents.prompting import Section, bullet_list
from memory.stream import MemoryStream


class Relationship(BaseModel):
    """How an agent sees another: the scenario's label and its own one-line summary (who talked when is the world's)."""

    label: str = ""
    summary: str = ""
    #: When the agent last weighed talking to them: reactions to one person are spaced by the cooldown too.
    last_reaction: datetime | None = None


class Perception(BaseModel):
    """Something an agent noticed, worth a memory; `other` names the agent it concerns, if any."""

    text: str
    source_event: int | None = None
    other: str | None = None
    arrival: bool = False


class Outcome(BaseModel):
    """What a finished activity leaves each participant: a kind, a summary, and who else was in it."""

    activity: str
    activity_id: str
    place: str
    others: list[str] = Field(default_factory=list)
    transcript: list[tuple[str, str]] = Field(default_factory=list)
    #: A one-line account to remember as it is (a Self-* loop's result), where there is no transcript to digest.
    summary: str = ""
    source_event: int | None = None


class AgentState(BaseModel):
    """Everything about an agent that changes during a run, except its memories (the stream snapshots those)."""

    place: str
    status: str = ""
    activity: str | None = None
    activity_kind: str | None = None
    plan: DayPlan | None = None
    day_summary: str = ""
    relationships: dict[str, Relationship] = Field(default_factory=dict)
    inbox: list[Perception] = Field(default_factory=list)
    outcomes: list[Outcome] = Field(default_factory=list)
    #: Someone the agent decided to talk to once it is free (a reaction's `wait`).
    waiting_for: str | None = None
    #: Why the rest of the day should be re-planned at the next chance ("" when it need not be).
    replan_reason: str = ""


class Agent:
    """One simulated person; the engine moves it through time, its cognition modules think for it."""

    def __init__(self, persona: Persona, memory: MemoryStream, relationships: dict[str, str] | None = None) -> None:
        self.persona = persona
        self.memory = memory
        self.state = AgentState(
            place=persona.home,
            relationships={other: Relationship(label=label) for other, label in (relationships or {}).items()},
        )

    @property
    def name(self) -> str:
        return self.persona.name

    @property
    def busy(self) -> bool:
        return self.state.activity is not None

    @property
    def asleep(self) -> bool:
        return self.state.activity_kind == "sleep"

    def relationship(self, other: str) -> Relationship:
        return self.state.relationships.setdefault(other, Relationship())

    def get_state(self) -> dict:
        return {"agent": self.state.model_dump(mode="json"), "memory": self.memory.get_state()}

    def set_state(self, state: dict) -> None:
        self.state = AgentState.model_validate(state["agent"])
        self.memory.set_state(state["memory"])

    # Prompt sections this agent contributes; activities add their own beside these.

    def persona_section(self) -> Section:
        return Section(label="Who you are", text=self.persona.describe())

    def plan_section(self, now: datetime) -> Section:
        plan = self.state.plan
        if plan is None:
            return Section(label="Your plan", text="")
        block, action = plan.block_at(now), plan.action_at(now)
        lines = [f"{block.start:%H:%M}-{block.end:%H:%M} {block.description} ({block.place})"] if block else []
        if action:
            lines.append(f"right now: {action.description}")
        return Section(label="Your plan", text=bullet_list(lines))

    def relationship_section(self, others: list[str]) -> Section:
        lines = []
        for other in others:
            rel = self.state.relationships.get(other)
            if rel is None:
                lines.append(f"{other}: someone you have not talked to yet")
                continue
            lines.append(f"{other}: " + ("; ".join(x for x in (rel.label, rel.summary) if x) or "an acquaintance"))
        return Section(label="People here", text=bullet_list(lines))
