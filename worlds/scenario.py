"""The scenario file format: pydantic models, cross-checks, and errors that name file, line and field."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union

import networkx as nx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from agents.loops import LOOPS
from agents.loops.align import parse_principles
from agents.loops.instruct import SeedTask
from agents.loops.sandbox import SandboxLimits
from agents.persona import Persona
from agents.roleplay.setup import CriticOptions, RoleplayOptions
from memory.errors import InputError
from memory.scoring import RetrievalWeights
from worlds.budget import BudgetSpec
from worlds.clock import Clock
from worlds.timeparse import Duration, format_duration

M = TypeVar("M", bound=BaseModel)
#: A point on the clock, or `start` / `end` of the run.
Moment = datetime | Literal["start", "end"]
#: Caps on walking times: far beyond any town, low enough that summed paths never overflow a timedelta.
MAX_ROUTE_MINUTES = 7 * 24 * 60
MAX_WALK = timedelta(days=1)

#: Fields that no longer exist, by path, and why; old files get this reason instead of "extra inputs".
REMOVED_FIELDS: dict[tuple[str, ...], str] = {
    ("conversation", "move_chance"): "was removed: agents now move by their own plans; delete this field",
}


class Strict(BaseModel):
    """Every scenario record rejects unknown fields, so typos surface as errors."""

    model_config = ConfigDict(extra="forbid")


class ModelsSpec(Strict):
    default: str = "embedded"
    embeddings: str = "embedded"


class RouteSpec(Strict):
    """A two-way path between two places and the minutes it takes to walk it."""

    a: str
    b: str
    minutes: int = Field(gt=0, le=MAX_ROUTE_MINUTES)


class WorldSpec(Strict):
    #: area > place > objects; place names are unique across areas.
    places: dict[str, dict[str, list[str]]] = Field(min_length=1)
    walk: Duration = Field(default=timedelta(minutes=5), description="From a place to its area's centre.")
    routes: list[RouteSpec] = Field(default_factory=list, description="If given, the only paths between places.")
    earshot: int = Field(default=12, ge=1, le=1000, description="In a place with more people than this, each notices "
                                                                "only this many of those standing nearest.")


class RelationshipSpec(Strict):
    a: str
    b: str
    label: str


class ConversationSpec(Strict):
    """How the meeting-and-talking loop paces conversations."""

    min_lines: int = Field(default=4, ge=2, le=200, description="Lines said before a goodbye is honoured.")
    max_lines: int = Field(default=8, ge=2, le=200)
    lines_per_tick: int = Field(default=2, ge=1, le=50)
    cooldown: Duration = timedelta(hours=2)


class MemorySpec(Strict):
    """Where memories live and how retrieval and reflection are tuned."""

    store: Literal["chroma", "memory"] = "chroma"
    retrieve_k: int = Field(default=5, ge=1, le=100)
    reflection_threshold: float = Field(default=150.0, gt=0)
    attention: int = Field(default=5, ge=1, le=50, description="Perceptions an agent keeps per tick (its attention bandwidth).")
    flush_every: int = Field(
        default=6, ge=1, le=10_000,
        description="Ticks between store flushes; the event log, written every tick, holds every memory meanwhile.",
    )
    commit_batch: int = Field(
        default=1, ge=1, le=200,
        description="Score an agent's new memories (one call) once this many have queued: during the next tick, "
                    "beside the agents' thinking, retrievable from its end; 1 scores every tick. Raise it for a "
                    "model that serves one call at a time.",
    )
    weights: RetrievalWeights = RetrievalWeights()


class SessionRole(Strict):
    """One side of a session: a role title, a world agent, or both (the agent plays the role)."""

    role: str | None = Field(default=None, min_length=1)
    agent: str | None = None

    @model_validator(mode="after")
    def _someone(self) -> SessionRole:
        if self.role is None and self.agent is None:
            raise ValueError("give a role, an agent, or both")
        return self


class RoleplaySession(RoleplayOptions, Strict):
    """A CAMEL role-play placed on the clock: it starts at `at` once its world agents are free.

    `at: meeting` books it on an encounter instead: the next time its two world agents meet and
    one decides to talk to the other, they hold this session rather than a chat.
    """

    type: Literal["roleplay"]
    at: Moment | Literal["meeting"]
    assistant: SessionRole
    user: SessionRole
    task: str = Field(min_length=1)
    critic: CriticOptions | None = None
    minutes_per_message: int = Field(default=2, ge=1, le=240, description="Simulated minutes each message takes.")


class LoopSessionBase(Strict):
    """A Self-* loop on the clock, run by a world agent (its persona and memories) or by a free role."""

    at: Moment
    agent: str | None = None
    role: str | None = Field(default=None, min_length=1, description="The role title the loop's actor plays.")
    task: str = Field(min_length=1, description="The task, question or problem the loop works on.")
    minutes_per_message: int = Field(default=2, ge=1, le=240, description="Simulated minutes each message takes.")


class LoopBatchBase(Strict):
    """A Self-* loop run over an input file, one session per line (Self-Instruct: one growing pool)."""

    input: str | None = Field(default=None, description="JSONL, relative to the scenario file; Self-Instruct: the "
                                                         "seed tasks (default: the 175 that ship with simulacra).")
    role: str | None = Field(default=None, min_length=1)
    concurrency: int = Field(default=8, ge=1, le=1024, description="Sessions in progress at once.")
    start: datetime = Field(default=datetime(2024, 1, 1, 9, 0), description="Time stamped on the first message.")
    minutes_per_message: int = Field(default=2, ge=1, le=240)


#: Files a loop reads, by the field that names them; loading fills the option they stand for.
LOOP_FILES = {"self_align": ("principles_file", "principles"), "self_instruct": ("seeds_file", "seeds")}


def _loop_model(kind: str, base: type[BaseModel]) -> type[BaseModel]:
    """A loop's scenario record: its own options (shared with the loop itself) on a world or batch base."""
    options = LOOPS[kind].options_type
    fields: dict[str, Any] = {"type": (Literal[kind], ...)}
    if kind in LOOP_FILES:
        fields[LOOP_FILES[kind][0]] = (str | None, Field(default=None, description="Relative to the scenario file."))
    if kind == "self_instruct" and base is LoopSessionBase:
        fields["task"] = (str, "Grow a set of instructions from the seed tasks")
    name = "".join(part.capitalize() for part in kind.split("_")) + ("Session" if base is LoopSessionBase else "Batch")
    return create_model(name, __base__=(options, base), **fields)


LOOP_SESSIONS = {kind: _loop_model(kind, LoopSessionBase) for kind in LOOPS}
LOOP_BATCHES = {kind: _loop_model(kind, LoopBatchBase) for kind in LOOPS}

Session = Annotated[RoleplaySession | Union[tuple(LOOP_SESSIONS.values())], Field(discriminator="type")]
LoopBatch = Annotated[Union[tuple(LOOP_BATCHES.values())], Field(discriminator="type")]


class Probe(Strict):
    at: Moment
    ask: Literal["all"] | list[str] | str
    question: str
    expect: list[str] = Field(
        default_factory=list,
        description="Words that show an agent knows the fact asked about (any one, case-insensitive); "
                    "stats uses them to trace how the fact spread.",
    )


class Scenario(Strict):
    """A whole simulation: who, where, when, and what to ask them."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    seed: int = 0
    clock: Clock
    models: ModelsSpec = ModelsSpec()
    world: WorldSpec
    agents: list[Persona] = Field(min_length=1)
    relationships: list[RelationshipSpec] = Field(default_factory=list)
    conversation: ConversationSpec = ConversationSpec()
    memory: MemorySpec = MemorySpec()
    sessions: list[Session] = Field(default_factory=list)
    probes: list[Probe] = Field(default_factory=list)
    budget: BudgetSpec = BudgetSpec()
    snapshot_every: int = Field(default=36, ge=1, le=100_000,
                                description="Ticks between run snapshots (checkpoints/), what `simulacra resume` "
                                            "starts from.")

    def place_names(self) -> list[str]:
        return [place for places in self.world.places.values() for place in places]


class RoleList(Strict):
    """Role names from a text file (one per line; `1. Name` numbering is dropped) or given inline."""

    file: str | None = Field(default=None, description="Relative to the scenario file.")
    names: list[str] = Field(default_factory=list)
    take: int | None = Field(default=None, ge=1, description="Use only the first this many roles.")


class SocietySpec(Strict):
    """CAMEL's AI Society recipe: every assistant role with every user role, k brainstormed tasks each."""

    assistant_roles: RoleList
    user_roles: RoleList
    tasks_per_pair: int = Field(default=10, ge=1, le=100)
    concurrency: int = Field(default=16, ge=1, le=1024, description="Sessions in progress at once.")
    session: RoleplayOptions = RoleplayOptions()
    critic: CriticOptions | None = None
    start: datetime = Field(default=datetime(2024, 1, 1, 9, 0), description="Time stamped on the first message.")
    minutes_per_message: int = Field(default=2, ge=1, le=240)


class SocietyScenario(Strict):
    """A batch of role-play sessions with no world: a corpus generator."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    seed: int = 0
    models: ModelsSpec = ModelsSpec()
    society: SocietySpec
    budget: BudgetSpec = BudgetSpec()


class LoopBatchScenario(Strict):
    """A Self-* loop over an input file, with no world: one session per input line, resumable."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    seed: int = 0
    models: ModelsSpec = ModelsSpec()
    loops: LoopBatch
    budget: BudgetSpec = BudgetSpec()


class Problem(BaseModel):
    """One thing wrong with a scenario, located in its file."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


class ScenarioError(InputError):
    """A scenario failed to load; carries every problem found, not only the first."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


Loc = tuple[int | str, ...]

#: Every field name a scenario record has; a `loc` part not among them is a validator-only label.
_FIELD_NAMES = frozenset(
    name
    for model in (Scenario, Clock, ModelsSpec, WorldSpec, RouteSpec, Persona, RelationshipSpec, ConversationSpec,
                  SessionRole, RoleplaySession, CriticOptions, Probe, RoleplayOptions,
                  RoleList, SocietySpec, SocietyScenario, LoopBatchScenario, SandboxLimits,
                  *LOOP_SESSIONS.values(), *LOOP_BATCHES.values())
    for name in model.model_fields
)


def _field_path(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def _locate(root: yaml.Node | None, loc: Loc) -> tuple[int, Loc]:
    """The 1-based line of the deepest node `loc` reaches, and `loc` without validator-only parts."""
    if root is None:
        return 1, loc
    node, line, shown = root, root.start_mark.line + 1, []
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    child, line = value, key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is not None:
            node = child
            shown.append(part)
        elif isinstance(part, str) and isinstance(node, yaml.MappingNode) and part in _FIELD_NAMES:
            # A field the document lacks; other parts are union-branch labels pydantic adds
            # (a session's `type` tag, or `literal['all']` / `list[str]` for a mapping given to `ask`).
            shown.append(part)
    return line, tuple(shown)


def _cross_check(s: Scenario) -> list[tuple[Loc, str]]:
    """Rules that span fields: names resolve, times fall inside the clock, the clock runs forward."""
    problems: list[tuple[Loc, str]] = []
    if s.clock.step <= timedelta(0):
        problems.append((("clock", "step"), "must be longer than zero"))
    # Times with and without a UTC offset cannot be compared; say so instead of crashing on `<`.
    zoned = s.clock.start.utcoffset() is not None
    clash = "has no time zone but clock.start has one" if zoned else "has a time zone but clock.start has none"
    clock_ok = (s.clock.stop.utcoffset() is not None) == zoned
    if not clock_ok:
        problems.append((("clock", "stop"), clash))
    elif s.clock.stop <= s.clock.start:
        problems.append((("clock", "stop"), f"must be after clock.start ({s.clock.start.isoformat()})"))
    places = s.place_names()
    seen_places: set[str] = set()
    for area, area_places in s.world.places.items():
        for place in area_places:
            if place in seen_places:
                problems.append((("world", "places", area, place), f"place {place!r} appears in more than one area"))
            seen_places.add(place)
    for area in s.world.places:
        if area in seen_places:
            problems.append((("world", "places", area), f"area {area!r} has the same name as a place"))
    problems += _check_routes(s.world, places)
    names: set[str] = set()
    for i, agent in enumerate(s.agents):
        if agent.name in names:
            problems.append((("agents", i, "name"), f"agent name {agent.name!r} is used twice"))
        names.add(agent.name)
        if agent.home not in seen_places:
            problems.append((("agents", i, "home"), f"unknown place {agent.home!r}; places are: {', '.join(places)}"))

    def known(loc: Loc, who: str | None) -> None:
        if who is not None and who not in names:
            problems.append((loc, f"unknown agent {who!r}"))

    def inside_clock(loc: Loc, moment: Any) -> None:
        if not isinstance(moment, datetime) or not clock_ok:
            return
        if (moment.utcoffset() is not None) != zoned:
            problems.append((loc, f"{moment.isoformat()} {clash}"))
        elif not s.clock.start <= moment <= s.clock.stop:
            problems.append((loc, f"{moment.isoformat()} is outside the clock ({s.clock.start} to {s.clock.stop})"))

    for i, rel in enumerate(s.relationships):
        known(("relationships", i, "a"), rel.a)
        known(("relationships", i, "b"), rel.b)
    for i, session in enumerate(s.sessions):
        inside_clock(("sessions", i, "at"), session.at)
        if session.at == "end" or (clock_ok and isinstance(session.at, datetime)
                                   and (session.at.utcoffset() is not None) == zoned and session.at >= s.clock.stop):
            problems.append((("sessions", i, "at"), "a session cannot start when the run ends; give an earlier "
                                                    "time or `start`"))
        if isinstance(session, RoleplaySession):
            known(("sessions", i, "assistant", "agent"), session.assistant.agent)
            known(("sessions", i, "user", "agent"), session.user.agent)
            if session.critic is not None:
                known(("sessions", i, "critic", "agent"), session.critic.agent)
            players = [p.agent for p in (session.assistant, session.user) if p.agent]
            if len(players) == 2 and players[0] == players[1]:
                problems.append((("sessions", i, "user", "agent"), "must differ from the assistant's agent"))
            if session.at == "meeting" and len(players) < 2:
                problems.append((("sessions", i, "at"), "`meeting` starts a session when its two world agents "
                                                        "meet: give an agent on both sides"))
        else:
            known(("sessions", i, "agent"), session.agent)
            if session.type == "self_debug" and not session.tests.strip():
                problems.append((("sessions", i, "tests"), "Self-Debug needs the tests its code must pass"))
    for i, probe in enumerate(s.probes):
        inside_clock(("probes", i, "at"), probe.at)
        asked = [] if probe.ask == "all" else [probe.ask] if isinstance(probe.ask, str) else probe.ask
        for who in asked:
            known(("probes", i, "ask"), who)
    return problems


def read_role_list(path: Path) -> list[str]:
    """Role names from a text file; raises ScenarioError naming the file and line when it is unusable."""
    shown = str(path)
    text = read_text(path)
    names = []
    for number, line in enumerate(text.splitlines(), 1):
        name = re.sub(r"^\s*\d+[.)]\s*", "", line).strip()
        if name:
            names.append(name)
        if len(name) > 200:
            raise ScenarioError([Problem(file=shown, line=number, field="(role)", message="a role name over 200 characters")])
    if not names:
        raise ScenarioError([Problem(file=shown, line=1, field="(file)", message="no role names in this file")])
    return names


def _fill_roles(s: SocietyScenario, base: Path, in_files: list[Problem]) -> list[tuple[Loc, str]]:
    """Read each role list's file into its names (the resolved scenario keeps them).

    Returns the scenario's own problems; problems inside role files are added to `in_files`.
    """
    problems: list[tuple[Loc, str]] = []
    for side in ("assistant_roles", "user_roles"):
        roles: RoleList = getattr(s.society, side)
        if roles.file is not None:
            path = base / roles.file
            if not path.is_file():
                problems.append((("society", side, "file"), f"no such file: {path}"))
                continue
            try:
                roles.names = read_role_list(path)
            except ScenarioError as exc:
                in_files.extend(exc.problems)
        elif not roles.names:
            problems.append((("society", side), "give a file or names"))
        if roles.take is not None:
            roles.names = roles.names[: roles.take]
        # Resolved: the names themselves, so a batch folder reads the same wherever it is opened from.
        roles.file = roles.take = None
    assistants, users = s.society.assistant_roles.names, s.society.user_roles.names
    if assistants and users and not any(a != u for a in assistants for u in users):
        problems.append((("society", "user_roles"), "every pair is a role with itself (never run): the batch "
                                                    "would hold no session; add a role that differs"))
    return problems


def _fill_loop_files(specs: list[Any], where: Loc, base: Path, in_files: list[Problem],
                     single: bool = False) -> list[tuple[Loc, str]]:
    """Read each loop's principles or seed file into the option it stands for (the resolved scenario keeps them)."""
    problems: list[tuple[Loc, str]] = []
    for i, spec in enumerate(specs):
        if spec.type not in LOOP_FILES:
            continue
        field, option = LOOP_FILES[spec.type]
        loc = where if single else (*where, i)
        name = getattr(spec, field) or (spec.input if single and spec.type == "self_instruct" else None)
        if name is None:
            continue
        path = base / name
        if not path.is_file():
            problems.append(((*loc, field if getattr(spec, field) else "input"), f"no such file: {path}"))
            continue
        try:
            if option == "principles":
                spec.principles, spec.examples = read_principles_file(path)
            else:
                spec.seeds = read_seed_file(path)
        except ScenarioError as exc:
            in_files.extend(exc.problems)
        setattr(spec, field, None)
        if single and spec.type == "self_instruct":
            spec.input = None
    return problems


def read_principles_file(path: Path) -> tuple[list[str], str]:
    """Numbered principles (`1. ...`) and any worked examples; a file without principles is a located error."""
    principles, examples = parse_principles(read_text(path))
    if not principles:
        raise ScenarioError([Problem(file=str(path), line=1, field="(file)", message="no numbered principles "
                                                                                     "(`1. ...` lines) in this file")])
    return principles, examples


def read_seed_file(path: Path) -> list[SeedTask]:
    """Seed tasks, one JSON object a line in Self-Instruct's format; every bad line is located."""
    return read_jsonl(path, SeedTask)


def read_jsonl(path: Path, model: type[M]) -> list[M]:
    """One `model` per non-blank line; a line that is not JSON or not such a record is an error at that line.

    Lines end at newlines only: JSON text may hold U+2028 and the like unescaped, which `splitlines` would cut.
    """
    shown, rows, problems = str(path), [], []
    for number, line in enumerate(read_text(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            rows.append(model.model_validate_json(line))
        except ValidationError as exc:
            for err in exc.errors()[:3]:
                field = ".".join(str(p) for p in err["loc"]) or "(line)"
                message = "not valid JSON" if err["type"] == "json_invalid" else err["msg"]
                problems.append(Problem(file=shown, line=number, field=field, message=message))
    if problems:
        raise ScenarioError(problems)
    if not rows:
        raise ScenarioError([Problem(file=shown, line=1, field="(file)", message="no records in this file")])
    return rows


def _check_routes(world: WorldSpec, places: list[str]) -> list[tuple[Loc, str]]:
    """Walking times are positive and bounded; routes join known places and leave none cut off."""
    problems: list[tuple[Loc, str]] = []
    if not timedelta(0) < world.walk <= MAX_WALK:
        problems.append((("world", "walk"), f"must be longer than zero and at most {format_duration(MAX_WALK)}"))
    if not world.routes or not places:
        return problems
    graph = nx.Graph()
    graph.add_nodes_from(places)
    for i, route in enumerate(world.routes):
        for end in ("a", "b"):
            if getattr(route, end) not in graph:
                problems.append((("world", "routes", i, end), f"unknown place {getattr(route, end)!r}"))
        if route.a == route.b:
            problems.append((("world", "routes", i, "b"), "must differ from a: a route joins two places"))
        graph.add_edge(route.a, route.b)
    first = places[0]
    cut_off = [place for place in places if not nx.has_path(graph, first, place)]
    if cut_off:
        shown = ", ".join(map(repr, cut_off))
        problems.append((("world", "routes"), f"no route reaches {shown} from {first!r}"))
    return problems


def _removed_fields(data: dict) -> list[tuple[Loc, str]]:
    """Take fields that no longer exist out of `data`, each with a located reason it is gone."""
    found: list[tuple[Loc, str]] = []
    for path, reason in REMOVED_FIELDS.items():
        *parents, name = path
        node: Any = data
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and name in node:
            del node[name]
            found.append((path, reason))
    return found


def _problems(path: str, root: yaml.Node | None, found: list[tuple[Loc, str]]) -> list[Problem]:
    """Located problems, one per field: a union's per-branch complaints are joined with 'or'."""
    merged: dict[tuple[int, str], list[str]] = {}
    for loc, message in found:
        line, shown = _locate(root, loc)
        messages = merged.setdefault((line, _field_path(shown)), [])
        if message not in messages:
            messages.append(message)
    return [
        Problem(file=path, line=line, field=field, message=" or ".join(messages))
        for (line, field), messages in sorted(merged.items(), key=lambda item: item[0][0])
    ]


def problem_in_file(path: Path, loc: Loc, message: str) -> ScenarioError:
    """An error located at a field of an existing YAML file (the line where `loc` is, or line 1)."""
    try:
        root = yaml.compose(read_text(path), Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        root = None
    return ScenarioError(_problems(str(path), root, [(loc, message)]))


def validate_file_text(text: str, path: str, model: type[M], what: str) -> M:
    """YAML text of any of the project's files (a scenario, a sweep) as `model`; every problem is located."""
    root, data = _compose(text, path, what)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_problems(path, root, [(tuple(err["loc"]), err["msg"]) for err in exc.errors()])) from None


def _compose(text: str, path: str, what: str) -> tuple[yaml.Node | None, dict[str, Any]]:
    """The node tree (for line numbers) and the mapping it holds; anything else is a located problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark else 1
        reason = getattr(exc, "problem", None) or str(exc)
        if isinstance(exc, yaml.reader.ReaderError):  # a control character: it has a position, not a mark
            line = text[: exc.position].count("\n") + 1
            reason = f"character #x{exc.character:04x} is not allowed ({exc.reason})"
        raise ScenarioError([Problem(file=path, line=line, field="(yaml)", message=f"not valid YAML: {reason}")]) from None
    except RecursionError:  # PyYAML recurses once per nesting level: `[[[[...]]]]` hundreds deep
        raise ScenarioError([Problem(file=path, line=1, field="(yaml)", message="not valid YAML: nested too deeply")]) from None
    if not isinstance(data, dict):
        raise ScenarioError([Problem(file=path, line=1, field="(root)", message=f"{what} must be a YAML mapping")])
    return root, data


def parse_any(text: str, path: str = "<scenario>") -> Scenario | SocietyScenario | LoopBatchScenario:
    """Parse and check scenario text (a world, or a role-play batch if it has `society:`); every problem is located."""
    root, data = _compose(text, path, "a scenario")
    kind: type[Scenario] | type[SocietyScenario] | type[LoopBatchScenario] = (
        SocietyScenario if "society" in data else LoopBatchScenario if "loops" in data else Scenario)
    removed = _removed_fields(data) if kind is Scenario else []
    try:
        scenario = kind.model_validate(data)
    except ValidationError as exc:
        found = [(tuple(err["loc"]), err["msg"]) for err in exc.errors()]
        raise ScenarioError(_problems(path, root, removed + found)) from None
    in_files: list[Problem] = []
    base = Path(path).parent
    if isinstance(scenario, Scenario):
        checks = _cross_check(scenario) + _fill_loop_files(scenario.sessions, ("sessions",), base, in_files)
    elif isinstance(scenario, SocietyScenario):
        checks = _fill_roles(scenario, base, in_files)
    else:
        checks = _fill_loop_files([scenario.loops], ("loops",), base, in_files, single=True)
    if (found := removed + checks) or in_files:
        raise ScenarioError(_problems(path, root, found) + in_files)
    return scenario


def parse_scenario(text: str, path: str = "<scenario>") -> Scenario:
    """A world scenario; a role-play batch here is a located error."""
    scenario = parse_any(text, path)
    if not isinstance(scenario, Scenario):
        raise ScenarioError([Problem(file=path, line=1, field="society",
                                     message="this is a role-play batch, not a world scenario")])
    return scenario


def read_text(path: Path) -> str:
    """A UTF-8 text file; unreadable, undecodable or binary files are located problems."""
    shown = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError([Problem(file=shown, line=1, field="(file)", message=exc.strerror or str(exc))]) from None
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark is not part of the text
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ScenarioError([Problem(file=shown, line=line, field="(file)", message="not UTF-8 text")]) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise ScenarioError([Problem(file=shown, line=line, field="(file)", message="binary data, not text")])
    return text


def load_any(path: Path) -> Scenario | SocietyScenario | LoopBatchScenario:
    """Read a scenario file of either kind."""
    return parse_any(read_text(path), str(path))


def load_scenario(path: Path) -> Scenario:
    """Read a world scenario file."""
    return parse_scenario(read_text(path), str(path))
