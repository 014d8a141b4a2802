"""Every event a run records: one typed record each, told apart by `kind`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter

from agents.gateway.records import (
    ModelCallRecord,
    ModelFallbackRecord,
    ModelRepairRecord,
    ModelRetryRecord,
)
from agents.plans import PlanStep
from agents.roleplay.records import (
    CriticChoiceRecord,
    SessionEndedRecord,
    SessionMessageRecord,
    SessionStartedRecord,
)
from memory.reports import (
    ImportanceScored,
    MemoryAdded,
    MemoryRetrieved,
    ReflectionRecorded,
)

#: Fields that vary with the machine rather than the simulation; ignored when comparing logs. Reused prompt
#: tokens depend on which call reached a llama.cpp model first and what the process kept from before.
WALL_CLOCK_FIELDS = frozenset({"wall_time", "latency_s", "run_id", "out_dir", "prompt_tokens_reused"})
#: The log format this code writes, and the newest it reads; bump it when an older reader would misread a log.
LOG_FORMAT = 1


class EventBase(BaseModel):
    """What every event carries: order, simulated and real time, and who it concerns."""

    seq: int = -1
    tick: int
    sim_time: datetime
    wall_time: datetime | None = None
    agents: list[str] = Field(default_factory=list)


class ForkOrigin(BaseModel):
    """Where a fork came from: the parent run, the tick boundary it starts at, and the `--set` edits made there."""

    parent: str
    parent_run: str
    at: datetime
    tick: int
    edits: list[str] = Field(default_factory=list)


class RunStarted(EventBase):
    kind: Literal["run_started"] = "run_started"
    #: What every writer writes; a log from before the field existed is format 1 (`check_log_format`).
    log_format: int = LOG_FORMAT
    run_id: str
    scenario: str
    seed: int
    model: str
    until: datetime
    fork: ForkOrigin | None = None


class RunEnded(EventBase):
    kind: Literal["run_ended"] = "run_ended"
    status: Literal["completed", "interrupted", "failed", "budget"]
    ticks: int
    detail: str = ""


class TickCompleted(EventBase):
    """Closes a tick; everything before it in the log belongs to finished ticks."""

    kind: Literal["tick"] = "tick"
    positions: dict[str, str]
    #: Each agent's one-line status at the end of the tick (what inspect and replay show).
    status: dict[str, str] = Field(default_factory=dict)


class Moved(EventBase):
    kind: Literal["move"] = "move"
    origin: str
    destination: str


class ActivityStarted(EventBase):
    """An agent begins travelling, a planned action, or sleep (conversations have their own events)."""

    kind: Literal["activity_started"] = "activity_started"
    activity_id: str
    activity: str
    place: str
    description: str
    object: str | None = None
    until: datetime | None = None


class ActivityEnded(EventBase):
    kind: Literal["activity_ended"] = "activity_ended"
    activity_id: str
    activity: str
    outcome: Literal["done", "interrupted", "run_ended"]
    detail: str = ""


class ObjectChanged(EventBase):
    """An action changed an object's state, seen by everyone present."""

    kind: Literal["object_state"] = "object_state"
    place: str
    object: str
    state: str


class PlanMade(EventBase):
    """A plan at one level (day, hour blocks, minute actions), or a re-plan of the rest of the day."""

    kind: Literal["plan"] = "plan"
    level: Literal["day", "hours", "actions", "replan"]
    items: list[PlanStep]


class Reacted(EventBase):
    """An agent noticed someone and decided what to do about it."""

    kind: Literal["reaction"] = "reaction"
    other: str
    decision: Literal["talk", "wait", "carry_on"]
    reason: str = ""


class RelationshipUpdated(EventBase):
    """An agent's one-line view of another, rewritten after they talked."""

    kind: Literal["relationship"] = "relationship"
    other: str
    summary: str


class ProbeAnswered(EventBase):
    """An interview question asked by the scenario, answered from the agent's own memory."""

    kind: Literal["probe_answer"] = "probe_answer"
    probe: int
    question: str
    answer: str
    memories: list[str]


class ConversationStarted(EventBase):
    kind: Literal["conversation_started"] = "conversation_started"
    conversation_id: str
    place: str


class Utterance(EventBase):
    kind: Literal["utterance"] = "utterance"
    conversation_id: str
    speaker: str
    place: str
    text: str


class ConversationEnded(EventBase):
    kind: Literal["conversation_ended"] = "conversation_ended"
    conversation_id: str
    place: str
    reason: Literal["farewell", "max_lines", "repetition", "model_unavailable", "run_ended", "interrupted"]
    lines: int


class ModelCall(EventBase, ModelCallRecord):
    pass


class ModelRetry(EventBase, ModelRetryRecord):
    pass


class ModelRepair(EventBase, ModelRepairRecord):
    pass


class ModelFallback(EventBase, ModelFallbackRecord):
    pass


class MemoryAddedEvent(EventBase, MemoryAdded):
    pass


class ImportanceScoredEvent(EventBase, ImportanceScored):
    pass


class MemoryRetrievedEvent(EventBase, MemoryRetrieved):
    pass


class ReflectionEvent(EventBase, ReflectionRecorded):
    pass


class SessionStarted(EventBase, SessionStartedRecord):
    """A role-play session with its task settled; `agents` are the world agents in it."""


class SessionMessage(EventBase, SessionMessageRecord):
    pass


class CriticChose(EventBase, CriticChoiceRecord):
    pass


class SessionEnded(EventBase, SessionEndedRecord):
    pass


class TasksBrainstormed(EventBase):
    """A batch's tasks for one pair of roles; a re-run uses these instead of asking again."""

    kind: Literal["tasks_brainstormed"] = "tasks_brainstormed"
    assistant_role: str
    user_role: str
    requested: int
    tasks: list[str]


class BatchUnitDone(EventBase):
    """Closes one unit of a batch (its start, a pair's tasks, a session): what precedes it is complete."""

    kind: Literal["batch_unit"] = "batch_unit"
    unit: str


class Warning_(EventBase):
    kind: Literal["warning"] = "warning"
    message: str


class Error(EventBase):
    kind: Literal["error"] = "error"
    message: str
    detail: str = ""


Event = Annotated[
    RunStarted | RunEnded | TickCompleted | Moved | ActivityStarted | ActivityEnded | ObjectChanged | PlanMade
    | Reacted | RelationshipUpdated | ProbeAnswered | ConversationStarted | Utterance | ConversationEnded
    | ModelCall | ModelRetry | ModelRepair | ModelFallback
    | MemoryAddedEvent | ImportanceScoredEvent | MemoryRetrievedEvent | ReflectionEvent
    | SessionStarted | SessionMessage | CriticChose | SessionEnded | TasksBrainstormed | BatchUnitDone
    | Warning_ | Error,
    Field(discriminator="kind"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
#: Reports from the gateway and the memory stream, by kind, and the event type that places them in time.
_FROM_REPORT = {
    cls.model_fields["kind"].default: cls
    for cls in (ModelCall, ModelRetry, ModelRepair, ModelFallback,
                MemoryAddedEvent, ImportanceScoredEvent, MemoryRetrievedEvent, ReflectionEvent,
                SessionStarted, SessionMessage, CriticChose, SessionEnded)
}


def from_report(report: BaseModel, tick: int, sim_time: datetime) -> EventBase:
    """Place a gateway or memory report on the simulation timeline (events pass through unchanged)."""
    if isinstance(report, EventBase):
        return report
    data = dict(report)  # field values as they are: the report was validated when it was made
    agents = [data["agent"]] if data.get("agent") else []
    return _FROM_REPORT[data["kind"]].model_construct(seq=-1, wall_time=None, tick=tick, sim_time=sim_time,
                                                      agents=agents, **data)
