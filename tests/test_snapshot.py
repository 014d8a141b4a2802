"""The whole run state snapshots to JSON and back: a restored run writes the same log as the uninterrupted one."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path

import pytest

from agents.agent import Agent
from agents.context import TickContext
from agents.gateway import ModelGateway, build_backend
from agents.plans import PlanStep
from tests.conftest import SMALL_TOWN, comparable_log
from tests.fakes import EchoFake, make_agent
from tests.test_world_run import PICNIC_TOWN
from worlds.activities.action import Action
from worlds.activities.base import ActivityEnv
from worlds.activities.conversation import Conversation
from worlds.engine import Engine
from worlds.eventlog import EventWriter
from worlds.runfolder import RunFolder
from worlds.runner import build_agents, execute_run
from worlds.scenario import parse_scenario
from worlds.scheduler import Appointment, Scheduler
from worlds.world import World


def _restored_run(
    text: str, model_factory, snapshot_tick: int, until, tmp_path: Path
) -> tuple[list[dict], list[dict], dict]:
    """Run uninterrupted while snapshotting at a tick, then restore the snapshot into a fresh engine and run on."""
    scenario = parse_scenario(text)
    captured: dict = {}
    engines: list[Engine] = []

    def on_tick(tick, now, events) -> None:
        if tick == snapshot_tick:
            engine = engines[0]
            captured["state"] = json.loads(json.dumps(engine.get_state()))  # proves it is JSON-able
            captured["store"] = copy.deepcopy(engine.store)

    first = asyncio.run(execute_run(scenario, tmp_path / "a", model=model_factory(), until=until,
                                    on_engine=engines.append, on_tick=on_tick))
    state = captured["state"]
    assert state["next_tick"] == snapshot_tick + 1

    async def resume() -> Path:
        folder = RunFolder.create(tmp_path / "b", scenario)
        store = captured["store"]
        gateway = ModelGateway(build_backend(model_factory()))
        agents = build_agents(scenario, store, gateway, "fake")
        engine = Engine(scenario, gateway, EventWriter(folder.events_path), store, agents, World(scenario))
        engine.set_state(state)
        await engine.run(until)
        engine.writer.close()
        return folder.events_path

    restored = comparable_log(asyncio.run(resume()))
    original = [r for r in comparable_log(RunFolder(first.run_dir).events_path) if r["seq"] >= state["next_seq"]]
    return original, restored, state


@pytest.mark.parametrize("snapshot_tick", [5, 23])
def test_a_run_restored_from_a_snapshot_writes_the_same_log(snapshot_tick: int, tmp_path: Path):
    scenario = parse_scenario(SMALL_TOWN)
    original, restored, _ = _restored_run(SMALL_TOWN, lambda: "fake", snapshot_tick,
                                       scenario.clock.start.replace(hour=14), tmp_path)
    assert len(original) > 50 and restored == original


def test_snapshots_hold_conversations_sleep_and_plans_mid_flight(tmp_path: Path):
    scenario = parse_scenario(PICNIC_TOWN)
    until = scenario.clock.stop
    original, restored, state = _restored_run(PICNIC_TOWN, lambda: EchoFake("Cafe"), 8, until, tmp_path)
    assert {a["kind"] for a in state["scheduler"]["running"]} == {"conversation", "sleep"}
    kinds = {r["kind"] for r in original}
    assert {"utterance", "conversation_ended", "probe_answer", "activity_started"} <= kinds
    assert restored == original


def _env(*names: str) -> ActivityEnv:
    scenario = parse_scenario(SMALL_TOWN)
    agents: dict[str, Agent] = {n: make_agent(n, f"{n}'s flat") for n in names}
    return ActivityEnv(world=World(scenario), agents=agents, gateway=ModelGateway(build_backend("fake")),
                       scenario=scenario)


def test_an_appointment_waits_for_a_conversation_but_interrupts_a_routine():
    env = _env("Ann", "Bob", "Cy")
    scheduler = Scheduler()
    start = parse_scenario(SMALL_TOWN).clock.start
    ctx = TickContext(tick=0, now=start, step=parse_scenario(SMALL_TOWN).clock.step, run_seed=1)
    assert scheduler.start(Conversation("", ["Ann", "Bob"], "Cafe"), ctx, env)
    errand = PlanStep(start=start, end=start.replace(hour=9), description="sweep the floor", place="Cafe", object="counter")
    assert scheduler.start(Action("", "Cy", errand), ctx, env)
    assert not scheduler.start(Action("", "Ann", errand), ctx, env)  # busy in a conversation: refused

    meeting = Action("cy-meeting", "Cy", errand.model_copy(update={"description": "meet the mayor"}))
    talk = Action("ann-meeting", "Ann", errand.model_copy(update={"description": "meet the mayor"}))
    scheduler.agenda = [Appointment(at=start, activity=meeting.get_state()), Appointment(at=start, activity=talk.get_state())]
    scheduler.start_due(ctx, env)
    assert env.agents["Cy"].state.activity == "cy-meeting"  # the routine was interrupted
    assert [a.activity["id"] for a in scheduler.agenda] == ["ann-meeting"]  # waits for the conversation
    interrupted = [e for e in ctx.drain() if getattr(e, "kind", "") == "activity_ended"]
    assert [(e.agents, e.outcome) for e in interrupted] == [(["Cy"], "interrupted")]
    assert env.world.places.objects_at("Cafe")["counter"] != "idle"  # the new meeting uses the counter now

    scheduler.end_all(ctx, env, "run_ended")
    assert all(a.state.activity is None for a in env.agents.values())


def test_the_log_is_durable_before_the_store_is_flushed(tmp_path: Path, monkeypatch):
    """Each store flush finds every memory it writes already in the fsync'ed log (the point of truth)."""
    from memory import ChromaStore

    checked = []
    original = ChromaStore.flush

    def flush(self, access_times: bool = True) -> None:
        (log,) = tmp_path.glob("picnic-town-*/events.jsonl")
        logged = {json.loads(line)["memory"]["id"] for line in log.read_text().splitlines() if '"memory_added"' in line}
        assert {r.id for r, _ in self._new} <= logged, "a memory reached the store before the log"
        checked.append(len(self._new))
        original(self, access_times)

    monkeypatch.setattr(ChromaStore, "flush", flush)
    scenario = parse_scenario(PICNIC_TOWN.replace("memory: {store: memory}", "memory: {store: chroma, flush_every: 2}"))
    asyncio.run(execute_run(scenario, tmp_path, model=EchoFake("Cafe"), until=scenario.clock.start.replace(hour=9)))
    assert len(checked) > 5 and sum(checked) > 0


def test_a_snapshot_restores_from_the_chroma_store(tmp_path: Path):
    scenario = parse_scenario(PICNIC_TOWN.replace("memory: {store: memory}", "memory: {store: chroma, flush_every: 4}"))
    engines: list[Engine] = []
    captured: dict = {}
    until = scenario.clock.start.replace(hour=11)

    def on_tick(tick, now, events) -> None:
        if tick == 9:  # not a flush boundary: the snapshot itself must flush
            captured["state"] = json.loads(json.dumps(engines[0].get_state()))

    first = asyncio.run(execute_run(scenario, tmp_path / "a", model=EchoFake("Cafe"), until=until,
                                    on_engine=engines.append, on_tick=on_tick))
    state = captured["state"]

    async def resume() -> Path:
        import shutil

        from memory import ChromaStore

        folder = RunFolder.create(tmp_path / "b", scenario)
        shutil.copytree(first.run_dir / "memory", folder.path / "memory")  # the store as the run left it
        store = ChromaStore(folder.path / "memory")
        gateway = ModelGateway(build_backend(EchoFake("Cafe")))
        engine = Engine(scenario, gateway, EventWriter(folder.events_path), store,
                        build_agents(scenario, store, gateway, "fake"), World(scenario))
        engine.set_state(state)  # rewinds the streams, discarding rows written after the snapshot
        await engine.run(until)
        engine.writer.close()
        return folder.events_path

    restored = comparable_log(asyncio.run(resume()))
    original = [r for r in comparable_log(RunFolder(first.run_dir).events_path) if r["seq"] >= state["next_seq"]]
    assert len(original) > 50 and restored == original


def test_a_wish_to_talk_that_loses_the_race_becomes_waiting():
    from worlds.routine import Intent

    env = _env("Ann", "Bob", "Cy")
    scheduler = Scheduler()
    clock = parse_scenario(SMALL_TOWN).clock
    ctx = TickContext(tick=0, now=clock.start, step=clock.step, run_seed=1)
    first = Intent(Conversation("", ["Ann", "Cy"], "Cafe"), "Cy")
    second = Intent(Conversation("", ["Bob", "Cy"], "Cafe"), "Cy")
    assert scheduler.start(first.activity, ctx, env)
    assert not scheduler.start(second.activity, ctx, env)
    second.refused(env)
    assert env.agents["Bob"].state.waiting_for == "Cy" and env.agents["Ann"].state.waiting_for is None
