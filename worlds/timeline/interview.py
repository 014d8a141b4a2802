"""`simulacra interview`: an agent as it was at a moment answers a question from its own memories.

The agent's memory is rebuilt from the log alone (its `memory_added` events up to the moment), so
the run folder is only read: the answer and the memories it used go to `interviews.jsonl` beside
the log, and nothing else there changes.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel

from agents.agent import Agent
from agents.cognition.answer import answer
from agents.gateway import CallScope, ModelGateway, build_backend
from agents.gateway.backends.base import Backend
from agents.importance import model_importance_scorer
from memory import MemoryStream, build_embedder
from memory.errors import InputError
from worlds.runfolder import RunFolder
from worlds.scenario import Scenario, load_any
from worlds.runner import store_from_log
from worlds.timeline.inspect import run_moment
from worlds.timeline.select import EventFilter, select

INTERVIEWS_FILE = "interviews.jsonl"


class InterviewRecord(BaseModel):
    """One question put to one agent as it was at `at`, with the memories its answer drew on."""

    asked: datetime
    agent: str
    question: str
    at: datetime
    answer: str
    memories: list[str]
    scores: list[float]
    model: str
    memories_known: int


def _scenario(folder: RunFolder, agent: str) -> Scenario:
    scenario = load_any(folder.scenario_path)
    if not isinstance(scenario, Scenario):
        raise InputError(f"{folder.path}: a batch folder has no world agents to interview")
    names = sorted(p.name for p in scenario.agents)
    if agent not in names:
        raise InputError(f"no agent {agent!r} in this run; its agents are {', '.join(names)}")
    return scenario


def _moment(folder: RunFolder, scenario: Scenario, at: str | None) -> datetime:
    """The moment asked for, inside the run; by default the last moment the log reached."""
    if at is None:
        last = None
        for event in select(folder.events_path, EventFilter(), lambda *_: None):
            last = event.get("sim_time") or last
        return datetime.fromisoformat(last) if last else scenario.clock.start
    return run_moment("--at", at, scenario.clock)


async def interview(folder: RunFolder, agent: str, question: str, at: str | None = None,
                    model: str | Backend | None = None) -> InterviewRecord:
    """Ask, answer, and append the interview to the run's `interviews.jsonl` (fsync'ed)."""
    scenario = _scenario(folder, agent)
    moment = _moment(folder, scenario, at)
    # No cache: the run's own stays exactly as it was.
    gateway = ModelGateway(model if isinstance(model, Backend) else build_backend(model or scenario.models.default))
    embedder = build_embedder(scenario.models.embeddings)
    store = store_from_log(folder, embedder, until=moment)  # memories and their access times, as of the moment
    stream = MemoryStream(agent, store, embedder, model_importance_scorer(gateway), weights=scenario.memory.weights)
    persona = next(p for p in scenario.agents if p.name == agent)
    text, used = await answer(Agent(persona, stream), question, gateway, CallScope(agent=agent, seed=scenario.seed),
                              moment)
    record = InterviewRecord(asked=datetime.now(timezone.utc), agent=agent, question=question, at=moment, answer=text,
                             memories=[m.text for m in used], scores=[round(m.score, 4) for m in used],
                             model=gateway.model_name, memories_known=len(stream.records))
    _append(folder.path / INTERVIEWS_FILE, record)
    return record


def _append(path: Path, record: InterviewRecord) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(record.model_dump_json() + "\n")
        handle.flush()
        os.fsync(handle.fileno())

