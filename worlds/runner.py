"""Wires a scenario, a model and a run folder into an engine and runs it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel

from agents.agent import Agent
from agents.gateway import (
    GatewayCounters,
    ModelGateway,
    RequestCache,
    build_backend,
    copy_cache,
)
from agents.gateway.backends.base import Backend
from agents.importance import model_importance_scorer
from memory import ChromaStore, InMemoryStore, MemoryStore, MemoryStream, build_embedder
from worlds.engine import Engine
from worlds.eventlog import EventWriter
from worlds.events import EventBase, RunStarted
from worlds.runfolder import RunFolder
from worlds.scenario import Scenario
from worlds.world import World


class RunSummary(BaseModel):
    """What a finished (or stopped) run reports back to its caller."""

    run_dir: Path
    status: str
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
    for persona in scenario.agents:
        stream = MemoryStream(
            persona.name, store, embedder, scorer, weights=scenario.memory.weights,
            reflection_threshold=scenario.memory.reflection_threshold, durable_until=durable_until,
        )
        known = {r.b if r.a == persona.name else r.a: r.label for r in scenario.relationships
                 if persona.name in (r.a, r.b)}
        agents[persona.name] = Agent(persona, stream, known)
    return agents


def open_store(scenario: Scenario, folder: RunFolder) -> MemoryStore:
    """chromadb in the run folder, unless the scenario asks for the in-memory store."""
    return ChromaStore(folder.path / MEMORY_DIR) if scenario.memory.store == "chroma" else InMemoryStore()


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
    if on_engine is not None:
        on_engine(engine)
    stop = min(until or scenario.clock.stop, scenario.clock.stop)
    start = scenario.clock.start
    writer.write(
        [RunStarted(tick=0, sim_time=start, run_id=folder.path.name, scenario=scenario.name,
                    seed=scenario.seed, model=backend.name, until=stop)]
    )
    writer.sync()
    try:
        ended = await engine.run(stop, on_tick=on_tick)
    finally:
        writer.close()
        cache.close()
    return RunSummary(
        run_dir=folder.path, status=ended.status, ticks=ended.ticks, sim_time=ended.sim_time,
        counters=gateway.counters,
    )
