"""Agents living in a world on the fake models: movement, busy rules, cooldowns, sleep, diffusion, snapshots."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

from agents.gateway.types import ModelReply, ModelRequest
from agents.seeding import stable_int
from tests.conftest import SMALL_TOWN, comparable_log
from tests.fakes import EchoFake
from worlds.places import PlaceGraph
from worlds.runfolder import RunFolder
from worlds.runner import execute_run
from worlds.scenario import parse_scenario

PICNIC_TOWN = """\
name: picnic-town
seed: 5
clock: {start: 2023-02-13T06:00, step: 10m, stop: 2023-02-14T12:00}
models: {default: fake, embeddings: fake}
memory: {store: memory}
world:
  places:
    Town:
      Cafe: [counter]
      Ann's flat: [bed]
      Cy's flat: [bed]
agents:
  - {name: Ann, persona: Ann bakes bread., home: Ann's flat, wake: "07:00", bedtime: "21:00",
     memories: [Ann is hosting a picnic at the lake on Sunday.]}
  - {name: Bob, persona: Bob runs the cafe., home: Cafe, wake: "06:30", bedtime: "22:00"}
  - {name: Cy, persona: Cy writes poems., home: Cy's flat, wake: "08:00", bedtime: "20:00"}
conversation: {max_lines: 4, lines_per_tick: 2, cooldown: 3h}
probes:
  - {at: end, ask: [Bob, Cy], question: "Is anyone hosting a picnic?"}
"""


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def _run(text: str, out: Path, model, until: str | None = None):
    scenario = parse_scenario(text)
    stop = datetime.fromisoformat(until) if until else scenario.clock.stop
    return asyncio.run(execute_run(scenario, out, model=model, until=stop))


def _intervals(events: list[dict]) -> dict[str, list[tuple[str, str, str]]]:
    """Per agent, (kind, start, end) of every activity it was in, checking none overlapped."""
    open_: dict[str, tuple[str, str, str]] = {}
    done: dict[str, list] = defaultdict(list)
    for e in events:
        if e["kind"] in ("activity_started", "conversation_started"):
            key = e.get("activity_id") or e["conversation_id"]
            for agent in e["agents"]:
                assert agent not in open_, f"{agent} started {key} while in {open_[agent]}"
                open_[agent] = (e.get("activity", "conversation"), key, e["sim_time"])
        elif e["kind"] in ("activity_ended", "conversation_ended"):
            key = e.get("activity_id") or e["conversation_id"]
            for agent in e["agents"]:
                assert open_[agent][1] == key, f"{agent} ended {key} but was in {open_.get(agent)}"
                kind, _, start = open_.pop(agent)
                done[agent].append((kind, start, e["sim_time"]))
    return done


def test_a_seeded_fact_spreads_through_a_conversation_into_a_probe_answer(tmp_path: Path):
    summary = _run(PICNIC_TOWN, tmp_path, EchoFake("Cafe"), until="2023-02-13T12:00")
    events = _events(summary.run_dir)
    talks = [e for e in events if e["kind"] == "utterance" and "picnic" in e["text"]]
    assert talks and talks[0]["speaker"] == "Ann"
    heard = [e for e in events if e["kind"] == "memory_added" and e["agents"] == ["Bob"]
             and e["memory"]["kind"] == "chat" and "picnic" in e["memory"]["text"]]
    assert heard and heard[0]["memory"]["source_event"] is not None
    answers = {e["agents"][0]: e["answer"] for e in events if e["kind"] == "probe_answer"}
    assert "picnic" in answers["Bob"]
    cy_knew = any(e["kind"] == "memory_added" and e["agents"] == ["Cy"] and "picnic" in e["memory"]["text"]
                  for e in events)
    assert ("picnic" in answers["Cy"]) == cy_knew  # answers come from the agent's own memory, nowhere else


def test_no_agent_is_in_two_activities_and_sleepers_do_not_talk(tmp_path: Path):
    summary = _run(PICNIC_TOWN, tmp_path, EchoFake("Cafe"))
    events = _events(summary.run_dir)
    intervals = _intervals(events)
    sleeps = {a: [(s, e) for kind, s, e in spans if kind == "sleep"] for a, spans in intervals.items()}
    assert all(sleeps[a] for a in ("Ann", "Bob", "Cy")), "everyone sleeps in a run through the night"
    for e in events:
        if e["kind"] == "utterance":
            for agent in e["agents"]:
                assert not any(s <= e["sim_time"] < end for s, end in sleeps[agent]), f"{agent} talked in their sleep"


def test_cooldown_holds_and_conversations_end_within_the_cap(tmp_path: Path):
    summary = _run(PICNIC_TOWN, tmp_path, EchoFake("Cafe"))
    events = _events(summary.run_dir)
    started: dict[frozenset, list[datetime]] = defaultdict(list)
    ended: dict[str, datetime] = {}
    for e in events:
        if e["kind"] == "conversation_ended":
            assert e["lines"] <= 4
            ended[frozenset(e["agents"])] = datetime.fromisoformat(e["sim_time"])
        if e["kind"] == "conversation_started":
            pair = frozenset(e["agents"])
            now = datetime.fromisoformat(e["sim_time"])
            if pair in ended:
                assert now - ended[pair] >= timedelta(hours=3), f"{sorted(pair)} talked again after {now - ended[pair]}"
            started[pair].append(now)
    assert sum(len(v) for v in started.values()) >= 2, "EchoFake always wants to talk: there must be conversations"


def test_movement_follows_the_shortest_path_and_takes_travel_time(tmp_path: Path):
    summary = _run(SMALL_TOWN, tmp_path, "fake")
    events = _events(summary.run_dir)
    places = PlaceGraph(parse_scenario(SMALL_TOWN))
    trips = 0
    for i, e in enumerate(events):
        if e["kind"] != "activity_started" or e["activity"] != "travel":
            continue
        agent, origin = e["agents"][0], e["place"]
        destination = e["description"].removeprefix("walking to ")
        moves = []
        for later in events[i + 1 :]:
            if later["kind"] == "move" and later["agents"] == [agent]:
                moves.append(later)
            if later["kind"] == "activity_ended" and later["activity_id"] == e["activity_id"]:
                break
        expected = places.route(origin, destination)[1:]
        if later.get("activity_id") == e["activity_id"] and later["outcome"] == "done":
            trips += 1
            assert [m["destination"] for m in moves] == expected
            arrival = datetime.fromisoformat(moves[-1]["sim_time"])
            left = datetime.fromisoformat(e["sim_time"])
            step = timedelta(minutes=10)
            assert arrival + step > left + places.travel_time(origin, destination) >= arrival
    assert trips >= 3
    ticks = [e for e in events if e["kind"] == "tick"]
    _intervals(events)
    for before, after in zip(ticks, ticks[1:]):
        for agent, place in after["positions"].items():
            if place != before["positions"][agent]:
                assert any(m["kind"] == "move" and m["agents"] == [agent] and m["tick"] == after["tick"] for m in events)


class JitteryEcho(EchoFake):
    """EchoFake with a latency drawn from each request, reversed on demand: two runs finish calls in opposite orders."""

    def __init__(self, meeting_place: str, reverse: bool) -> None:
        super().__init__(meeting_place)
        self.reverse = reverse
        self.finished: list[str] = []

    async def generate(self, request):
        fraction = stable_int(request.key(), bits=16) / 65535
        await asyncio.sleep(0.004 * (1 - fraction if self.reverse else fraction))
        reply = await super().generate(request)
        self.finished.append(request.key())
        return reply


def test_shuffled_completion_order_gives_the_same_log(tmp_path: Path):
    two_probes = PICNIC_TOWN.replace(
        "  - {at: end, ask: [Bob, Cy], question: \"Is anyone hosting a picnic?\"}",
        "  - {at: end, ask: [Bob, Cy], question: \"Is anyone hosting a picnic?\"}\n"
        "  - {at: end, ask: all, question: \"Who did you meet today?\"}",
    )
    forward, backward = JitteryEcho("Cafe", reverse=False), JitteryEcho("Cafe", reverse=True)
    first = _run(two_probes, tmp_path / "a", forward, until="2023-02-13T10:00")
    second = _run(two_probes, tmp_path / "b", backward, until="2023-02-13T10:00")
    assert forward.finished != backward.finished, "the two runs must really complete calls in different orders"
    assert sorted(forward.finished) == sorted(backward.finished)
    log = comparable_log(RunFolder(first.run_dir).events_path)
    assert {"utterance", "plan", "reaction", "probe_answer"} <= {r["kind"] for r in log}
    assert sum(r["kind"] == "probe_answer" for r in log) == 5  # Bob and Cy answer twice, from one stream each
    assert log == comparable_log(RunFolder(second.run_dir).events_path)


class OverlapEcho(EchoFake):
    """EchoFake that holds each call a moment and notes which kinds of call were in flight together."""

    def __init__(self, meeting_place: str) -> None:
        super().__init__(meeting_place)
        self.in_flight: list[str] = []
        self.together: set[frozenset[str]] = set()

    async def generate(self, request: ModelRequest) -> ModelReply:
        kind = (request.json_schema or {}).get("title") or ("line" if " chatting with " in request.messages[0].content
                                                             else "text")
        self.together.update(frozenset({kind, other}) for other in self.in_flight if other != kind)
        self.in_flight.append(kind)
        try:
            await asyncio.sleep(0.02)
            return await super().generate(request)
        finally:
            self.in_flight.remove(kind)


def test_scoring_and_running_talks_go_on_beside_the_decisions(tmp_path: Path):
    town = PICNIC_TOWN.replace('wake: "08:00"', 'wake: "07:30"').replace("max_lines: 4", "max_lines: 8")
    overlapping, plain = OverlapEcho("Cafe"), EchoFake("Cafe")
    first = _run(town, tmp_path / "a", overlapping, until="2023-02-13T10:00")
    decisions = {"DayOutline", "ActionList", "Reaction", "ConversationDigest"}
    assert any({"ImportanceScores", d} in overlapping.together for d in decisions | {"line"})
    assert any({"line", d} in overlapping.together for d in decisions), "a talk under way waits for nobody's plans"
    second = _run(town, tmp_path / "b", plain, until="2023-02-13T10:00")
    assert comparable_log(RunFolder(first.run_dir).events_path) == comparable_log(RunFolder(second.run_dir).events_path)


class PatientEcho(EchoFake):
    """EchoFake whose agents always choose to wait until they are free before talking."""

    def _structured(self, schema: str, prompt: str) -> dict:
        if schema == "Reaction":
            return {"decision": "wait", "reason": "after this"}
        return super()._structured(schema, prompt)


def test_waiting_means_talking_once_free_without_asking_again(tmp_path: Path):
    events = _events(_run(PICNIC_TOWN, tmp_path, PatientEcho("Cafe"), until="2023-02-13T12:00").run_dir)
    started = [e for e in events if e["kind"] == "conversation_started"]
    assert started, "waiting agents still talk, once their action is over"
    for conv in started:
        opener = conv["agents"][0]
        waited = [e for e in events if e["kind"] == "reaction" and e["agents"] == [opener]
                  and e["other"] == conv["agents"][1] and e["seq"] < conv["seq"]]
        assert waited and waited[-1]["decision"] == "wait"
        assert waited[-1]["tick"] < conv["tick"]  # not in the same tick: after the action ended
