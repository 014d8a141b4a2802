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
from memory import InMemoryStore, MemoryRecord, MemoryStream, build_embedder
from memory.errors import InputError
from worlds.runfolder import RunFolder
from worlds.scenario import Scenario, load_any
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
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise InputError(f"--at: {at!r} is not an ISO time such as 2023-02-13T09:00") from None
    if not scenario.clock.start <= moment <= scenario.clock.stop:
        raise InputError(f"--at: {at} is outside the run ({scenario.clock.start} to {scenario.clock.stop})")
    return moment


def memories_until(folder: RunFolder, agent: str, moment: datetime) -> list[MemoryRecord]:
    """The agent's memories as the log recorded them, up to `moment`."""
    chosen = EventFilter(agents=[agent], kinds=["memory_added"], end=moment.isoformat())
    return [MemoryRecord.model_validate(e["memory"]) for e in select(folder.events_path, chosen, lambda *_: None)
            if e["memory"]["agent"] == agent]


async def interview(folder: RunFolder, agent: str, question: str, at: str | None = None,
                    model: str | Backend | None = None) -> InterviewRecord:
    """Ask, answer, and append the interview to the run's `interviews.jsonl` (fsync'ed)."""
    scenario = _scenario(folder, agent)
    moment = _moment(folder, scenario, at)
    # No cache: the run's own stays exactly as it was.
    gateway = ModelGateway(model if isinstance(model, Backend) else build_backend(model or scenario.models.default))
    embedder = build_embedder(scenario.models.embeddings)
    records = memories_until(folder, agent, moment)
    stream = MemoryStream(agent, InMemoryStore(), embedder, model_importance_scorer(gateway),
                          weights=scenario.memory.weights)
    if records:
        vectors = embedder.embed_documents([r.text for r in records])
        stream.insert([r.model_copy(update={"embedding": v}) for r, v in zip(records, vectors)])
    persona = next(p for p in scenario.agents if p.name == agent)
    text, used = await answer(Agent(persona, stream), question, gateway, CallScope(agent=agent, seed=scenario.seed),
                              moment)
    record = InterviewRecord(asked=datetime.now(timezone.utc), agent=agent, question=question, at=moment, answer=text,
                             memories=[m.text for m in used], scores=[round(m.score, 4) for m in used],
                             model=gateway.model_name, memories_known=len(records))
    _append(folder.path / INTERVIEWS_FILE, record)
    return record


def _append(path: Path, record: InterviewRecord) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(record.model_dump_json() + "\n")
        handle.flush()
        os.fsync(handle.fileno())

