"""Batches as Ray tasks: each role pair (each slice of input lines) runs in a worker on its own gateway, the
driver alone writes the log and cache, a failing unit is reported while the rest finish, and a re-run retries it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.test_loop_batch import _batch_files
from tests.test_society import SOCIETY, _log
from worlds.cli import app
from worlds.cluster import RaySpec
from worlds.events import WALL_CLOCK_FIELDS
from worlds.scenario import parse_any
from worlds.society import batch as batch_module
from worlds.society.batch import run_batch
from worlds.society.units import BatchUnit, UnitOutcome, run_remote

#: Besides the machine's fields, a record's place in the log: blocks are written in the order they finish.
IGNORED = WALL_CLOCK_FIELDS | {"seq"}


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


def test_a_budget_on_ray_stops_handing_out_pairs_and_a_higher_limit_finishes(tmp_path: Path) -> None:
    path = tmp_path / "society.yaml"
    path.write_text(SOCIETY)
    assert _run(path, tmp_path / "here").exit_code == 0
    total = sum(1 for r in _log(tmp_path / "here" / "society") if r["kind"] == "model_call")
    exact = _run(path, tmp_path / "exact", "--workers", "2", "--max-calls", str(total))
    assert exact.exit_code == 0 and _log(tmp_path / "exact" / "society")[-1]["status"] == "completed", \
        "a budget spent by the last unit stops nothing"
    (tmp_path / "one.yaml").write_text(SOCIETY.replace(
        "assistant_roles: {names: [Poet, Chef]}", "assistant_roles: {names: [Poet, Chef, Baker, Judge, Nurse]}"))
    # 9 pairs, at most 4 handed out at once on 2 cores: the first pair's calls spend the limit of 1.
    stopped = _run(tmp_path / "one.yaml", tmp_path / "ray", "--workers", "2", "--max-calls", "1")
    folder = tmp_path / "ray" / "society"
    assert stopped.exit_code == 0 and "stopped by its budget" in stopped.stdout
    assert _log(folder)[-1]["status"] == "budget"
    started = {r["unit"] for r in _log(folder) if r["kind"] == "batch_unit" and r["unit"].startswith("tasks:")}
    assert 1 <= len(started) <= 4
    assert _run(tmp_path / "one.yaml", tmp_path / "ray", "--workers", "2", "--max-calls", "0").exit_code == 0
    assert _log(folder)[-1]["status"] == "completed"
    tasks = [r for r in _log(folder) if r["kind"] == "tasks_brainstormed"]
    assert len(tasks) == 9 and len({(t["assistant_role"], t["user_role"]) for t in tasks}) == 9


def test_ctrl_c_stops_a_batch_on_ray_with_what_finished_written(tmp_path: Path) -> None:
    text = SOCIETY.replace("assistant_roles: {names: [Poet, Chef]}",
                           "assistant_roles: {names: [Poet, Chef, Baker, Judge, Nurse, Tailor]}")

    def interrupt(done: int, planned: int) -> None:
        if done >= 1:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(run_batch(parse_any(text), tmp_path, cluster=RaySpec(workers=1), on_progress=interrupt))
    records = _log(tmp_path / "society")
    assert records[-1]["kind"] == "run_ended" and records[-1]["status"] == "interrupted"
    assert 1 <= sum(1 for r in records if r["kind"] == "session_ended") < 10
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "the handler is put back"


def test_the_cli_counts_a_failed_unit_and_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fails(unit: BatchUnit, model: str) -> UnitOutcome:
        return UnitOutcome(error="RuntimeError: nothing works") if unit.name == "pair:a001-u002" \
            else run_remote(unit, model)

    monkeypatch.setattr(batch_module, "run_remote", fails)
    path = tmp_path / "society.yaml"
    path.write_text(SOCIETY)
    result = _run(path, tmp_path, "--workers", "2")
    assert result.exit_code == 1 and "1 unit(s) failed" in result.stderr
    assert re.search(r"units failed \(tried again next time\)\s*│\s*1\s*│", result.stdout)
    assert _log(tmp_path / "society")[-1]["detail"].endswith("; 1 unit(s) failed")
