"""Self-* loops inside world runs: they hold their agent on the clock, leave a memory, snapshot, and harvest."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.test_sessions import restored_run
from worlds.runfolder import RunFolder
from worlds.runner import execute_run
from worlds.scenario import ScenarioError, parse_any, parse_scenario

LOOP_TOWN = """\
name: loop-town
seed: 4
clock: {start: 2023-02-13T09:00, step: 10m, stop: 2023-02-13T12:00}
models: {default: fake, embeddings: fake}
memory: {store: memory}
world:
  places:
    Town: {Cafe: [counter], Home A: [bed], Home B: [bed]}
agents:
  - {name: Ann Lee, home: Home A, persona: Ann runs the cafe., memories: [Ann is planning a party on Friday.]}
  - {name: Bob Ray, home: Home B, persona: Bob is a programmer.}
sessions:
  - {type: self_refine, at: 2023-02-13T10:00, agent: Ann Lee, task: Write the notice for the cafe door,
     max_iterations: 3, minutes_per_message: 8}
  - {type: self_consistency, at: 2023-02-13T10:00, agent: Bob Ray, task: "What is 17 times 3?", k: 3}
  - {type: self_align, at: 2023-02-13T11:00, role: Librarian, task: "How do I return a late book?"}
"""


def _events(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in RunFolder(run_dir).events_path.read_text().splitlines()]


@pytest.fixture(scope="module")
def loop_run(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    summary = asyncio.run(execute_run(parse_scenario(LOOP_TOWN), tmp_path_factory.mktemp("loops")))
    assert summary.status == "completed"
    return _events(summary.run_dir)


def _one(events: list[dict[str, Any]], kind: str, session_id: str) -> dict[str, Any]:
    (found,) = [e for e in events if e["kind"] == kind and e.get("session_id") == session_id]
    return found


def test_a_world_agent_runs_its_loop_busy_and_remembers_the_result(loop_run: list[dict[str, Any]]) -> None:
    started, ended = _one(loop_run, "session_started", "session-1"), _one(loop_run, "session_ended", "session-1")
    assert (started["loop"], started["agents"], started["assistant_agent"]) == ("self_refine", ["Ann Lee"], "Ann Lee")
    assert ended["reason"] in ("no_change_needed", "max_iterations", "critic_failed")
    ticks = {e["tick"]: e for e in loop_run if e["kind"] == "tick"}
    for tick in range(started["tick"], ended["tick"] + 1):
        assert ticks[tick]["status"]["Ann Lee"].startswith("running self-refine: Write the notice")
    for e in loop_run:
        if started["tick"] <= e["tick"] <= ended["tick"] and e["kind"] in ("plan", "reaction", "conversation_started"):
            assert "Ann Lee" not in e["agents"], e
    (memory,) = [e for e in loop_run if e["kind"] == "memory_added" and e["memory"]["kind"] == "session"
                 and e["agents"] == ["Ann Lee"]]
    assert memory["memory"]["source_event"] == ended["seq"]
    assert memory["memory"]["text"].startswith('Ann refined "Write the notice for the cafe door" over')
    assert ended["result"]["final"] in memory["memory"]["text"]
    replans = [e for e in loop_run if e["kind"] == "plan" and e["agents"] == ["Ann Lee"] and e["level"] == "replan"]
    assert replans and replans[0]["seq"] > ended["seq"]


def test_loops_of_different_kinds_run_side_by_side_and_a_free_role_needs_no_agent(loop_run: list[dict]) -> None:
    vote = _one(loop_run, "session_ended", "session-2")
    assert vote["reason"] in ("voted", "no_answer") and vote["result"]["samples"] == 3
    first_ann = _one(loop_run, "session_started", "session-1")["tick"]
    assert _one(loop_run, "session_started", "session-2")["tick"] == first_ann, "different agents, same time"
    align = _one(loop_run, "session_ended", "session-3")
    assert align["reason"] == "answered" and align["agents"] == []
    parts = [e["part"] for e in loop_run if e["kind"] == "session_message" and e["session_id"] == "session-3"]
    assert parts == ["task", "thoughts", "answer"]


def test_a_snapshot_inside_a_loop_restores_to_the_same_log(tmp_path: Path) -> None:
    """Ann's loop says a message every 8 minutes, so after tick 6 (10:00-10:10) it is half done."""
    original, restored, state = restored_run(tmp_path, 6, LOOP_TOWN)
    running = [a for a in state["scheduler"]["running"] if a["kind"] == "loop"]
    assert running and running[0]["session"]["progress"]["turns"], "the snapshot is taken mid-loop"
    assert restored == original


def test_a_loop_naming_an_unknown_agent_or_a_missing_file_is_a_located_error(tmp_path: Path) -> None:
    text = LOOP_TOWN.replace("agent: Bob Ray, task: \"What", "agent: Zed, task: \"What") + (
        "  - {type: self_align, at: start, task: Hi, principles_file: nowhere.md}\n")
    with pytest.raises(ScenarioError) as caught:
        parse_any(text, str(tmp_path / "s.yaml"))
    found = {(p.field, p.message.split(":")[0]) for p in caught.value.problems}
    assert ("sessions[1].agent", "unknown agent 'Zed'") in found
    assert ("sessions[3].principles_file", "no such file") in found


DEBUG_TOWN = LOOP_TOWN.split("sessions:\n")[0] + """sessions:
  - {type: self_debug, at: 2023-02-13T10:00, agent: Ann Lee, task: "def add(a, b):\\n    pass\\n",
     tests: "def check(f):\\n    assert f(2, 3) == 5\\n", entry_point: add, max_turns: 3, explain: true,
     minutes_per_message: 6}
  - {type: self_eval, at: 2023-02-13T10:00, agent: Bob Ray, task: "Capital of France?", minutes_per_message: 8}
  - {type: self_instruct, at: 2023-02-13T10:30, role: Curator, target: 3, max_rounds: 3, minutes_per_message: 9}
"""


@pytest.mark.parametrize("snapshot_tick", [6, 7])
def test_a_snapshot_inside_debug_eval_and_instruct_loops_restores_to_the_same_log(tmp_path: Path,
                                                                                  snapshot_tick: int) -> None:
    """The sandbox's feedback and the pool are the same in every run, so a restored run asks the same things."""
    original, restored, state = restored_run(tmp_path, snapshot_tick, DEBUG_TOWN)
    running = {a["session"]["setup"]["session_id"] for a in state["scheduler"]["running"] if a["kind"] == "loop"}
    assert "session-1" in running, "the snapshot is taken mid-debugging"
    assert {"execution"} <= {r.get("part") for r in original if r["kind"] == "session_message"}
    assert restored == original
