"""`simulacra replay`: a world run's log read once into the compact model that the HTML replay page draws.

Times are minutes from the clock's start; agents, places and status lines are indices into the lists
the model carries once, so a long run's page stays small. Every string here comes from the log or
the scenario and is untrusted: the page only ever shows it as text.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from memory.errors import InputError
from worlds.diffusion import DiffusionTracker
from worlds.events import (
    EVENT_ADAPTER,
    ActivityEnded,
    ActivityStarted,
    ConversationEnded,
    ConversationStarted,
    Event,
    MemoryAddedEvent,
    ProbeAnswered,
    ReflectionEvent,
    RunEnded,
    RunStarted,
    SessionEnded,
    SessionMessage,
    SessionStarted,
    TickCompleted,
    Utterance,
)
from worlds.places import PlaceGraph
from worlds.runfolder import RunFolder
from worlds.scenario import Scenario, load_any
from worlds.timeline.select import EventFilter, select

MINUTE = timedelta(minutes=1)
#: The page's place graph is drawn in this many SVG units.
VIEW_WIDTH, VIEW_HEIGHT = 640.0, 440.0


class PlaceNode(BaseModel):
    """A place (or, with `hub`, an area's centre) at its spot in the drawing."""

    name: str
    area: str
    x: float
    y: float
    hub: bool = False
    #: Which side of the node its label goes ("start": to the right, "end": to the left).
    anchor: Literal["start", "middle", "end"] = "middle"


class Route(BaseModel):
    """A walkable edge between two nodes (indices into `places`)."""

    a: int
    b: int
    minutes: float


class Block(BaseModel):
    """One stretch of an agent's time on its lane: an action, travel, sleep, a conversation or a session."""

    lane: int
    kind: str
    start: float
    end: float
    text: str
    #: The conversation or session this block belongs to, which opens its transcript.
    ref: str | None = None


class Line(BaseModel):
    speaker: str
    text: str
    minute: float
    #: A session message's role and part ("user", "assistant, draft"); empty in a conversation.
    role: str = ""


class Dialogue(BaseModel):
    """A conversation or a session, with its transcript, linking the lanes of those in it."""

    id: str
    kind: Literal["conversation", "roleplay", "loop"]
    lanes: list[int]
    start: float
    end: float
    place: str = ""
    #: A session's task, or a loop's name and task.
    title: str = ""
    ended: str = ""
    lines: list[Line] = Field(default_factory=list)


class Frame(BaseModel):
    """What a tick's closing record says: where each agent is and its status line (indices; -1 for none)."""

    minute: float
    places: list[int]
    status: list[int]


class CitedMemory(BaseModel):
    id: str
    #: None when the memory is not in the log (a citation the log cannot resolve).
    text: str | None


class Insight(BaseModel):
    text: str
    cites: list[CitedMemory]


class Reflection(BaseModel):
    id: str
    lane: int
    minute: float
    questions: list[str]
    insights: list[Insight]


class ProbeAnswerView(BaseModel):
    agent: str
    answer: str
    memories: list[str]
    #: How the answer stands against the probe's expected words (worlds/diffusion.py's verdict).
    verdict: str = "not checked"


class SpreadStep(BaseModel):
    minute: float
    heard: int


class ProbeView(BaseModel):
    number: int
    question: str
    minute: float
    expect: list[str] = Field(default_factory=list)
    answers: list[ProbeAnswerView] = Field(default_factory=list)
    #: Hour by hour, how many agents had met the probe's fact; empty without expected words.
    spread: list[SpreadStep] = Field(default_factory=list)


class HourCount(BaseModel):
    conversations: int = 0
    calls: int = 0


class ReplayModel(BaseModel):
    """Everything the replay page shows, as the JSON it embeds."""

    run: str
    scenario: str
    model: str
    status: str
    #: The clock's start as wall-clock parts [year, month, day, hour, minute]: the page counts minutes from it.
    start: list[int]
    zone: str
    step: float
    end: float
    agents: list[str]
    places: list[PlaceNode]
    routes: list[Route]
    texts: list[str]
    frames: list[Frame]
    blocks: list[Block]
    dialogues: list[Dialogue]
    reflections: list[Reflection]
    probes: list[ProbeView]
    hours: list[HourCount]
    skipped: list[str] = Field(default_factory=list)


class BatchFolderError(InputError):
    """A batch's folder holds sessions, not a world over time: nothing for the replay to draw."""


def place_layout(scenario: Scenario) -> tuple[list[PlaceNode], list[Route]]:
    """Places around their area's centre, areas around the middle, in scenario order: the same drawing every time."""
    graph = PlaceGraph(scenario)
    areas = list(scenario.world.places)
    hubs = not scenario.world.routes
    cx, cy = VIEW_WIDTH / 2, VIEW_HEIGHT / 2
    nodes: list[PlaceNode] = []
    if hubs:
        spread = 0.0 if len(areas) == 1 else min(cx, cy) * 0.5
        # one area fills the drawing; several share it without their rings touching
        ring = min(cx, cy) * 0.68 if len(areas) == 1 else \
            min(min(cx, cy) * 0.36, spread * math.sin(math.pi / len(areas)))
        for i, area in enumerate(areas):
            angle = 2 * math.pi * i / len(areas) - math.pi / 2
            hx, hy = cx + spread * math.cos(angle), cy + spread * math.sin(angle)
            nodes.append(PlaceNode(name=area, area=area, x=round(hx, 1), y=round(hy, 1), hub=True))
            nodes += _ring([(place, area) for place in scenario.world.places[area]], hx, hy, ring, angle)
    else:
        everything = [(place, area) for area in areas for place in scenario.world.places[area]]
        nodes += _ring(everything, cx, cy, min(cx, cy) * 0.75, -math.pi / 2)
    index = {(node.hub, node.name): i for i, node in enumerate(nodes)}

    def node_index(node: object) -> int:
        return index[(False, node)] if isinstance(node, str) else index[(True, getattr(node, "area"))]

    routes = [Route(a=node_index(a), b=node_index(b), minutes=round(us / 60e6, 2))
              for a, b, us in graph.routes.edges(data="us")]
    return nodes, sorted(routes, key=lambda r: (r.a, r.b))


def _ring(places: list[tuple[str, str]], x: float, y: float, radius: float, facing: float) -> list[PlaceNode]:
    """(place, area) pairs evenly on a circle, the first facing away from the middle; labels point outwards."""
    out = []
    for i, (place, area) in enumerate(places):
        angle = facing + 2 * math.pi * i / max(1, len(places))
        px, py = x + radius * math.cos(angle), y + radius * math.sin(angle)
        anchor = "middle" if abs(math.cos(angle)) < 0.3 else ("start" if math.cos(angle) > 0 else "end")
        out.append(PlaceNode(name=place, area=area, x=round(px, 1), y=round(py, 1), anchor=anchor))
    return out


#: Event kinds the replay reads; the rest of the log (model call bodies, plans, retrievals) is counted or passed over.
_READ = frozenset({"run_started", "run_ended", "tick", "activity_started", "activity_ended", "conversation_started",
                   "utterance", "conversation_ended", "session_started", "session_message", "session_ended",
                   "memory_added", "reflection", "probe_answer"})


class _Reader:
    """Builds the model from one pass over the log, keeping only what the page draws."""

    def __init__(self, folder: RunFolder, scenario: Scenario, warn: Callable[[str], None]) -> None:
        self.folder, self.scenario, self.warn = folder, scenario, warn
        self.start = scenario.clock.start
        self.step = scenario.clock.step.total_seconds() / 60
        self.agents = [persona.name for persona in scenario.agents]
        self.places, self.routes = place_layout(scenario)
        self.place_index = {node.name: i for i, node in enumerate(self.places) if not node.hub}
        self.texts: dict[str, int] = {}
        self.frames: list[Frame] = []
        self.blocks: list[Block] = []
        self.open_blocks: dict[str, tuple[ActivityStarted, int]] = {}
        self.dialogues: dict[str, Dialogue] = {}
        self.memories: dict[str, str] = {}
        self.reflections: list[Reflection] = []
        self.probes: dict[int, ProbeView] = {}
        self.calls: list[float] = []
        self.tracker = DiffusionTracker(scenario.probes)
        self.run, self.model, self.status = folder.path.name, "", "running or crashed"
        self.skipped: list[str] = []
        self.seen_first = False

    def minute(self, moment: datetime) -> float:
        return round((moment - self.start).total_seconds() / 60, 2)

    def lane(self, name: str) -> int:
        """The agent's lane; a name the scenario does not list (a foreign log) gets a lane of its own."""
        if name not in self.agents:
            self.agents.append(name)
        return self.agents.index(name)

    def text(self, value: str) -> int:
        return self.texts.setdefault(value, len(self.texts))

    def skip(self, message: str) -> None:
        self.skipped.append(message)
        self.warn(message)

    def read(self) -> ReplayModel:
        path = self.folder.events_path
        for record in select(path, EventFilter(), lambda number, why: self.skip(f"{path}:{number}: skipped: {why}")):
            kind = record["kind"]
            if kind == "model_call":
                self._count_call(record)
            if kind not in _READ and self.seen_first:
                continue
            try:
                event = EVENT_ADAPTER.validate_python(record)
            except ValidationError as exc:
                problem = exc.errors()[0]
                where = ".".join(str(part) for part in problem["loc"][1:]) or "(record)"
                self.skip(f"{path}: event seq {record.get('seq', '?')} ({kind}): skipped: {where}: {problem['msg']}")
                continue
            if not self.seen_first or kind in ("probe_answer", "utterance", "memory_added"):
                self.tracker.observe(event)
                self.seen_first = True
            self._take(event)
        return self._finish()

    def _count_call(self, record: dict) -> None:
        try:
            self.calls.append(self.minute(datetime.fromisoformat(record["sim_time"])))
        except (KeyError, TypeError, ValueError):
            self.skip(f"{self.folder.events_path}: event seq {record.get('seq', '?')} (model_call): "
                      "skipped: sim_time: not an ISO time")

    def _take(self, event: Event) -> None:
        at = self.minute(event.sim_time)
        if isinstance(event, RunStarted):
            self.run, self.model = event.run_id, event.model
        elif isinstance(event, RunEnded):
            self.status = event.status
        elif isinstance(event, TickCompleted):
            for name in [*event.positions, *event.status]:
                self.lane(name)
            places, status = [-1] * len(self.agents), [-1] * len(self.agents)
            for name, place in event.positions.items():
                places[self.agents.index(name)] = self.place_index.get(place, -1)
            for name, line in event.status.items():
                status[self.agents.index(name)] = self.text(line)
            self.frames.append(Frame(minute=at, places=places, status=status))
        elif isinstance(event, ActivityStarted) and event.agents:
            self.open_blocks[event.activity_id] = (event, self.lane(event.agents[0]))
        elif isinstance(event, ActivityEnded):
            self._close_activity(event.activity_id, at, event.outcome == "done")
        elif isinstance(event, ConversationStarted):
            self.dialogues[event.conversation_id] = Dialogue(
                id=event.conversation_id, kind="conversation", lanes=[self.lane(a) for a in event.agents],
                start=at, end=at, place=event.place)
        elif isinstance(event, Utterance) and event.conversation_id in self.dialogues:
            self.dialogues[event.conversation_id].lines.append(Line(speaker=event.speaker, text=event.text, minute=at))
        elif isinstance(event, ConversationEnded) and event.conversation_id in self.dialogues:
            talk = self.dialogues[event.conversation_id]
            talk.end, talk.ended = at + self.step, event.reason  # the closing tick was spent talking too
        elif isinstance(event, SessionStarted):
            kind = "roleplay" if event.loop == "roleplay" else "loop"
            title = event.specified_task or event.task
            self.dialogues[event.session_id] = Dialogue(
                id=event.session_id, kind=kind, lanes=[self.lane(a) for a in event.agents], start=at, end=at,
                title=title if kind == "roleplay" else f"{event.loop.replace('_', '-')}: {title}")
        elif isinstance(event, SessionMessage) and event.session_id in self.dialogues:
            role = ", ".join(part for part in (event.role, event.part) if part)
            self.dialogues[event.session_id].lines.append(
                Line(speaker=event.speaker, text=event.content, minute=at, role=role))
        elif isinstance(event, SessionEnded) and event.session_id in self.dialogues:
            session = self.dialogues[event.session_id]
            session.end, session.ended = at, event.reason
        elif isinstance(event, MemoryAddedEvent):
            self.memories[event.memory.id] = event.memory.text
        elif isinstance(event, ReflectionEvent):
            self._reflect(event, at)
        elif isinstance(event, ProbeAnswered):
            probe = self.probes.setdefault(event.probe, ProbeView(number=event.probe, question=event.question,
                                                                  minute=at))
            probe.answers.append(ProbeAnswerView(agent=event.agents[0] if event.agents else "", answer=event.answer,
                                                 memories=event.memories))

    def _close_activity(self, activity_id: str, at: float, done: bool) -> None:
        """A finished action or sleep lasted to its planned end (ticks are coarser); a cut one to the cut."""
        opened = self.open_blocks.pop(activity_id, None)
        if opened is None:
            return
        started, lane = opened
        planned = self.minute(started.until) if started.until is not None else at
        end = max(planned, at) if done else at
        where = f" @ {started.place}" if started.activity != "travel" else ""
        thing = f" (using {started.object})" if started.object else ""
        self.blocks.append(Block(lane=lane, kind=started.activity, start=self.minute(started.sim_time), end=end,
                                 text=f"{started.description}{thing}{where}"))

    def _reflect(self, event: ReflectionEvent, at: float) -> None:
        insights = [Insight(text=i.text, cites=[CitedMemory(id=m, text=self.memories.get(m)) for m in i.evidence])
                    for i in event.insights]
        self.reflections.append(Reflection(id=f"reflection-{event.seq}", lane=self.lane(event.agent), minute=at,
                                           questions=event.questions, insights=insights))

    def _finish(self) -> ReplayModel:
        end = self.frames[-1].minute + self.step if self.frames else 0.0
        for activity_id in list(self.open_blocks):  # still going when the log stops
            self._close_activity(activity_id, end, False)
        for frame in self.frames:  # lanes added after a frame was read
            frame.places += [-1] * (len(self.agents) - len(frame.places))
            frame.status += [-1] * (len(self.agents) - len(frame.status))
        dialogues = sorted(self.dialogues.values(), key=lambda d: (d.start, d.id))
        for dialogue in dialogues:
            dialogue.end = min(dialogue.end, end) if dialogue.ended else end
            for lane in dialogue.lanes:
                self.blocks.append(Block(lane=lane, kind=dialogue.kind, start=dialogue.start, end=dialogue.end,
                                         text=dialogue.title or f"talking @ {dialogue.place}", ref=dialogue.id))
        hours = [HourCount() for _ in range(max(1, math.ceil(end / 60)))]
        for minute in self.calls:
            hours[min(len(hours) - 1, max(0, int(minute // 60)))].calls += 1
        for dialogue in dialogues:
            if dialogue.kind == "conversation":
                hours[min(len(hours) - 1, max(0, int(dialogue.start // 60)))].conversations += 1
        return ReplayModel(
            run=self.run, scenario=self.scenario.name, model=self.model, status=self.status,
            start=[self.start.year, self.start.month, self.start.day, self.start.hour, self.start.minute],
            zone=self.start.strftime("%Z") or self.start.strftime("%z"), step=self.step, end=end,
            agents=self.agents, places=self.places, routes=self.routes, texts=list(self.texts), frames=self.frames,
            blocks=sorted(self.blocks, key=lambda b: (b.lane, b.start, b.end)), dialogues=dialogues,
            reflections=self.reflections, probes=self._probes(end), hours=hours, skipped=self.skipped)

    def _probes(self, end: float) -> list[ProbeView]:
        """The answers as the log has them, judged and followed over time by worlds/diffusion.py."""
        reports = {report.probe: report for report in self.tracker.report(self.start, self.start + end * MINUTE)}
        for number, probe in self.probes.items():
            report = reports.get(number)
            if report is None:
                continue
            probe.expect = report.expect
            for view, judged in zip(probe.answers, report.answers):
                view.verdict = judged.verdict
            probe.spread = [SpreadStep(minute=self.minute(point.at), heard=point.heard) for point in report.spread]
        return sorted(self.probes.values(), key=lambda p: p.number)


def build_replay(folder: RunFolder, warn: Callable[[str], None]) -> ReplayModel:
    """The page's model of a world run; `warn` hears of each line skipped (a batch folder is an input error)."""
    scenario = load_any(folder.scenario_path)
    if not isinstance(scenario, Scenario):
        raise BatchFolderError(f"{folder.path}: a batch folder (sessions without a world or a clock): replay draws "
                               "world runs; read a batch with `simulacra inspect` or `simulacra harvest`")
    return _Reader(folder, scenario, warn).read()
