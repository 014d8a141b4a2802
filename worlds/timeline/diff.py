"""`simulacra diff`: where two runs' timelines part, agent by agent, and how their probe answers differ.

Each agent's events (those that name it, as `inspect --agent` selects them) are read from both logs
side by side, as two streams, and compared with the noise set aside; the first pair that differs is
where that agent's timelines part. Events that name no agent form one more timeline, `(world)`.
Memory stays flat: one agent at a time, and each pass stops at its first difference.

Noise, never a difference: the fields that depend on the machine (`wall_time`, `latency_s`,
`run_id`, `out_dir`), whether a call was `cached`, log positions (`seq`, and the `source_event`
a memory cites, which shift for everyone once any agent's events change), the run-wide counter in
activity and conversation ids (`c00012-34` is compared as `c00012`), and the `run_started` record
(ids, fork origin, stop) and `tick` records (each agent's position and status, compared through
its own events).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from itertools import zip_longest
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, computed_field
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from memory.errors import InputError
from worlds.diffusion import ProbeDiffusion
from worlds.events import WALL_CLOCK_FIELDS
from worlds.runfolder import RunFolder
from worlds.scenario import Scenario, load_any
from worlds.stats import compute_stats
from worlds.timeline.describe import describe
from worlds.timeline.select import EventFilter, select

NOISE_FIELDS = WALL_CLOCK_FIELDS | {"seq", "cached", "paid", "source_event"}
SKIPPED_KINDS = frozenset({"run_started", "tick"})
#: The timeline of events that name no agent.
WORLD = "(world)"
_ID_FIELDS = frozenset({"activity_id", "conversation_id"})
_SERIAL = re.compile(r"^([a-z]\d{5})-\d+$")


class Side(BaseModel):
    """One run's event where the timelines part, in one line."""

    seq: int
    sim_time: datetime
    kind: str
    text: str


class Parting(BaseModel):
    """Where one agent's timelines first differ; a side is None where its log has no more events for the agent."""

    agent: str
    sim_time: datetime
    a: Side | None
    b: Side | None
    #: The fields that differ, when both sides are events of the same kind.
    fields: list[str]


class AnswerPair(BaseModel):
    """One agent's answers to a probe in both runs (None: not asked there)."""

    agent: str
    a: str | None
    b: str | None
    knew_a: bool | None = None
    knew_b: bool | None = None


class ProbeComparison(BaseModel):
    """A probe in both runs: the answers side by side, and how far its fact had spread in each."""

    probe: int
    question: str
    answers: list[AnswerPair]
    #: Answers that showed the fact (any of the probe's `expect` words); None in a run that never asked the probe.
    knew_a: int | None
    knew_b: int | None
    #: Agents the log shows had met the fact by the end; None when the probe has no `expect` words, or was not asked.
    met_a: int | None
    met_b: int | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def differs(self) -> bool:
        """A probe asked in one run only differs too: the other has no answers to set beside its own."""
        return (self.knew_a, self.met_a) != (self.knew_b, self.met_b) or any(p.a != p.b for p in self.answers)


class RunDiff(BaseModel):
    """The `simulacra diff` report; `--json` prints exactly this."""

    run_a: str
    run_b: str
    #: One per agent (and `(world)`) whose timelines part; agents not listed are the same throughout.
    partings: list[Parting]
    agents: list[str]
    probes: list[ProbeComparison]
    #: What makes the comparison doubtful: runs of different scenarios, a probe number asking another question.
    warnings: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def identical(self) -> bool:
        """Noise aside, so a script can tell a fork without effect from one that changed something."""
        return not self.partings and not any(p.differs for p in self.probes)


def comparable(value: Any, key: str | None = None) -> Any:
    """An event (or a part of one) with the noise taken out."""
    if isinstance(value, dict):
        return {k: comparable(v, k) for k, v in value.items() if k not in NOISE_FIELDS}
    if isinstance(value, list):
        return [comparable(item) for item in value]
    if key in _ID_FIELDS and isinstance(value, str):
        return _SERIAL.sub(r"\1", value)
    return value


def _timeline(folder: RunFolder, agent: str, on_skip: Callable[[int, str], None]) -> Iterator[dict]:
    chosen = EventFilter() if agent == WORLD else EventFilter(agents=[agent])
    for event in select(folder.events_path, chosen, on_skip):
        if event["kind"] not in SKIPPED_KINDS and (agent != WORLD or not event.get("agents")):
            yield event


def _side(event: dict | None) -> Side | None:
    if event is None:
        return None
    return Side(seq=event["seq"], sim_time=event["sim_time"], kind=event["kind"],
                text=describe(event).splitlines()[0])


def _parting(agent: str, left: Iterator[dict], right: Iterator[dict]) -> Parting | None:
    """The first pair of events that differ once the noise is out; None if the two timelines are the same."""
    for a, b in zip_longest(left, right):
        plain_a, plain_b = comparable(a), comparable(b)
        if plain_a == plain_b:
            continue
        fields = sorted(k for k in {*plain_a, *plain_b} if plain_a.get(k) != plain_b.get(k)) \
            if a is not None and b is not None and a["kind"] == b["kind"] else []
        sides = _side(a), _side(b)
        when = min(s.sim_time for s in sides if s is not None)
        return Parting(agent=agent, sim_time=when, a=sides[0], b=sides[1], fields=fields)
    return None


def _other_questions(a: list[ProbeDiffusion], b: list[ProbeDiffusion]) -> list[str]:
    """A probe number that asks another question in each run: its answers are not comparable, so say so."""
    questions_b = {p.probe: p.question for p in b}
    return [f"probe {p.probe} asks {p.question!r} in A but {questions_b[p.probe]!r} in B: compared as two probes, "
            "each asked in one run" for p in a if questions_b.get(p.probe, p.question) != p.question]


def _probes(a: list[ProbeDiffusion], b: list[ProbeDiffusion]) -> list[ProbeComparison]:
    """Probes matched by number and question (a fork adds its probes after its parent's)."""
    left, right = {(p.probe, p.question): p for p in a}, {(p.probe, p.question): p for p in b}
    compared = []
    for key in sorted({*left, *right}):
        pa, pb = left.get(key), right.get(key)
        answers_a = {r.agent: r for r in pa.answers} if pa else {}
        answers_b = {r.agent: r for r in pb.answers} if pb else {}
        pairs = [AnswerPair(agent=name, a=getattr(answers_a.get(name), "answer", None),
                            b=getattr(answers_b.get(name), "answer", None),
                            knew_a=getattr(answers_a.get(name), "knew", None),
                            knew_b=getattr(answers_b.get(name), "knew", None))
                 for name in sorted({*answers_a, *answers_b})]
        compared.append(ProbeComparison(
            probe=key[0], question=key[1], answers=pairs,
            knew_a=sum(1 for p in pairs if p.knew_a) if pa else None,
            knew_b=sum(1 for p in pairs if p.knew_b) if pb else None,
            met_a=pa.spread[-1].heard if pa and pa.spread else None,
            met_b=pb.spread[-1].heard if pb and pb.spread else None,
        ))
    return compared


def _world_names(a: RunFolder, b: RunFolder) -> tuple[str, str]:
    """The two runs' scenario names; a batch folder has no timeline to compare, so it is an input error."""
    names = []
    for folder in (a, b):
        scenario = load_any(folder.scenario_path)
        if not isinstance(scenario, Scenario):
            raise InputError(f"{folder.path}: a batch folder (sessions without a world or a clock): diff compares "
                             "world runs; read a batch with `simulacra inspect` or `simulacra stats`")
        names.append(scenario.name)
    return names[0], names[1]


def diff_runs(a: RunFolder, b: RunFolder, on_skip: Callable[[Path, int, str], None]) -> RunDiff:
    """Compare two runs; `on_skip(path, line, why)` for each line of either log that is not a record."""
    name_a, name_b = _world_names(a, b)
    warnings = [] if name_a == name_b else [f"the runs are of different scenarios ({name_a!r} and {name_b!r}): "
                                            "what differs may come from that, not from a fork's edits"]
    agents = sorted({p.name for folder in (a, b) for p in folder.personas()})
    partings = []
    for agent in [*agents, WORLD]:
        found = _parting(agent, _timeline(a, agent, lambda n, why: on_skip(a.events_path, n, why)),
                         _timeline(b, agent, lambda n, why: on_skip(b.events_path, n, why)))
        if found is not None:
            partings.append(found)
    diffusion_a, diffusion_b = compute_stats(a).diffusion, compute_stats(b).diffusion
    probes = _probes(diffusion_a, diffusion_b)
    warnings += _other_questions(diffusion_a, diffusion_b)
    return RunDiff(run_a=str(a.path), run_b=str(b.path), partings=partings, agents=[*agents, WORLD], probes=probes,
                   warnings=warnings)


def print_diff(report: RunDiff, out: Console) -> None:
    """The report as rich tables: where each agent's timelines part, then every probe that differs."""
    if report.identical:
        out.print(f"[green]no difference[/green] between {escape(report.run_a)} and {escape(report.run_b)} "
                  "(run ids, wall times, cached flags and log positions aside)", highlight=False)
        return
    parted = {p.agent: p for p in report.partings}
    table = Table(title="Where the timelines part", caption=f"A = {escape(report.run_a)}, B = {escape(report.run_b)}")
    for column in ("agent", "when", "A", "B", "differs in"):
        table.add_column(column, overflow="fold")
    for agent in report.agents:
        p = parted.get(agent)
        if p is None:
            table.add_row(escape(agent), "–", "[green]same throughout[/green]", "", "")
            continue
        sides = [f"[cyan]{escape(s.text)}[/cyan]" if s else "[dim](its log ends)[/dim]" for s in (p.a, p.b)]
        table.add_row(escape(agent), f"{p.sim_time:%a %H:%M}", *sides, escape(", ".join(p.fields)))
    out.print(table)
    for probe in (p for p in report.probes if p.differs):
        answers = Table(title=f"Probe {probe.probe} — {escape(probe.question)}",
                        caption=f"knew: A {_count(probe.knew_a)}, B {_count(probe.knew_b)}"
                                + ("" if probe.met_a is None and probe.met_b is None else
                                   f"; had met the fact by the end: A {_count(probe.met_a)}, B {_count(probe.met_b)}"))
        for column in ("agent", "A", "B"):
            answers.add_column(column, overflow="fold")
        for pair in probe.answers:
            answers.add_row(escape(pair.agent), *(_answer_cell(x, pair.a != pair.b) for x in (pair.a, pair.b)))
        out.print(answers)


def _count(value: int | None) -> str:
    """A figure a run has not got (it never asked the probe) is a dash, not a zero."""
    return "–" if value is None else str(value)


def _answer_cell(answer: str | None, changed: bool) -> str:
    if answer is None:
        return "[dim]–[/dim]"
    return f"[yellow]{escape(answer)}[/yellow]" if changed else escape(answer)
