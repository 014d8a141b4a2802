"""Every event a run records: one typed record each, told apart by `kind`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter

from agents.gateway.records import ModelCallRecord, ModelFallbackRecord, ModelRepairRecord, ModelRetryRecord

#: Fields that vary with the machine rather than the simulation; ignored when comparing logs.
WALL_CLOCK_FIELDS = frozenset({"wall_time", "latency_s", "run_id", "out_dir"})


class EventBase(BaseModel):
    """What every event carries: order, simulated and real time, and who it concerns."""

    seq: int = 0
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
    reason: Literal["farewell", "max_lines", "model_unavailable", "run_ended"]
    lines: int


class ModelCall(EventBase, ModelCallRecord):
    pass


class ModelRetry(EventBase, ModelRetryRecord):
    pass


class ModelRepair(EventBase, ModelRepairRecord):
    pass


class ModelFallback(EventBase, ModelFallbackRecord):
    pass


class Warning_(EventBase):
    kind: Literal["warning"] = "warning"
    message: str


class Error(EventBase):
    kind: Literal["error"] = "error"
    message: str
    detail: str = ""


Event = Annotated[
    RunStarted | RunEnded | TickCompleted | Moved | ConversationStarted | Utterance | ConversationEnded
    | ModelCall | ModelRetry | ModelRepair | ModelFallback | Warning_ | Error,
    Field(discriminator="kind"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EVENT_KINDS = sorted(
    cls.model_fields["kind"].default
    for cls in (RunStarted, RunEnded, TickCompleted, Moved, ConversationStarted, Utterance, ConversationEnded,
                ModelCall, ModelRetry, ModelRepair, ModelFallback, Warning_, Error)
)
_FROM_RECORD = {
    "model_call": ModelCall, "model_retry": ModelRetry, "model_repair": ModelRepair, "model_fallback": ModelFallback,
}


def from_gateway_record(record: BaseModel, tick: int, sim_time: datetime) -> EventBase:
    """Place a gateway report on the simulation timeline."""
    data = record.model_dump()
    agents = [data["agent"]] if data.get("agent") else []
    return _FROM_RECORD[data["kind"]](tick=tick, sim_time=sim_time, agents=agents, **data)
