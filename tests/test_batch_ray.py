"""Batches as Ray tasks: each role pair (each slice of input lines) runs in a worker on its own gateway, the
driver alone writes the log and cache, a failing unit is reported while the rest finish, and a re-run retries it."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.test_loop_batch import _batch_files
from tests.test_society import SOCIETY
from worlds.cli import app
from worlds.cluster import RaySpec
from worlds.events import WALL_CLOCK_FIELDS
from worlds.scenario import parse_any
from worlds.society import batch as batch_module
from worlds.society.batch import run_batch
from worlds.society.units import BatchUnit, UnitOutcome, run_remote

#: Besides the machine's fields, where a session's calls were answered differs: a worker starts on an empty cache.
IGNORED = WALL_CLOCK_FIELDS | {"seq"}


def _log(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


def _by_session(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each unit's block (a session, a pair's tasks), by name, without the machine's fields: what must not depend
    on where the unit ran. Blocks are told apart by the `batch_unit` record that closes them."""
    blocks: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] = []
    for record in records:
        if record["kind"] == "batch_unit":
            blocks[record["unit"]] = current
            current = []
        elif record["kind"] not in ("run_started", "run_ended"):
            current.append({k: v for k, v in record.items() if k not in IGNORED})
    return blocks


def _run(path: Path, out: Path, *options: str) -> Any:
    return CliRunner().invoke(app, ["run", str(path), "--out", str(out), *options])


def test_a_role_play_batch_on_ray_writes_every_block_as_the_in_process_batch_does(tmp_path: Path) -> None:
    path = tmp_path / "society.yaml"
    path.write_text(SOCIETY)
    assert _run(path, tmp_path / "here").exit_code == 0
    result = _run(path, tmp_path / "ray", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "as Ray tasks on 2 cores" in result.stderr
    here, there = _by_session(_log(tmp_path / "here" / "society")), _by_session(_log(tmp_path / "ray" / "society"))
    assert sorted(there) == sorted(here) and len(there) == 1 + 3 + 5, "the start, 3 pairs' tasks, 2 + 1 + 2 sessions"
    for unit, events in here.items():
        assert there[unit] == events, unit
    keys = {r["request_key"] for r in _log(tmp_path / "ray" / "society") if r["kind"] == "model_call"}
    with sqlite3.connect(tmp_path / "ray" / "society" / "cache.sqlite") as db:
        cached = {key for (key,) in db.execute("SELECT key FROM replies")}
    assert keys <= cached, "the workers' answers reach the batch's own cache"
    again = _run(path, tmp_path / "ray", "--workers", "2")
    assert again.exit_code == 0 and re.search(r"already done \(skipped\)\s*│\s*5\s*│", again.stdout)
    assert re.search(r"finished now\s*│\s*0\s*│", again.stdout), "nothing ran twice"


def test_a_failing_unit_is_reported_the_others_finish_and_the_next_run_completes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails_for_one_pair(unit: BatchUnit, model: str) -> UnitOutcome:
        outcome = run_remote(unit, model)
        if unit.name == "pair:a002-u002":  # keeps its tasks and first session, then "fails"
            outcome.blocks, outcome.error = outcome.blocks[:2], "RuntimeError: the worker's disk is full"
        return outcome

    monkeypatch.setattr(batch_module, "run_remote", fails_for_one_pair)
    scenario = parse_any(SOCIETY)
    summary = asyncio.run(run_batch(scenario, tmp_path, cluster=RaySpec(workers=2)))
    records = _log(tmp_path / "society")
    assert summary.units_failed == 1 and summary.finished == 4, "the other pairs' three sessions and one of its two"
    (error,) = [r for r in records if r["kind"] == "error"]
    assert "pair:a002-u002" in error["message"] and error["detail"] == "RuntimeError: the worker's disk is full"
    assert records[-1]["status"] == "completed"
    monkeypatch.setattr(batch_module, "run_remote", run_remote)
    again = asyncio.run(run_batch(scenario, tmp_path, cluster=RaySpec(workers=2)))
    assert (again.skipped, again.finished, again.units_failed) == (4, 1, 0)
    ended = [r["session_id"] for r in _log(tmp_path / "society") if r["kind"] == "session_ended"]
    assert len(ended) == len(set(ended)) == 5


def test_a_loop_batch_on_ray_runs_a_slice_of_lines_per_task(tmp_path: Path) -> None:
    path = _batch_files(tmp_path)
    assert _run(path, tmp_path / "here").exit_code == 0
    result = _run(path, tmp_path / "ray", "--workers", "2")
    assert result.exit_code == 0, result.output
    here, there = _by_session(_log(tmp_path / "here" / "lb")), _by_session(_log(tmp_path / "ray" / "lb"))
    assert sorted(there) == sorted(here) == sorted(["start", *(f"q{i}" for i in range(1, 7))])
    assert all(there[unit] == events for unit, events in here.items())


def test_ray_options_are_refused_where_they_cannot_apply(tmp_path: Path) -> None:
    si = tmp_path / "si.yaml"
    si.write_text("name: si\nseed: 1\nmodels: {default: fake}\nloops: {type: self_instruct, target: 4}\n")
    result = _run(si, tmp_path / "out", "--workers", "2")
    assert result.exit_code == 2 and "si.yaml:4: loops.type: Self-Instruct grows one pool" in result.stderr
    assert not (tmp_path / "out").exists(), "nothing written"
    society = tmp_path / "society.yaml"
    society.write_text(SOCIETY)
    both = _run(society, tmp_path / "out", "--workers", "2", "--ray", "auto")
    assert both.exit_code == 2 and "--workers sizes Ray on this machine" in both.stderr
    town = Path(__file__).resolve().parents[1] / "scenarios" / "valentines.yaml"
    world = _run(town, tmp_path / "out", "--workers", "2")
    assert world.exit_code == 2 and "for world runs use simulacra sweep" in world.stderr
