"""A Self-* loop over an input file: one session per line, many at once, resumable; Self-Instruct grows one pool.

The batch folder is the same kind as a role-play batch's (`worlds/society/batch.py`): the resolved
scenario, an event log of fsync'ed blocks each closed by a `batch_unit` record, and the request
cache. A re-run with the same scenario and folder skips every session already written; a
Self-Instruct batch carries on from its last finished round.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

from agents.gateway import ModelGateway
from agents.gateway.backends.base import Backend
from agents.loops import Loop
from agents.loops.instruct import SelfInstruct
from agents.seeding import stable_int
from worlds.cluster import RaySpec
from worlds.eventlog import SkipHook
from worlds.events import EventBase
from worlds.runfolder import write_atomically
from worlds.scenario import LoopBatchScenario, Problem, ScenarioError, problem_in_file, read_jsonl
from worlds.sessions import loop_from_spec
from worlds.society.batch import BatchRun, BatchSummary
from worlds.society.units import FileBlock, run_machine

POOL_FILE = "pool.jsonl"
CHECKPOINT = Path("checkpoints") / "self_instruct.json"


class LoopInput(BaseModel):
    """One line of a loop's input file; HumanEval's fields (`task_id`, `prompt`, `test`) are understood too."""

    model_config = ConfigDict(extra="ignore")

    id: str | int | None = None
    task_id: str | None = None
    task: str | None = None
    question: str | None = None
    prompt: str | None = None
    answer: str | int | float | None = None
    proposed: str | None = None
    tests: str | None = None
    test: str | None = None
    entry_point: str | None = None

    @model_validator(mode="after")
    def _has_text(self) -> LoopInput:
        if not (self.task or self.question or self.prompt):
            raise ValueError("give the task as `task`, `question` or `prompt`")
        return self

    @property
    def text(self) -> str:
        return self.task or self.question or self.prompt or ""


def read_inputs(path: Path, kind: str, default_tests: str = "") -> list[tuple[str, LoopInput]]:
    """(session id, row) for every line; ids come from the row (`id`, `task_id`) or its line; duplicates are errors."""
    rows = read_jsonl(path, LoopInput)
    numbered = [line for line, text in enumerate(path.read_text(encoding="utf-8-sig").split("\n"), 1) if text.strip()]
    seen: dict[str, int] = {}
    found: list[tuple[str, LoopInput]] = []
    problems = []
    for line, row in zip(numbered, rows):
        session_id = str(row.id if row.id is not None else row.task_id or f"line-{line:05d}")
        if session_id in seen:
            problems.append(Problem(file=str(path), line=line, field="id",
                                    message=f"{session_id!r} is used again (first on line {seen[session_id]})"))
        if kind == "self_debug" and not (row.tests or row.test or default_tests):
            problems.append(Problem(file=str(path), line=line, field="tests", message="Self-Debug needs the tests "
                                                                                     "(`tests` or HumanEval's `test`)"))
        seen.setdefault(session_id, line)
        found.append((session_id, row))
    if problems:
        raise ScenarioError(problems)
    return found


def loop_for_row(scenario: LoopBatchScenario, session_id: str, row: LoopInput) -> Loop:
    """The row's task with the batch's options; a row's own answer, proposal, tests or entry point win."""
    spec = scenario.loops
    overrides = {"expected": None if row.answer is None else str(row.answer), "proposed": row.proposed,
                 "tests": row.tests or row.test, "entry_point": row.entry_point}
    spec = spec.model_copy(update={k: v for k, v in overrides.items() if v is not None and k in type(spec).model_fields})
    seed = stable_int(scenario.seed, session_id, bits=31)
    return loop_from_spec(session_id, spec, seed, task=row.text)


class RowsUnit(BaseModel):
    """A slice of the input lines, one session each: the unit a loop batch hands a Ray task."""

    scenario: LoopBatchScenario
    rows: list[tuple[str, LoopInput]]

    @property
    def name(self) -> str:
        return f"rows:{self.rows[0][0]}..{self.rows[-1][0]}"

    @property
    def concurrency(self) -> int:
        return self.scenario.loops.concurrency

    async def run(self, gateway: ModelGateway, file: FileBlock, may_start: Callable[[], bool],
                  limit: asyncio.Semaphore) -> None:
        spec = self.scenario.loops
        step = timedelta(minutes=spec.minutes_per_message)

        async def one(session_id: str, row: LoopInput) -> None:
            async with limit:
                if not may_start():
                    return
                events = await run_machine(loop_for_row(self.scenario, session_id, row), gateway, spec.start, step)
            file(session_id, events)

        await asyncio.gather(*(one(session_id, row) for session_id, row in self.rows))


async def run_loop_batch(
    scenario: LoopBatchScenario, scenario_path: Path, out_dir: Path, model: str | Backend | None = None,
    on_progress: Callable[[int, int], None] | None = None, cluster: RaySpec | None = None,
    on_skip: SkipHook | None = None,
) -> BatchSummary:
    """Run (or resume) the batch into `<out>/<name>/`, here or (given a cluster) `concurrency` lines per Ray task;
    `on_progress(done, planned)` after every unit, `on_skip` for each line of the log that is not a record."""
    spec = scenario.loops
    if cluster is not None and spec.type == "self_instruct":
        raise problem_in_file(scenario_path, ("loops", "type"), "Self-Instruct grows one pool round by round, "
                                                                "which cannot be split across Ray tasks: run it "
                                                                "without --workers and --ray")
    rows = batch_inputs(scenario, scenario_path)
    batch = BatchRun(scenario, out_dir, model, spec.start, cluster, on_skip)
    todo = [(session_id, row) for session_id, row in rows if session_id not in batch.done.sessions]
    summary = BatchSummary(folder=batch.folder.path, planned=spec.target if spec.type == "self_instruct" else len(rows),
                           skipped=len(rows) - len(todo))

    def file(session_id: str, events: list[EventBase]) -> None:
        batch.file(session_id, events)
        summary.finished += 1
        if on_progress is not None:
            on_progress(summary.skipped + summary.finished, summary.planned)

    async def work() -> None:
        if spec.type == "self_instruct":
            await _grow_pool(batch, summary, on_progress)
            return
        if on_progress is not None:
            on_progress(summary.skipped, summary.planned)
        size = max(1, len(todo)) if cluster is None else spec.concurrency  # here: one unit; on Ray: a slice a task
        units = [RowsUnit(scenario=batch.scenario, rows=todo[i:i + size]) for i in range(0, len(todo), size)]
        await batch.run_units(units, file, spec.concurrency)

    return await batch.run(work, summary)


def batch_inputs(scenario: LoopBatchScenario, scenario_path: Path) -> list[tuple[str, LoopInput]]:
    """The batch's sessions, one per input line (none for Self-Instruct, which grows one pool); errors located."""
    spec = scenario.loops
    if spec.type == "self_instruct":
        return []
    return read_inputs(_input_path(scenario, scenario_path), spec.type, getattr(spec, "tests", ""))


def _input_path(scenario: LoopBatchScenario, scenario_path: Path) -> Path:
    """The input file named by the scenario; missing or absent is an error at the scenario's line."""
    if scenario.loops.input is None:
        raise problem_in_file(scenario_path, ("loops", "type"),
                              f"{scenario.loops.type} needs an `input` file (JSONL, one task a line)")
    path = scenario_path.parent / scenario.loops.input
    if not path.is_file():
        raise problem_in_file(scenario_path, ("loops", "input"), f"no such file: {path}")
    return path


async def _grow_pool(batch: BatchRun, summary: BatchSummary, on_progress: Callable[[int, int], None] | None) -> None:
    """Self-Instruct round by round: each round one block in the log, then the pool and a checkpoint, atomically."""
    scenario, folder = batch.scenario, batch.folder
    spec = scenario.loops
    checkpoint = folder.path / CHECKPOINT
    if checkpoint.is_file():
        loop = SelfInstruct.from_state(json.loads(checkpoint.read_text(encoding="utf-8")))
        summary.skipped = loop.progress.result.get("kept", 0)
    else:
        loop = loop_from_spec("self-instruct", spec, scenario.seed)
    step = timedelta(minutes=spec.minutes_per_message)
    while not loop.finished and batch.may_start():
        events = await run_machine(loop, batch.gateway, spec.start, step, messages=2)  # a round says two
        batch.file(f"round-{loop.progress.result.get('rounds', 0)}", events)
        pool = loop.progress.result.get("pool", [])
        write_atomically(folder.path / POOL_FILE, "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in pool))
        write_atomically(checkpoint, json.dumps(loop.get_state()))
        summary.finished = len(pool) - summary.skipped
        if on_progress is not None:
            on_progress(len(pool), summary.planned)
