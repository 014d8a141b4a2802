"""Wires a scenario, a model and a run folder into an engine and runs it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel

from agents.agent import Agent
from agents.gateway import (
    GatewayCounters,
    ModelGateway,
    ModelServerDownError,
    RequestCache,
    build_backend,
    copy_cache,
)
from agents.gateway.backends.base import Backend
from agents.importance import model_importance_scorer
from memory import ChromaStore, InMemoryStore, MemoryRecord, MemoryStore, MemoryStream, build_embedder
from worlds.budget import flag_for
from worlds.collector import TickCollector
from worlds.engine import Engine, spent_in
from worlds.eventlog import EventWriter
from worlds.events import EventBase, ForkOrigin, MemoryAddedEvent, RunEnded, RunStarted
from worlds.runfolder import RunFolder, RunFolderError
from worlds.scenario import Scenario
from worlds.world import World


class RunSummary(BaseModel):
    """What a finished (or stopped) run reports back to its caller."""

    run_dir: Path
    status: str
    #: Why it stopped where it did, when not completed (the budget's reason, the failure).
    detail: str = ""
    ticks: int
    sim_time: datetime
    counters: GatewayCounters


MEMORY_DIR = "memory"


def build_agents(
    scenario: Scenario, store: MemoryStore, gateway: ModelGateway, embeddings: str | Embeddings,
    durable_until: datetime | None = None,
) -> dict[str, Agent]:
    """One Agent per persona, each with its memory stream over the shared store and its scenario relationships."""
    embedder = build_embedder(embeddings)
    scorer = model_importance_scorer(gateway)
    agents = {}
    known: dict[str, dict[str, str]] = {persona.name: {} for persona in scenario.agents}
    for r in scenario.relationships:
        known[r.a][r.b] = known[r.b][r.a] = r.label
    for persona in scenario.agents:
        stream = MemoryStream(
            persona.name, store, embedder, scorer, weights=scenario.memory.weights,
            reflection_threshold=scenario.memory.reflection_threshold, durable_until=durable_until,
        )
        agents[persona.name] = Agent(persona, stream, known[persona.name])
    return agents


def open_store(scenario: Scenario, folder: RunFolder) -> MemoryStore:
    """chromadb in the run folder, unless the scenario asks for the in-memory store."""
    return ChromaStore(folder.path / MEMORY_DIR) if scenario.memory.store == "chroma" else InMemoryStore()


class StartedRun(NamedTuple):
    """A run wired and opened, its `run_started` written: what driving it to its stop needs."""

    engine: Engine
    folder: RunFolder
    cache: RequestCache
    stop: datetime


def start_run(
    scenario: Scenario,
    out_dir: Path,
    model: str | BaseChatModel | Backend | None = None,
    embeddings: str | Embeddings | None = None,
    until: datetime | None = None,
    replay_from: RunFolder | None = None,
    fork: ForkOrigin | None = None,
) -> StartedRun:
    """A new folder under `out_dir` with the engine over it; with `replay_from`, answering only from its cache."""
    spec = model if model is not None else scenario.models.default
    embedder_spec = embeddings if embeddings is not None else scenario.models.embeddings
    backend = build_backend(spec)
    embedder = build_embedder(embedder_spec)  # both specs are checked before anything is written
    resolved = {"default": spec, "embeddings": embedder_spec}
    models = scenario.models.model_copy(update={k: v for k, v in resolved.items() if isinstance(v, str)})
    scenario = scenario.model_copy(update={"models": models})
    folder = RunFolder.create(out_dir, scenario)
    if replay_from is not None:
        copy_cache(replay_from.cache_path, folder.cache_path)
    cache = RequestCache(folder.cache_path, mode="replay" if replay_from is not None else "read_write")
    gateway = ModelGateway(backend, cache=cache)
    writer = EventWriter(folder.events_path)
    store = open_store(scenario, folder)
    agents = build_agents(scenario, store, gateway, embedder)
    engine = Engine(scenario, gateway, writer, store, agents, World(scenario))
    stop = min(until or scenario.clock.stop, scenario.clock.stop)
    writer.write(
        [RunStarted(tick=0, sim_time=scenario.clock.start, run_id=folder.path.name, scenario=scenario.name,
                    seed=scenario.seed, model=backend.name, until=stop, fork=fork)]
    )
    writer.sync()
    return StartedRun(engine, folder, cache, stop)


async def execute_run(
    scenario: Scenario,
    out_dir: Path,
    model: str | BaseChatModel | Backend | None = None,
    embeddings: str | Embeddings | None = None,
    until: datetime | None = None,
    replay_from: RunFolder | None = None,
    on_engine: Callable[[Engine], None] | None = None,
    on_tick: Callable[[int, datetime, list[EventBase]], None] | None = None,
) -> RunSummary:
    """Run `scenario` into a new folder under `out_dir`; with `replay_from`, answer only from its cache."""
    run = start_run(scenario, out_dir, model, embeddings, until, replay_from)
    if on_engine is not None:
        on_engine(run.engine)
    return await drive(run, on_tick)


async def drive(run: StartedRun, on_tick: Callable[[int, datetime, list[EventBase]], None] | None,
                on_snapshot: Callable[[dict], None] | None = None) -> RunSummary:
    """Run the engine to the run's stop, snapshotting into its folder (or to `on_snapshot`); close the log and the
    cache whatever happens."""
    engine = run.engine
    try:
        with TickCollector() as collector:

            def tick_done(tick: int, when: datetime, events: list[EventBase]) -> None:
                if on_tick is not None:
                    on_tick(tick, when, events)
                collector.tick_done()

            ended = await engine.run(run.stop, on_tick=tick_done, on_snapshot=on_snapshot or run.folder.write_snapshot)
    except ModelServerDownError as exc:
        exc.run_dir = run.folder.path  # the CLI names the run to resume once the server is back
        raise
    finally:
        engine.writer.close()
        run.cache.close()
    return RunSummary(run_dir=run.folder.path, status=ended.status, detail=ended.detail, ticks=ended.ticks,
                      sim_time=ended.sim_time, counters=engine.env.gateway.counters)


def store_from_log(folder: RunFolder, embedder: Embeddings, records: int | None = None,
                   until: datetime | None = None) -> InMemoryStore:
    """An in-memory store as it was after the log's first `records` records (or up to sim time `until`):
    every memory added, every access."""
    found: dict[str, MemoryRecord] = {}
    for event in folder.reader().events({"memory_added", "memory_retrieved"}):
        if (records is not None and event.seq >= records) or (until is not None and event.sim_time > until):
            break
        if isinstance(event, MemoryAddedEvent):
            found[event.memory.id] = event.memory
        else:
            for hit in event.results:
                if hit.id in found:
                    found[hit.id] = found[hit.id].model_copy(update={"last_accessed": event.accessed_at})
    store = InMemoryStore()
    if found:
        store.add(list(found.values()), np.asarray(embedder.embed_documents([m.text for m in found.values()]),
                                                   dtype=np.float32))
    return store


class ResumeReport(BaseModel):
    """Where a resumed run picked up, and what of the interrupted run's log it had to cut."""

    from_tick: int
    events_cut: int
    torn_line: bool


async def resume_run(
    folder: RunFolder, model: str | BaseChatModel | Backend | None = None,
    on_tick: Callable[[int, datetime, list[EventBase]], None] | None = None,
    on_engine: Callable[[Engine], None] | None = None, limits: tuple[int | None, int | None] = (None, None),
) -> tuple[RunSummary, ResumeReport]:
    """Carry an interrupted run on from its last snapshot, in its own folder, to the stop it was started with.

    The log is cut back to what the snapshot had seen and the store forgets rows created after it;
    the ticks between the snapshot and the interruption are run again, their model calls answered
    from the run's cache, so the finished log is the one an uninterrupted run would have written.
    `limits` (max calls, max tokens) replace the budget's; a run stopped by its budget needs a higher one.
    """
    scenario = folder.scenario()
    scenario = scenario.model_copy(update={"budget": scenario.budget.with_limits(*limits)})
    marks = list(folder.reader().events({"run_started", "run_ended"}))
    started = next((e for e in marks if isinstance(e, RunStarted)), None)
    if marks and isinstance(marks[-1], RunEnded) and marks[-1].status == "completed":
        raise RunFolderError(f"{folder.path}: this run completed; there is nothing to resume")
    state = folder.read_snapshot()
    if started is None or state is None:
        raise RunFolderError(f"{folder.path}: no snapshot to resume from (the run stopped before its first one, "
                             f"every {scenario.snapshot_every} ticks); run the scenario again")
    if (spent := scenario.budget.reached(spent_in(state))) is not None:
        raise RunFolderError(f"{folder.path}: the run stopped at its budget ({spent}); resume it with a higher "
                             f"{flag_for(spent)} (0 lifts the limit)")
    backend = build_backend(model if model is not None else scenario.models.default)
    if backend.name != started.model:
        raise RunFolderError(f"{folder.path}: the run used model {started.model!r}, not {backend.name!r}: resume it "
                             "with the same model (--model), or its cached answers would not match")
    embedder = build_embedder(scenario.models.embeddings)
    store = open_store(scenario, folder) if scenario.memory.store == "chroma" else \
        store_from_log(folder, embedder, records=state["next_seq"])
    cache = RequestCache(folder.cache_path, mode="read_write")
    gateway = ModelGateway(backend, cache=cache)
    durable = scenario.clock.time_of(state["next_tick"] - 1)
    agents = build_agents(scenario, store, gateway, embedder, durable_until=durable)
    # Everything is in place before the log is touched: a resume that cannot start leaves the log as it was.
    writer, cut, torn = EventWriter.cut_at(folder.events_path, state["next_seq"])
    engine = Engine(scenario, gateway, writer, store, agents, World(scenario))
    engine.set_state(state)
    folder.write_scenario(scenario)  # the limits it goes on with are the folder's record
    if on_engine is not None:
        on_engine(engine)
    summary = await drive(StartedRun(engine, folder, cache, started.until), on_tick)
    return summary, ResumeReport(from_tick=state["next_tick"], events_cut=cut, torn_line=torn)
