"""A fork: a new run that starts from an earlier run's state at a moment, with edits made there (`--set`).

The fork replays its parent's scenario from the start on a copy of the parent's cache, so every
call the parent had answered is answered the same, up to the tick boundary at or before the fork
time; there it makes its edits and carries on to its own stop. Its log therefore repeats the
parent's up to the fork, and `diff` compares the two from the start. Calls the parent never had
answered (they failed, and fell back) are asked again, as a resume does. After the fork, a request
the parent made word for word (an agent the edits have not reached yet) is still answered from the
copied cache: a fork differs from its parent by what its edits cause, not by sampling noise.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from agents.gateway import build_backend
from agents.gateway.backends.base import Backend
from memory.errors import InputError
from worlds.engine import Engine, TickHook
from worlds.eventlog import SkipHook
from worlds.events import EventBase, ForkOrigin, RunStarted
from worlds.runfolder import RunFolder, RunFolderError, write_atomically
from worlds.runner import RunSummary, StartedRun, drive, start_run
from worlds.scenario import Scenario, ScenarioError, load_any, parse_scenario, problem_in_file
from worlds.sessions import session_appointments
from worlds.society.batch import _first_difference
from worlds.timeline.inspect import run_moment

FORK_FILE = "fork.json"
#: Persona fields a fork may replace: the ones `Persona.describe()` puts into every prompt.
PERSONA_FIELDS = ("persona", "traits", "age")
GRAMMAR = ("agents.NAME.persona=TEXT, agents.NAME.traits=TEXT, agents.NAME.age=N, agents.NAME.memories+=TEXT, "
           "probes+={at: ..., ask: ..., question: ...}, sessions+={type: ..., at: ..., ...}")
#: Scenario fields a fork takes from its parent whatever the file says (a budget given on the command line too).
_PARENT_FIELDS = {"models", "seed", "budget"}


class ForkEdit(BaseModel):
    """One `--set PATH=VALUE`, parsed: an agent's field (or one of the scenario's lists) and the value (YAML)."""

    given: str
    agent: str | None = None
    field: str
    value: Any = None


class ForkStep(BaseModel):
    """The edits made at one tick boundary, as given on the command line."""

    tick: int
    edits: list[str]


class ForkPlan(BaseModel):
    """What replaying a fork needs (its `fork.json`): the scenario before any edit, and every step since.

    A fork of a fork keeps its ancestors' steps up to its own fork time, so it replays them too.
    """

    base: dict[str, Any]
    steps: list[ForkStep]


@dataclass
class Stage:
    """A step made concrete: the scenario in force after it, and the memories it gives each agent."""

    tick: int
    scenario: Scenario
    memories: dict[str, list[str]]


@dataclass
class Fork:
    """A fork checked against its parent and ready to run; nothing is written until `fork_run`."""

    parent: RunFolder
    parent_model: str
    origin: ForkOrigin
    plan: ForkPlan
    base: Scenario
    stages: list[Stage]
    stop: datetime

    @property
    def scenario(self) -> Scenario:
        """The scenario in force once every edit is made (what the fork folder records)."""
        return self.stages[-1].scenario


def _yaml_value(given: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        reason = getattr(exc, "problem", None) or type(exc).__name__
        raise InputError(f"--set {given}: the value is not valid YAML ({reason}); quote it") from None


def parse_edit(given: str, scenario: Scenario) -> ForkEdit:
    """Read `PATH=VALUE` or `PATH+=VALUE`, checking the path, the agent and the operator against the scenario."""
    path, sep, text = given.partition("=")
    if not sep:
        raise InputError(f"--set {given}: give PATH=VALUE or PATH+=VALUE; paths are {GRAMMAR}")
    adding, path = path.endswith("+"), path.removesuffix("+").strip()
    value = _yaml_value(given, text)
    if path in ("probes", "sessions"):
        if not adding:
            raise InputError(f"--set {given}: {path} takes += (add one)")
        return ForkEdit(given=given, field=path, value=value)
    match = re.fullmatch(r"agents\.(.+)\.(\w+)", path)
    if match is None:
        raise InputError(f"--set {given}: unknown path {path!r}; paths are {GRAMMAR}")
    name, field = match.groups()
    names = [p.name for p in scenario.agents]
    if name not in names:
        raise InputError(f"--set {given}: no agent {name!r} in the run; its agents are {', '.join(sorted(names))}")
    if field == "memories" and not adding:
        raise InputError(f"--set {given}: memories takes += (give the agent a memory)")
    if field in PERSONA_FIELDS and adding:
        raise InputError(f"--set {given}: {field} takes = (replace it)")
    if field != "memories" and field not in PERSONA_FIELDS:
        raise InputError(f"--set {given}: agents.NAME.{field} cannot be set in a fork; an agent has "
                         f"{', '.join(PERSONA_FIELDS)} (=) and memories (+=)")
    return ForkEdit(given=given, agent=name, field=field, value=value)


def _memory_texts(edit: ForkEdit) -> list[str]:
    texts = edit.value if isinstance(edit.value, list) else [edit.value]
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise InputError(f"--set {edit.given}: a memory is a text (or a YAML list of texts)")
    return texts


def _validated(data: dict[str, Any], edit: ForkEdit) -> Scenario:
    """The edited scenario, through every check a scenario file gets; a problem names the edit that caused it."""
    try:
        return parse_scenario(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "--set")
    except ScenarioError as exc:
        found = "; ".join(f"{p.field}: {p.message}" for p in exc.problems)
        raise InputError(f"--set {edit.given}: {found}") from None


def _not_before(scenario: Scenario, edit: ForkEdit, at: datetime) -> None:
    """A probe or session added at a fork must be due at or after it, or it would fire at once, out of time."""
    added = getattr(scenario, edit.field)[-1]
    if added.at == "start" or (isinstance(added.at, datetime) and added.at < at):
        raise InputError(f"--set {edit.given}: at: {added.at} is before the fork ({at:%Y-%m-%d %H:%M}); give a "
                         f"later time{', or end' if edit.field == 'probes' else ', or meeting'}")


def stage(scenario: Scenario, step: ForkStep, at: datetime) -> Stage:
    """Make a step's edits to the scenario in force before it, each one checked as it is made."""
    data = scenario.model_dump(mode="json")
    memories: dict[str, list[str]] = {}
    for given in step.edits:
        edit = parse_edit(given, scenario)
        if edit.field == "memories":
            memories.setdefault(edit.agent, []).extend(_memory_texts(edit))
            continue
        if edit.agent is not None:
            next(p for p in data["agents"] if p["name"] == edit.agent)[edit.field] = edit.value
        else:
            data[edit.field].append(edit.value)
        scenario = _validated(data, edit)
        if edit.agent is None:
            _not_before(scenario, edit, at)
    return Stage(tick=step.tick, scenario=scenario, memories=memories)


def read_plan(folder: RunFolder) -> ForkPlan | None:
    """A fork folder's plan; None for a run that is not a fork."""
    path = folder.path / FORK_FILE
    return ForkPlan.model_validate_json(path.read_text(encoding="utf-8")) if path.is_file() else None


def plan_fork(parent: RunFolder, at: str, edits: list[str], until: datetime | None = None,
              on_skip: SkipHook | None = None) -> Fork:
    """Check a fork of `parent` at sim time `at` with `--set` edits; every problem is an input error.

    `on_skip` hears of each line of the parent's log that is not a record (it is passed over)."""
    recorded = load_any(parent.scenario_path)
    if not isinstance(recorded, Scenario):
        raise RunFolderError(f"{parent.path}: a batch folder has no timeline to fork")
    log = parent.reader(on_skip)
    started = next(iter(log.events({"run_started"})), None)
    if not isinstance(started, RunStarted):
        raise RunFolderError(f"{parent.path}: its log has no run_started record; there is nothing to fork")
    clock = recorded.clock
    moment = run_moment("--fork", at, clock)
    tick = (moment - clock.start) // clock.step
    reached = log.last_complete_tick() + 1
    if tick > reached:
        raise InputError(f"--fork: {at} is after the end of {parent.path} (its last closed tick ends at "
                         f"{clock.time_of(reached):%Y-%m-%d %H:%M})")
    boundary = clock.time_of(tick)
    stop = until or started.until
    if stop < boundary:
        raise InputError(f"--until: {stop:%Y-%m-%d %H:%M} is before the fork ({boundary:%Y-%m-%d %H:%M})")
    earlier = read_plan(parent)
    base = Scenario.model_validate(earlier.base) if earlier else recorded
    steps = [s for s in earlier.steps if s.tick <= tick] if earlier else []
    steps.append(ForkStep(tick=tick, edits=edits))
    stages, scenario = [], base
    for step in steps:
        stages.append(stage(scenario, step, clock.time_of(step.tick)))
        scenario = stages[-1].scenario
    origin = ForkOrigin(parent=str(parent.path), parent_run=started.run_id, at=boundary, tick=tick, edits=edits)
    return Fork(parent=parent, parent_model=started.model, origin=origin,
                plan=ForkPlan(base=base.model_dump(mode="json"), steps=steps), base=base, stages=stages, stop=stop)


def check_same_scenario(given: Scenario, path: Path, fork: Fork) -> None:
    """The scenario named on the command line must be the one the parent ran (models and seed aside)."""
    new = given.model_dump(mode="json", exclude=_PARENT_FIELDS)
    known = [fork.base, fork.parent.scenario()]
    if any(_first_difference(s.model_dump(mode="json", exclude=_PARENT_FIELDS), new) is None for s in known):
        return
    old = known[0].model_dump(mode="json", exclude=_PARENT_FIELDS)
    loc = _first_difference(old, new) or ()
    value: Any = old
    for part in loc:
        value = value.get(part) if isinstance(value, dict) else None
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:59] + "…"
    raise problem_in_file(path, loc, f"differs from the scenario {fork.parent.path} ran (there {shown}); a fork "
                                     f"replays that one: give it ({fork.parent.scenario_path}), changes go in --set")


def apply_stage(engine: Engine, stage: Stage) -> None:
    """Make a stage's edits in the running engine, at its tick boundary: personas, probes, sessions, memories."""
    now = engine.clock.time_of(stage.tick)
    added_sessions = session_appointments(stage.scenario)[len(engine.scenario.sessions):]
    for persona in stage.scenario.agents:
        engine.agents[persona.name].persona = persona
    engine.scenario = engine.env.scenario = stage.scenario
    engine.scheduler.agenda += added_sessions
    for name, texts in sorted(stage.memories.items()):
        for text in texts:
            engine.agents[name].memory.remember("observation", text, now)


class _Boundary:
    """Watches the ticks of a fork's replay and makes each stage's edits at its boundary."""

    def __init__(self, run: StartedRun, fork: Fork) -> None:
        self.run = run
        self.fork = fork
        self.tick = fork.origin.tick

    def reach(self, next_tick: int) -> None:
        """Every stage due at `next_tick`; at the fork's own, a snapshot of the edited state, so that a resume
        never starts before the edits."""
        for due in (s for s in self.fork.stages if s.tick == next_tick):
            apply_stage(self.run.engine, due)
        if next_tick == self.tick > 0:
            self.run.folder.write_snapshot(self.run.engine.get_state())

    def snapshot(self, state: dict[str, Any]) -> None:
        """Snapshots of the replay (before the edits) are not kept: resuming from one would miss them."""
        if state["next_tick"] > self.tick:
            self.run.folder.write_snapshot(state)


async def fork_run(fork: Fork, out_dir: Path, model: str | Backend | None = None,
                   on_engine: Callable[[Engine], None] | None = None, on_tick: TickHook | None = None) -> RunSummary:
    """Run the fork into a new folder under `out_dir` (the parent's model unless `model`, which must match it)."""
    backend = model if isinstance(model, Backend) else build_backend(model or fork.base.models.default)
    if backend.name != fork.parent_model:
        raise RunFolderError(f"{fork.parent.path}: the run used model {fork.parent_model!r}, not {backend.name!r}: "
                             "a fork replays it with the same model, or its cached answers would not match")
    run = start_run(fork.base, out_dir, model=backend, until=fork.stop, replay_from=fork.parent, fork=fork.origin)
    run.cache.mode = "read_write"  # what the parent never had answered is asked again
    run.folder.write_scenario(fork.scenario)
    write_atomically(run.folder.path / FORK_FILE, fork.plan.model_dump_json(indent=2))
    boundary = _Boundary(run, fork)
    boundary.reach(0)
    if on_engine is not None:
        on_engine(run.engine)

    def ticked(tick: int, now: datetime, events: list[EventBase]) -> None:
        boundary.reach(tick + 1)
        if on_tick is not None:
            on_tick(tick, now, events)

    return await drive(run, ticked, on_snapshot=boundary.snapshot)
