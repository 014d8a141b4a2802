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
from worlds.scenario import parse_scenario
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
