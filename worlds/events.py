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
from memory.reports import (
    ImportanceScored,
    MemoryAdded,
    MemoryRetrieved,
    ReflectionRecorded,
)

#: Fields that vary with the machine rather than the simulation; ignored when comparing logs.
WALL_CLOCK_FIELDS = frozenset({"wall_time", "latency_s", "run_id", "out_dir"})


class EventBase(BaseModel):
    """What every event carries: order, simulated and real time, and who it concerns."""

    seq: int = -1
    tick: int
    sim_time: datetime
    wall_time: datetime | None = None
    agents: list[str] = Field(default_factory=list)


class RunStarted(EventBase):
    kind: Literal["run_started"] = "run_started"
    run_id: str
    scenario: str
    seed: int
    model: str
    until: datetime
    resumed: bool = False


class RunEnded(EventBase):
    kind: Literal["run_ended"] = "run_ended"
    status: Literal["completed", "interrupted", "failed"]
    ticks: int
    detail: str = ""


class TickCompleted(EventBase):
    """Closes a tick; everything before it in the log belongs to finished ticks."""

    kind: Literal["tick"] = "tick"
    positions: dict[str, str]


class Moved(EventBase):
    kind: Literal["move"] = "move"
    origin: str
    destination: str


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
    reason: Literal["farewell", "max_lines", "repetition", "model_unavailable", "run_ended"]
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


class Warning_(EventBase):
    kind: Literal["warning"] = "warning"
    message: str


class Error(EventBase):
    kind: Literal["error"] = "error"
    message: str
    detail: str = ""


_EVENT_TYPES = (
    RunStarted, RunEnded, TickCompleted, Moved, ConversationStarted, Utterance, ConversationEnded,
    ModelCall, ModelRetry, ModelRepair, ModelFallback,
    MemoryAddedEvent, ImportanceScoredEvent, MemoryRetrievedEvent, ReflectionEvent, Warning_, Error,
)
Event = Annotated[
    RunStarted | RunEnded | TickCompleted | Moved | ConversationStarted | Utterance | ConversationEnded
    | ModelCall | ModelRetry | ModelRepair | ModelFallback
    | MemoryAddedEvent | ImportanceScoredEvent | MemoryRetrievedEvent | ReflectionEvent | Warning_ | Error,
    Field(discriminator="kind"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EVENT_KINDS = sorted(cls.model_fields["kind"].default for cls in _EVENT_TYPES)
#: Reports from the gateway and the memory stream, by kind, and the event type that places them in time.
_FROM_REPORT = {
    cls.model_fields["kind"].default: cls
    for cls in (ModelCall, ModelRetry, ModelRepair, ModelFallback,
                MemoryAddedEvent, ImportanceScoredEvent, MemoryRetrievedEvent, ReflectionEvent)
}


def from_report(report: BaseModel, tick: int, sim_time: datetime) -> EventBase:
    """Place a gateway or memory report on the simulation timeline."""
    data = report.model_dump()
    agents = [data["agent"]] if data.get("agent") else []
    return _FROM_REPORT[data["kind"]](tick=tick, sim_time=sim_time, agents=agents, **data)
