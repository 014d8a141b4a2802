"""`simulacra diff`: identical runs say so, a fork parts from its parent at or after the fork, bad input exits 2."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import SMALL_TOWN
from worlds.cli import app
from worlds.fork import fork_run, plan_fork
from worlds.runfolder import RunFolder
from worlds.runner import execute_run
from worlds.scenario import SocietyScenario, parse_any, parse_scenario
from worlds.society.batch import run_batch
from worlds.timeline.diff import comparable

TOWN = SMALL_TOWN + 'probes:\n  - {at: end, ask: all, question: "Is anyone hosting a picnic?", expect: [picnic]}\n'


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two runs of the same scenario, a fork of the first without edits, and one with a memory and a persona."""
    scenario = parse_scenario(TOWN)
    out = tmp_path_factory.mktemp("diff")
    until = scenario.clock.start.replace(hour=11)
    a, b = (asyncio.run(execute_run(scenario, out / name, model="fake", until=until)).run_dir for name in "ab")
    plain = asyncio.run(fork_run(plan_fork(RunFolder.open(a), "2023-02-13T09:00", []), out / "plain")).run_dir
    edited = asyncio.run(fork_run(plan_fork(RunFolder.open(a), "2023-02-13T09:30", [
        "agents.Cy.memories+=Ann is hosting a picnic on Sunday.", "agents.Cy.persona=Cy sells flowers.",
    ]), out / "edited")).run_dir
    return {"a": a, "b": b, "plain": plain, "edited": edited}


def _json(*args: Path) -> dict:
    result = CliRunner().invoke(app, ["diff", *map(str, args), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("other", ["b", "plain"])
def test_runs_that_differ_only_in_noise_have_no_difference(runs: dict[str, Path], other: str) -> None:
    """Another run of the scenario (other ids and wall times), or a fork without edits (cached calls)."""
    report = _json(runs["a"], runs[other])
    assert report["identical"] and report["partings"] == []
    assert [p["differs"] for p in report["probes"]] == [False]
    text = CliRunner().invoke(app, ["diff", str(runs["a"]), str(runs[other])])
    assert text.exit_code == 0 and "no difference" in text.stdout


def test_a_fork_with_edits_parts_at_the_fork_for_the_edited_agent(runs: dict[str, Path]) -> None:
    report = _json(runs["a"], runs["edited"])
    assert not report["identical"]
    parted = {p["agent"]: p for p in report["partings"]}
    fork_time = datetime.fromisoformat("2023-02-13T09:30")
    assert "Cy" in parted and datetime.fromisoformat(parted["Cy"]["sim_time"]) >= fork_time
    assert all(datetime.fromisoformat(p["sim_time"]) >= fork_time for p in report["partings"]), \
        "nothing parts before the fork"
    cy = parted["Cy"]
    assert cy["a"]["text"] and cy["b"]["text"], "each side in words"
    first_a = next(e for e in _events(runs["a"]) if e["seq"] == cy["a"]["seq"])
    first_b = next(e for e in _events(runs["edited"]) if e["seq"] == cy["b"]["seq"])
    assert comparable(first_a) != comparable(first_b)
    (probe,) = report["probes"]
    cy_answers = next(p for p in probe["answers"] if p["agent"] == "Cy")
    assert cy_answers["a"] != cy_answers["b"] and probe["differs"]
    table = CliRunner().invoke(app, ["diff", str(runs["a"]), str(runs["edited"])])
    assert table.exit_code == 0 and "Where the timelines part" in table.stdout and "same throughout" in table.stdout
    assert "Probe 0" in table.stdout


def test_noise_is_set_aside_but_a_real_change_is_not() -> None:
    event = {"seq": 4, "kind": "conversation_started", "conversation_id": "c00012-34", "wall_time": "x",
             "memory": {"source_event": 3, "text": "hi"}, "cached": True, "place": "Cafe"}
    moved = {**event, "seq": 9, "conversation_id": "c00012-40", "memory": {"source_event": 8, "text": "hi"},
             "cached": False, "wall_time": "y"}
    assert comparable(event) == comparable(moved)
    assert comparable(event) != comparable({**moved, "place": "Park"})
    assert comparable(event) != comparable({**moved, "conversation_id": "c00013-34"}), "another tick is a change"


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def test_a_missing_run_is_an_input_error(runs: dict[str, Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["diff", str(runs["a"]), str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "not a run folder" in result.stderr


def test_a_probe_only_one_run_asked_shows_a_dash_not_a_zero(runs: dict[str, Path], tmp_path: Path) -> None:
    added = 'probes+={at: end, ask: all, question: "Who fixes bicycles?", expect: [Bob]}'
    forked = asyncio.run(fork_run(plan_fork(RunFolder.open(runs["a"]), "2023-02-13T10:00", [added]),
                                  tmp_path)).run_dir
    report = _json(runs["a"], forked)
    new = next(p for p in report["probes"] if p["question"] == "Who fixes bicycles?")
    assert (new["knew_a"], new["met_a"]) == (None, None) and new["knew_b"] is not None and new["met_b"] is not None
    assert new["differs"] and all(pair["a"] is None for pair in new["answers"])
    table = CliRunner().invoke(app, ["diff", str(runs["a"]), str(forked)])
    assert table.exit_code == 0, table.output
    assert f"knew: A –, B {new['knew_b']}; had met the fact by the end: A –, B {new['met_b']}" in table.stdout
    assert "None" not in table.stdout


def test_runs_of_other_scenarios_and_questions_are_compared_with_warnings(runs: dict[str, Path],
                                                                          tmp_path: Path) -> None:
    other = parse_scenario(TOWN.replace("name: small-town", "name: other-town")
                           .replace("Is anyone hosting a picnic?", "Is anyone baking bread?"))
    run = asyncio.run(execute_run(other, tmp_path, model="fake", until=other.clock.start.replace(hour=9))).run_dir
    result = CliRunner().invoke(app, ["diff", str(runs["a"]), str(run), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(p["probe"], p["question"]) for p in report["probes"]] == [
        (0, "Is anyone baking bread?"), (0, "Is anyone hosting a picnic?")], "a number asking another question"
    assert [p["knew_a"] is None for p in report["probes"]] == [True, False]
    assert [p["knew_b"] is None for p in report["probes"]] == [False, True]
    assert len(report["warnings"]) == 2
    assert "different scenarios ('small-town' and 'other-town')" in report["warnings"][0]
    assert "probe 0 asks 'Is anyone hosting a picnic?' in A but 'Is anyone baking bread?' in B" in report["warnings"][1]
    assert all(warning in result.stderr.replace("\n", " ") for warning in report["warnings"])


def test_a_batch_folder_is_refused(runs: dict[str, Path], tmp_path: Path) -> None:
    society = parse_any("name: tiny\nseed: 1\nmodels: {default: fake, embeddings: fake}\nsociety:\n"
                        "  assistant_roles: {names: [Chef]}\n  user_roles: {names: [Student]}\n  tasks_per_pair: 1\n",
                        str(tmp_path / "tiny.yaml"))
    assert isinstance(society, SocietyScenario)
    folder = asyncio.run(run_batch(society, tmp_path / "out")).folder
    result = CliRunner().invoke(app, ["diff", str(runs["a"]), str(folder)])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"error: {folder}: a batch folder") and len(result.stderr.splitlines()) == 1
