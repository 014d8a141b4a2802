"""`run --fork RUN@TIME --set ...`: the parent's prefix replayed exactly, edits that reach the agents, bad input refused."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import SMALL_TOWN, comparable_log
from tests.fakes import EchoFake
from tests.test_world_run import PICNIC_TOWN
from worlds.cli import app
from worlds.events import WALL_CLOCK_FIELDS
from worlds.fork import FORK_FILE, fork_run, plan_fork
from worlds.runfolder import RunFolder
from worlds.runner import execute_run
from worlds.scenario import parse_scenario
from worlds.stats import compute_stats

#: The fork answers its prefix from the parent's cache: only that flag, and the run's own record, may differ.
IGNORED = WALL_CLOCK_FIELDS | {"cached", "paid"}


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scenario = parse_scenario(PICNIC_TOWN)
    out = tmp_path_factory.mktemp("parent")
    until = scenario.clock.start.replace(hour=9, minute=30)
    return asyncio.run(execute_run(scenario, out, model=EchoFake("Cafe"), until=until)).run_dir


def _fork(parent: Path, out: Path, at: str, edits: list[str]) -> Path:
    planned = plan_fork(RunFolder.open(parent), at, edits)
    return asyncio.run(fork_run(planned, out, model=EchoFake("Cafe"))).run_dir


def _log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def test_a_fork_without_edits_continues_exactly_as_its_parent(parent: Path, tmp_path: Path) -> None:
    child = _fork(parent, tmp_path, "2023-02-13T08:05", [])
    mine, theirs = comparable_log(child / "events.jsonl", IGNORED), comparable_log(parent / "events.jsonl", IGNORED)
    origin = mine[0].pop("fork")
    assert theirs[0].pop("fork") is None
    assert mine == theirs, "every event, before the fork and after it, as the parent wrote it"
    assert origin["tick"] == 12 and origin["at"] == "2023-02-13T08:00:00", "the tick boundary at or before TIME"
    assert origin["parent"] == str(parent) and origin["parent_run"] == parent.name and origin["edits"] == []
    assert json.loads((child / FORK_FILE).read_text())["steps"] == [{"tick": 12, "edits": []}]
    stats = CliRunner().invoke(app, ["stats", str(child)])
    assert stats.exit_code == 0 and f"forked from {parent}" in stats.stdout
    shown = CliRunner().invoke(app, ["inspect", str(child), "--kind", "run_started"])
    assert f"forked from {parent.name} at 2023-02-13 08:00 (no edits)" in shown.stdout


def test_an_injected_memory_is_remembered_and_answers_a_new_probe(parent: Path, tmp_path: Path) -> None:
    fact = "Cy saw a red fox by the lake."
    child = _fork(parent, tmp_path, "2023-02-13T09:00", [
        f"agents.Cy.memories+={fact}",
        'probes+={at: end, ask: Cy, question: "Did you see a red fox by the lake?", expect: [fox]}',
    ])
    log = _log(child)
    added = [e for e in log if e["kind"] == "memory_added" and e["memory"]["text"] == fact]
    assert [(e["agents"], e["tick"], e["memory"]["created"]) for e in added] == [(["Cy"], 18, "2023-02-13T09:00:00")]
    assert not any(fact in json.dumps(e) for e in _log(parent)), "the parent never had it"
    (answer,) = [e for e in log if e["kind"] == "probe_answer" and e["probe"] == 1]
    assert answer["agents"] == ["Cy"] and fact in answer["answer"] and fact in answer["memories"]
    (_, fox) = compute_stats(RunFolder(child)).diffusion
    (cy,) = [a for a in fox.answers if a.agent == "Cy"]
    assert cy.verdict == "seeded" and cy.exposure.sim_time.isoformat() == "2023-02-13T09:00:00", \
        "the fork's edit is where Cy got the fact"
    before = [e for e in comparable_log(child / "events.jsonl", IGNORED)[1:] if e["tick"] < 18]
    assert before == [e for e in comparable_log(parent / "events.jsonl", IGNORED)[1:] if e["tick"] < 18]


def test_a_persona_change_reaches_the_agents_next_prompt(parent: Path, tmp_path: Path) -> None:
    child = _fork(parent, tmp_path, "2023-02-13T08:30", ["agents.Bob.persona=Bob now runs the bakery.",
                                                          "agents.Bob.age=52"])
    calls = [e for e in _log(child) if e["kind"] == "model_call" and e["agent"] == "Bob"]
    prompt = lambda call: "\n".join(m["content"] for m in call["messages"])  # noqa: E731
    assert calls and all("Bob now runs the bakery" not in prompt(c) for c in calls if c["tick"] < 15)
    after = [c for c in calls if c["tick"] >= 15]
    assert any("Bob, 52 years old. Bob now runs the bakery." in prompt(c) for c in after)
    assert "Bob now runs the bakery." in (child / "scenario.yaml").read_text(), "the folder records it"


def test_a_fork_of_a_fork_replays_its_parents_edits(parent: Path, tmp_path: Path) -> None:
    first = _fork(parent, tmp_path / "a", "2023-02-13T08:00", ["agents.Ann.memories+=Ann lost her keys."])
    second = _fork(first, tmp_path / "b", "2023-02-13T09:00", [])
    mine, theirs = comparable_log(second / "events.jsonl", IGNORED), comparable_log(first / "events.jsonl", IGNORED)
    assert mine[0]["fork"]["parent_run"] == first.name
    assert mine[1:] == theirs[1:]
    steps = json.loads((second / FORK_FILE).read_text())["steps"]
    assert steps == [{"tick": 12, "edits": ["agents.Ann.memories+=Ann lost her keys."]}, {"tick": 18, "edits": []}]


def test_a_session_added_in_a_fork_starts_at_its_time(tmp_path: Path) -> None:
    scenario = parse_scenario(SMALL_TOWN)
    run = asyncio.run(execute_run(scenario, tmp_path / "p", model="fake", until=scenario.clock.start.replace(hour=10)))
    (tmp_path / "town.yaml").write_text(SMALL_TOWN)
    session = ("sessions+={type: roleplay, at: 2023-02-13T09:20, assistant: {agent: Ann}, "
               "user: {agent: Bob, role: Customer}, task: Plan the picnic menu, max_messages: 4}")
    result = CliRunner().invoke(app, ["run", str(tmp_path / "town.yaml"), "--fork", f"{run.run_dir}@2023-02-13T09:00",
                                      "--set", session, "--out", str(tmp_path / "f")])
    assert result.exit_code == 0, result.output
    (child,) = (tmp_path / "f").iterdir()
    started = [e for e in _log(child) if e["kind"] == "session_started"]
    assert [(e["session_id"], e["sim_time"], sorted(e["agents"])) for e in started] == \
        [("session-1", "2023-02-13T09:20:00", ["Ann", "Bob"])]
    assert not any(e["kind"] == "session_started" for e in _log(run.run_dir))


BAD = [
    (["--fork", "{run}"], "--fork {run}: give RUN@TIME"),
    (["--fork", "{tmp}/nowhere@2023-02-13T08:00"], "not a run folder"),
    (["--fork", "{run}@2023-02-13T05:00"], "--fork: 2023-02-13T05:00 is outside the run"),
    (["--fork", "{run}@2023-02-13T11:00"], "--fork: 2023-02-13T11:00 is after the end of {run}"),
    (["--fork", "{run}@2023-02-13T08:00", "--set", "agents.Zed.persona=x"], "no agent 'Zed' in the run"),
    (["--fork", "{run}@2023-02-13T08:00", "--set", "agents.Ann.home=Cafe"], "agents.NAME.home cannot be set"),
    (["--fork", "{run}@2023-02-13T08:00", "--set", "weather=rain"], "unknown path 'weather'"),
    (["--fork", "{run}@2023-02-13T08:00", "--set", "agents.Ann.persona+=x"], "persona takes = (replace it)"),
    (["--fork", "{run}@2023-02-13T08:00", "--set", "agents.Ann.age=old"], "agents[0].age:"),
    (["--fork", "{run}@2023-02-13T08:00", "--set", "agents.Ann.persona=[1"], "the value is not valid YAML"),
    # a message is printed as it is, not read as rich markup: the bracket and what follows it stay
    (["--fork", "{run}@2023-02-13T08:00", "--set", "agents.Ann.persona=[unclosed"],
     "--set agents.Ann.persona=[unclosed: the value is not valid YAML"),
    (["--fork", "{run}@2023-02-13T08:00", "--set", "probes+={at: end, ask: Zed, question: Hello}"],
     "probes[0].ask: unknown agent 'Zed'"),
    (["--fork", "{run}@2023-02-13T08:30", "--set", "probes+={at: 2023-02-13T08:10, ask: all, question: Hello}"],
     "at: 2023-02-13 08:10:00 is before the fork (2023-02-13 08:30)"),
    (["--fork", "{run}@2023-02-13T08:00", "--until", "2023-02-13T07:30"], "--until: 2023-02-13 07:30 is before"),
    (["--fork", "{run}@2023-02-13T08:00", "--seed", "9"], "--fork runs with its parent's model"),
    (["--set", "agents.Ann.persona=x"], "--set makes an edit in a fork"),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_forks_are_one_line_input_errors_and_write_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    scenario = parse_scenario(SMALL_TOWN)
    run = asyncio.run(execute_run(scenario, tmp_path / "p", model="fake", until=scenario.clock.start.replace(hour=9)))
    (tmp_path / "town.yaml").write_text(SMALL_TOWN)

    def fill(text: str) -> str:
        return text.replace("{run}", str(run.run_dir)).replace("{tmp}", str(tmp_path))

    result = CliRunner().invoke(app, ["run", str(tmp_path / "town.yaml"), *map(fill, args),
                                      "--out", str(tmp_path / "forks")])
    assert result.exit_code == 2, result.output
    assert fill(message) in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "forks").exists(), "nothing written"


def test_forking_with_another_scenario_is_a_located_error(tmp_path: Path) -> None:
    scenario = parse_scenario(SMALL_TOWN)
    run = asyncio.run(execute_run(scenario, tmp_path / "p", model="fake", until=scenario.clock.start.replace(hour=9)))
    (tmp_path / "other.yaml").write_text(SMALL_TOWN.replace("seed: 3", "seed: 4").replace("max_lines: 4", "max_lines: 6"))
    result = CliRunner().invoke(app, ["run", str(tmp_path / "other.yaml"), "--fork", f"{run.run_dir}@2023-02-13T08:30",
                                      "--out", str(tmp_path / "forks")])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{tmp_path / 'other.yaml'}:21: conversation.max_lines: differs from the scenario")
    assert not (tmp_path / "forks").exists()


def test_an_interrupted_fork_resumes_from_its_edits_to_the_same_log(tmp_path: Path) -> None:
    """No regular snapshot in the run: the resume starts from the one written at the fork, with the edits made."""
    text = SMALL_TOWN.replace("conversation:", "snapshot_every: 50\nconversation:")
    scenario = parse_scenario(text)
    run = asyncio.run(execute_run(scenario, tmp_path / "p", model="fake", until=scenario.clock.start.replace(hour=11)))
    planned = plan_fork(RunFolder.open(run.run_dir), "2023-02-13T09:10", ["agents.Bob.memories+=Bob found a map.",
                                                                          "agents.Bob.persona=Bob sails boats."])
    child = asyncio.run(fork_run(planned, tmp_path / "f")).run_dir
    whole = comparable_log(child / "events.jsonl", IGNORED)
    state = json.loads((child / "checkpoints" / "snapshot.json").read_text())
    assert state["next_tick"] == 7 and state["agents"]["Bob"]["memory"]["pending"], "the edited state, memory queued"
    lines = (child / "events.jsonl").read_text().splitlines(keepends=True)
    (child / "events.jsonl").write_text("".join(lines[:state["next_seq"] + 20]))  # a crash after the fork
    result = CliRunner().invoke(app, ["resume", str(child)])
    assert result.exit_code == 0, result.output
    assert comparable_log(child / "events.jsonl", IGNORED) == whole
