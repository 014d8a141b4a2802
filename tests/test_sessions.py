"""Role-play sessions inside world runs: they hold their agents on the clock, leave memories, queue, snapshot, harvest."""

from __future__ import annotations

import asyncio
import copy
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agents.gateway import ModelGateway, build_backend
from tests.conftest import comparable_log
from worlds.cli import app
from worlds.engine import Engine
from worlds.eventlog import EventWriter
from worlds.harvest import HarvestFormat, harvest
from worlds.runfolder import RunFolder
from worlds.runner import build_agents, execute_run
from worlds.scenario import ScenarioError, parse_any, parse_scenario
from worlds.world import World

#: Two world agents and two sessions due at 10:00 that both need Ann Lee: the first (with a critic, a
#: specifier and a planner) pairs Bob and Ann, the second pairs a free Poet role with Ann. The fake model's
#: stock sentences never give an instruction and may echo each other, so those stop rules are relaxed and
#: both sessions run to max_messages.
RP_TOWN = """\
name: rp-town
seed: 3
clock: {start: 2023-02-13T09:00, step: 10m, stop: 2023-02-13T11:30}
models: {default: fake, embeddings: fake}
memory: {store: memory}
world:
  places:
    Town: {Cafe: [counter], Home A: [bed], Home B: [bed]}
agents:
  - {name: Ann Lee, home: Home A, persona: Ann runs the cafe., memories: [Ann is planning a party.]}
  - {name: Bob Ray, home: Home B, persona: Bob is a programmer.}
sessions:
  - {type: roleplay, at: 2023-02-13T10:00, assistant: {agent: Bob Ray}, user: {role: Cafe Owner, agent: Ann Lee},
     task: Design a survey about coffee habits, specify_task: true, plan_task: true, max_messages: 12,
     no_instruction_turns: 50, stop_on_repetition: false, critic: {role: Editor, candidates: 2}}
  - {type: roleplay, at: 2023-02-13T10:00, assistant: {role: Poet}, user: {agent: Ann Lee}, task: Write a poem,
     max_messages: 6, no_instruction_turns: 50, stop_on_repetition: false}
"""

STEP = timedelta(minutes=10)
MINUTES_PER_MESSAGE = 2  # the RoleplaySession default the scenario keeps
SESSION_AGENTS = ("Ann Lee", "Bob Ray")
#: Events that show an agent deciding something for itself; none may come while a session holds it.
OWN_DECISIONS = {"plan", "reaction", "activity_started", "conversation_started"}

#: The session part of RP_TOWN, written block style so each field sits on its own line.
HEAD = RP_TOWN.split("sessions:\n")[0]


def _run(tmp_path: Path, text: str = RP_TOWN) -> tuple[Path, list[dict[str, Any]]]:
    scenario = parse_scenario(text)
    summary = asyncio.run(execute_run(scenario, tmp_path))
    assert summary.status == "completed"
    events = [json.loads(line) for line in RunFolder(summary.run_dir).events_path.read_text().splitlines()]
    return summary.run_dir, events


@pytest.fixture(scope="module")
def rp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """One run of RP_TOWN on the fake models, shared by the read-only checks."""
    return _run(tmp_path_factory.mktemp("rp-town"))


def _one(events: list[dict[str, Any]], kind: str, session_id: str) -> dict[str, Any]:
    (found,) = [e for e in events if e["kind"] == kind and e.get("session_id") == session_id]
    return found


def _time(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["sim_time"])


def test_a_session_keeps_its_agents_busy_for_its_whole_length(rp_run: tuple[Path, list[dict[str, Any]]]) -> None:
    """A session occupies its world agents on the clock: no plans, reactions, routines or talks until it ends."""
    _, events = rp_run
    started, ended = _one(events, "session_started", "session-1"), _one(events, "session_ended", "session-1")
    assert started["agents"] == ["Bob Ray", "Ann Lee"] and ended["reason"] == "max_messages"
    first, last = started["tick"], ended["tick"]
    assert last > first, "12 messages at 5 a tick take more than one tick"
    ticks = {e["tick"]: e for e in events if e["kind"] == "tick"}
    for tick in range(first, last + 1):
        for agent in SESSION_AGENTS:
            assert ticks[tick]["status"][agent].startswith("in a role-play session"), (tick, agent)
        assert ticks[tick]["status"]["Bob Ray"].startswith("in a role-play session as the assistant")
        assert ticks[tick]["status"]["Ann Lee"].startswith("in a role-play session as Cafe Owner (user)")
    for e in events:
        if first <= e["tick"] <= last and e["kind"] in OWN_DECISIONS:
            assert not set(e["agents"]) & set(SESSION_AGENTS), f"{e['kind']} at tick {e['tick']} during the session"
    # Whatever routine they were in had ended (or was cut short) before the session's first message.
    open_: set[tuple[str, str]] = set()
    for e in events:
        if e["seq"] >= started["seq"]:
            break
        if e["kind"] in ("activity_started", "activity_ended"):
            for agent in e["agents"]:
                (open_.add if e["kind"] == "activity_started" else open_.discard)((agent, e["activity_id"]))
    assert not {agent for agent, _ in open_} & set(SESSION_AGENTS)


def test_session_messages_take_minutes_per_message_of_sim_time(rp_run: tuple[Path, list[dict[str, Any]]]) -> None:
    """Messages are spread over the tick by minutes_per_message (10m step, 2m a message: 5 a tick)."""
    _, events = rp_run
    started, ended = _one(events, "session_started", "session-1"), _one(events, "session_ended", "session-1")
    messages = [e for e in events if e["kind"] == "session_message" and e["session_id"] == "session-1"]
    assert [m["index"] for m in messages] == list(range(12)) == list(range(ended["messages"]))
    gap = timedelta(minutes=MINUTES_PER_MESSAGE)
    begin = _time(started)
    assert [_time(m) for m in messages] == [begin + i * gap for i in range(12)]
    assert _time(ended) == begin + 12 * gap
    per_tick: dict[int, int] = {}
    for m in messages:
        per_tick[m["tick"]] = per_tick.get(m["tick"], 0) + 1
        tick_start = datetime(2023, 2, 13, 9, 0) + m["tick"] * STEP
        assert tick_start <= _time(m) < tick_start + STEP, "a message is stamped inside its own tick"
    assert list(per_tick.values()) == [5, 5, 2]
    chosen = [e for e in events if e["kind"] == "critic_choice" and e["session_id"] == "session-1"]
    assert chosen and all(_time(c) == begin + c["index"] * gap for c in chosen)


def test_messages_longer_than_a_tick_take_their_own_time(tmp_path: Path) -> None:
    """15 minutes a message on 10-minute ticks: messages at 10:00, 10:15, 10:30 ..., some ticks carry none."""
    text = RP_TOWN.replace("max_messages: 6, no_instruction_turns: 50", "max_messages: 4, minutes_per_message: 15, "
                                                                       "no_instruction_turns: 50")
    text = text.replace("  - {type: roleplay, at: 2023-02-13T10:00, assistant: {agent: Bob Ray}", "  - {type: roleplay, "
                        "at: 2023-02-13T12:00, assistant: {agent: Bob Ray}").replace("stop: 2023-02-13T11:30",
                                                                                      "stop: 2023-02-13T12:30")
    _, events = _run(tmp_path, text)
    messages = [e for e in events if e["kind"] == "session_message" and e["session_id"] == "session-2"]
    begin = _time(_one(events, "session_started", "session-2"))
    assert [_time(m) for m in messages] == [begin + i * timedelta(minutes=15) for i in range(4)]
    assert [m["tick"] for m in messages] == [6, 7, 9, 10], "each message in the tick its minute falls in"
    # The last message (10:45) would run to 11:00; the session closes with the tick it was said in.
    assert _time(_one(events, "session_ended", "session-2")) == datetime(2023, 2, 13, 10, 50)


def test_every_event_of_a_session_tick_is_stamped_inside_that_tick(rp_run: tuple[Path, list[dict[str, Any]]]) -> None:
    """Model calls, critic choices and messages of a session all fall within the tick that made them."""
    _, events = rp_run
    for e in events:
        if e["kind"] in ("run_started", "run_ended"):
            continue
        tick_start = datetime(2023, 2, 13, 9, 0) + e["tick"] * STEP
        assert tick_start <= _time(e) <= tick_start + STEP, (e["kind"], e["tick"], e["sim_time"])


def test_after_a_session_each_agent_remembers_it_and_replans(rp_run: tuple[Path, list[dict[str, Any]]]) -> None:
    """A finished session becomes a chat memory citing its end, and a re-plan, for every world agent in it."""
    _, events = rp_run
    ended = {sid: _one(events, "session_ended", sid) for sid in ("session-1", "session-2")}
    for agent, sessions in (("Bob Ray", ["session-1"]), ("Ann Lee", ["session-1", "session-2"])):
        last_end = max(ended[s]["seq"] for s in sessions)
        chats = [e for e in events if e["kind"] == "memory_added" and e["agents"] == [agent]
                 and e["memory"]["kind"] == "chat"]
        assert sorted(c["memory"]["source_event"] for c in chats) == sorted(ended[s]["seq"] for s in sessions)
        assert all(c["seq"] > c["memory"]["source_event"] for c in chats), "remembered after the session ended"
        replans = [e for e in events if e["kind"] == "plan" and e["agents"] == [agent] and e["level"] == "replan"]
        assert replans and replans[0]["seq"] > last_end, f"{agent} re-plans once free"


def test_two_sessions_needing_the_same_agent_queue(rp_run: tuple[Path, list[dict[str, Any]]]) -> None:
    """The chosen rule: a due session whose agent is in another session waits, and starts only after that one ends.

    Both sessions are due at 10:00 and need Ann Lee. Appointments are tried in (time, id) order, so
    session-1 takes her; session-2 is tried again every tick and starts on the first tick after
    session-1's `session_ended` (participants are released at the end of the tick a session ends in).
    """
    _, events = rp_run
    first_end = _one(events, "session_ended", "session-1")
    second_start = _one(events, "session_started", "session-2")
    assert second_start["seq"] > first_end["seq"]
    assert second_start["tick"] == first_end["tick"] + 1
    assert second_start["agents"] == ["Ann Lee"]
    second = [e for e in events if e.get("session_id") == "session-2"]
    assert min(e["seq"] for e in second) == second_start["seq"], "nothing of session-2 happens before it starts"
    ticks = {e["tick"]: e for e in events if e["kind"] == "tick"}
    assert ticks[second_start["tick"]]["status"]["Ann Lee"] == "in a role-play session as the user: Write a poem"


def test_a_run_that_stops_mid_session_ends_it_as_run_ended(tmp_path: Path) -> None:
    """`--until` in the middle of a session: it is closed with `run_ended`, and the queued one is reported."""
    scenario = parse_scenario(RP_TOWN)
    summary = asyncio.run(execute_run(scenario, tmp_path, until=datetime(2023, 2, 13, 10, 10)))
    events = [json.loads(line) for line in RunFolder(summary.run_dir).events_path.read_text().splitlines()]
    ended = _one(events, "session_ended", "session-1")
    assert ended["reason"] == "run_ended" and 0 < ended["messages"] < 12
    assert ended["seq"] < next(e["seq"] for e in events if e["kind"] == "run_ended")
    (warning,) = [e for e in events if e["kind"] == "warning" and "session-2" in e["message"]]
    assert "never started (due 2023-02-13 10:00, the run ended before its participants were free)" in warning["message"]
    assert not [e for e in events if e["kind"] == "session_started" and e["session_id"] == "session-2"]
    # Stopped before a session was due, the warning says that instead.
    early = asyncio.run(execute_run(scenario, tmp_path / "early", until=datetime(2023, 2, 13, 9, 30)))
    warnings = [json.loads(line)["message"] for line in RunFolder(early.run_dir).events_path.read_text().splitlines()
                if json.loads(line)["kind"] == "warning"]
    assert [w for w in warnings if "after the run stopped" in w and "session-1" in w]


def restored_run(tmp_path: Path, snapshot_tick: int, text: str = RP_TOWN) -> tuple[list[dict], list[dict], dict]:
    """Run uninterrupted while snapshotting after a tick; restore into a fresh engine and run on to the stop."""
    scenario = parse_scenario(text)
    captured: dict[str, Any] = {}
    engines: list[Engine] = []

    def on_tick(tick: int, now: datetime, events: list) -> None:
        if tick == snapshot_tick:
            captured["state"] = json.loads(json.dumps(engines[0].get_state()))
            captured["store"] = copy.deepcopy(engines[0].store)

    first = asyncio.run(execute_run(scenario, tmp_path / "a", on_engine=engines.append, on_tick=on_tick))
    state = captured["state"]

    async def resume() -> Path:
        folder = RunFolder.create(tmp_path / "b", scenario)
        store = captured["store"]
        gateway = ModelGateway(build_backend("fake"))
        engine = Engine(scenario, gateway, EventWriter(folder.events_path), store,
                        build_agents(scenario, store, gateway, "fake"), World(scenario))
        engine.set_state(state)
        await engine.run(scenario.clock.stop)
        engine.writer.close()
        return folder.events_path

    restored = comparable_log(asyncio.run(resume()))
    original = [r for r in comparable_log(RunFolder(first.run_dir).events_path) if r["seq"] >= state["next_seq"]]
    return original, restored, state


@pytest.mark.parametrize("snapshot_tick", [6, 7, 9])
def test_a_snapshot_inside_a_session_restores_to_the_same_log(tmp_path: Path, snapshot_tick: int) -> None:
    """A session's progress, its waiting rival and the agents' pending outcomes all survive a snapshot."""
    original, restored, state = restored_run(tmp_path, snapshot_tick)
    running = [a for a in state["scheduler"]["running"] if a["kind"] == "roleplay"]
    assert len(running) == 1 and running[0]["session"]["progress"]["turns"], "the snapshot is taken mid-session"
    if snapshot_tick < 8:
        assert [a["activity"]["id"] for a in state["scheduler"]["agenda"]] == ["session-2"]
    kinds = {r["kind"] for r in original}
    assert {"session_message", "session_ended", "memory_added", "plan"} <= kinds
    assert restored == original


#: Ann and Bob share the cafe from the start and EchoFake always wants to talk; Cy sleeps until the run ends.
MEETING_TOWN = """\
name: meeting-town
seed: 5
clock: {start: 2023-02-13T08:00, step: 10m, stop: 2023-02-13T11:00}
models: {default: fake, embeddings: fake}
memory: {store: memory}
world:
  places:
    Town: {Cafe: [counter], Cy's flat: [bed]}
agents:
  - {name: Ann, persona: Ann bakes bread., home: Cafe, wake: "07:00", bedtime: "21:00"}
  - {name: Bob, persona: Bob runs the cafe., home: Cafe, wake: "07:00", bedtime: "22:00"}
  - {name: Cy, persona: Cy writes poems., home: Cy's flat, wake: "12:00", bedtime: "20:00"}
conversation: {max_lines: 4, lines_per_tick: 2, cooldown: 1h}
sessions:
  - {type: roleplay, at: meeting, assistant: {agent: Bob}, user: {role: Baker, agent: Ann},
     task: Plan the cafe's bread order, max_messages: 4, no_instruction_turns: 50, stop_on_repetition: false}
  - {type: roleplay, at: meeting, assistant: {agent: Cy}, user: {agent: Bob}, task: Write a menu poem}
"""


def test_a_session_booked_on_a_meeting_replaces_the_pairs_next_talk(tmp_path: Path) -> None:
    """`at: meeting`: the first time Ann and Bob choose to talk, they hold the session; later talks are chats."""
    from tests.fakes import EchoFake

    summary = asyncio.run(execute_run(parse_scenario(MEETING_TOWN), tmp_path, model=EchoFake("Cafe")))
    events = [json.loads(line) for line in RunFolder(summary.run_dir).events_path.read_text().splitlines()]
    talks = [e for e in events if e["kind"] in ("conversation_started", "session_started")
             and {"Ann", "Bob"} <= set(e["agents"])]
    assert talks and talks[0]["kind"] == "session_started" and talks[0]["session_id"] == "session-1"
    reacted = [e for e in events if e["kind"] == "reaction" and e["decision"] == "talk" and e["tick"] <= talks[0]["tick"]]
    assert reacted and reacted[0]["tick"] == talks[0]["tick"], "a reaction started it, in the tick it was decided"
    assert [e["kind"] for e in talks[1:]] == ["conversation_started"] * (len(talks) - 1), "booked once, held once"
    assert len(talks) >= 2, "after the cooldown the pair chats as usual"
    ended = _one(events, "session_ended", "session-1")
    assert ended["reason"] == "max_messages" and ended["agents"] == ["Bob", "Ann"]
    # Cy never woke up: that booking is reported, not dropped.
    (warning,) = [e for e in events if e["kind"] == "warning" and "session-2" in e["message"]]
    assert "Cy and Bob never met and chose to talk" in warning["message"]


def test_a_meeting_whose_critic_is_busy_lets_the_pair_chat_and_says_so(tmp_path: Path) -> None:
    """Cy (the critic) sleeps all run: Ann and Bob's talks stay chats, and the warning says why it never started."""
    from tests.fakes import EchoFake

    text = MEETING_TOWN.replace("max_messages: 4, no_instruction_turns: 50", "max_messages: 4, critic: {agent: Cy}, "
                                                                           "no_instruction_turns: 50")
    summary = asyncio.run(execute_run(parse_scenario(text), tmp_path, model=EchoFake("Cafe")))
    events = [json.loads(line) for line in RunFolder(summary.run_dir).events_path.read_text().splitlines()]
    talks = [e for e in events if e["kind"] == "conversation_started" and set(e["agents"]) == {"Ann", "Bob"}]
    assert talks and not [e for e in events if e["kind"] == "session_started"]
    (warning,) = [e for e in events if e["kind"] == "warning" and "session-1" in e["message"]]
    assert f"Bob and Ann talked {len(talks)} time(s), but never while everyone it needs was free" in warning["message"]


def test_a_meeting_needs_a_world_agent_on_both_sides(tmp_path: Path) -> None:
    text = _session_yaml("""\
  - type: roleplay
    at: meeting
    assistant:
      role: Poet
    user:
      agent: Ann Lee
    task: Write a poem
""")
    with pytest.raises(ScenarioError) as caught:
        parse_any(text, "m.yaml")
    assert [(p.line, p.field) for p in caught.value.problems] == [(_line_of(text, "at: meeting"), "sessions[0].at")]
    assert "two world agents" in caught.value.problems[0].message


def _session_yaml(body: str) -> str:
    return HEAD + "sessions:\n" + body


def _line_of(text: str, needle: str) -> int:
    """The 1-based line of the first line containing `needle`."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


UNKNOWN_AGENTS = _session_yaml("""\
  - type: roleplay
    at: 2023-02-13T10:00
    assistant:
      agent: Zed Ink
    user:
      role: Boss
      agent: Nobody Here
    task: Write a poem
    critic:
      agent: Quinn Judge
""")


def test_sessions_naming_unknown_agents_are_located_errors(tmp_path: Path) -> None:
    """Each side's unknown agent is reported at its own file, line and field, all in one error."""
    path = tmp_path / "unknown.yaml"
    path.write_text(UNKNOWN_AGENTS)
    with pytest.raises(ScenarioError) as caught:
        parse_any(UNKNOWN_AGENTS, str(path))
    found = [(p.file, p.line, p.field) for p in caught.value.problems]
    assert found == [
        (str(path), _line_of(UNKNOWN_AGENTS, "agent: Zed Ink"), "sessions[0].assistant.agent"),
        (str(path), _line_of(UNKNOWN_AGENTS, "agent: Nobody Here"), "sessions[0].user.agent"),
        (str(path), _line_of(UNKNOWN_AGENTS, "agent: Quinn Judge"), "sessions[0].critic.agent"),
    ]
    assert all("unknown agent" in p.message for p in caught.value.problems)
    assert "'Zed Ink'" in caught.value.problems[0].message


@pytest.mark.parametrize(("body", "needle", "field", "words"), [
    ("  - type: roleplay\n    at: start\n    assistant: {}\n    user:\n      role: Boss\n    task: Write a poem\n",
     "assistant: {}", "sessions[0].assistant", "give a role, an agent, or both"),
    (("  - type: roleplay\n    at: start\n    assistant:\n      role: Poet\n    user:\n      agent: null\n"
     "    task: Write a poem\n"), "user:", "sessions[0].user", "give a role, an agent, or both"),
    (("  - type: roleplay\n    at: end\n    assistant:\n      role: Poet\n    user:\n      role: Boss\n"
     "    task: Write a poem\n"), "at: end", "sessions[0].at", "cannot start when the run ends"),
])
def test_bad_session_sides_and_times_are_located_errors(tmp_path: Path, body: str, needle: str, field: str,
                                                         words: str) -> None:
    """A side with neither role nor agent, and a session at `end`, are errors at the field's line."""
    text = _session_yaml(body)
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        parse_any(text, str(path))
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.field) == (str(path), _line_of(text, needle), field)
    assert words in problem.message


def test_validate_reports_an_unknown_session_agent_in_one_line_and_exits_2(tmp_path: Path) -> None:
    """The CLI turns a located scenario problem into exit code 2 and a single FILE:LINE: field: message line."""
    text = _session_yaml("  - type: roleplay\n    at: start\n    assistant:\n      agent: Zed Ink\n"
                         "    user:\n      role: Boss\n    task: Write a poem\n")
    path = tmp_path / "unknown.yaml"
    path.write_text(text)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stderr == f"{path}:{_line_of(text, 'agent: Zed Ink')}: sessions[0].assistant.agent: " \
                            f"unknown agent 'Zed Ink'\n"
    assert "Traceback" not in result.output


def test_validate_accepts_the_session_scenario(tmp_path: Path) -> None:
    """The scenario the other tests run is valid and its sessions are counted."""
    path = tmp_path / "rp.yaml"
    path.write_text(RP_TOWN)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0 and "2 sessions" in result.stdout


@pytest.mark.parametrize("fmt", ["openai", "sharegpt"])
def test_harvested_sessions_carry_their_roles_task_and_alternate_turns(
    rp_run: tuple[Path, list[dict[str, Any]]], tmp_path: Path, fmt: HarvestFormat
) -> None:
    """Each session becomes one training record with its metadata, user and assistant turns alternating."""
    run_dir, events = rp_run
    out = tmp_path / f"corpus-{fmt}.jsonl"
    counts = harvest([RunFolder.open(run_dir)], fmt, out)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    sessions = [r for r in records if r["metadata"]["kind"] == "roleplay"]
    assert counts.sessions == len(sessions) == 2 and counts.unfinished == 0
    by_id = {r["metadata"]["session_id"]: r for r in sessions}
    assert sorted(by_id) == ["session-1", "session-2"]
    for session_id, record in by_id.items():
        meta = record["metadata"]
        start, end = _one(events, "session_started", session_id), _one(events, "session_ended", session_id)
        assert {"kind", "session_id", "assistant_role", "user_role", "task", "specified_task", "end_reason",
                "messages"} <= set(meta)
        assert (meta["assistant_role"], meta["user_role"]) == (start["assistant_role"], start["user_role"])
        assert (meta["task"], meta["specified_task"]) == (start["task"], start["specified_task"])
        assert meta["end_reason"] == end["reason"] and meta["messages"] == end["messages"]
        if fmt == "openai":
            roles = [m["role"] for m in record["messages"]]
            system, turns = record["messages"][0]["content"], roles[1:]
            assert roles[0] == "system" and "system" not in turns
        else:
            system, turns = record["system"], [m["from"] for m in record["conversations"]]
            turns = ["user" if who == "human" else "assistant" if who == "gpt" else who for who in turns]
        assert len(turns) == meta["messages"]
        assert turns == ["user" if i % 2 == 0 else "assistant" for i in range(len(turns))]
        assert (meta["specified_task"] or meta["task"]) in system
    one, two = by_id["session-1"]["metadata"], by_id["session-2"]["metadata"]
    assert (one["assistant_role"], one["user_role"], one["task"]) == ("Bob Ray", "Cafe Owner",
                                                                     "Design a survey about coffee habits")
    assert one["specified_task"] and one["messages"] == 12 and one["end_reason"] == "max_messages"
    assert (two["assistant_role"], two["user_role"], two["task"]) == ("Poet", "Ann Lee", "Write a poem")
    assert two["specified_task"] is None and two["messages"] == 6
    system_two = by_id["session-2"]["messages"][0]["content"] if fmt == "openai" else by_id["session-2"]["system"]
    assert re.match(r"You are the Poet\. You are helping Ann Lee with this task: Write a poem", system_two)
