"""`simulacra sweep`: a grid of scenarios × seeds × overrides as real Ray tasks, isolated, resumable, checked first."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from tests.conftest import comparable_log
from tests.test_resume import TOWNS
from worlds.cli import app
from worlds.events import WALL_CLOCK_FIELDS
from worlds.runner import execute_run
from worlds.scenario import parse_scenario
from worlds.sweep.plan import apply_overrides, plan_sweep

TOWN = TOWNS["memory store"].replace("stop: 2023-02-13T20:00", "stop: 2023-02-13T12:00")
GRID = "name: grid\nscenarios: [town.yaml]\nseeds: [1, 2]\noverrides:\n  conversation.max_lines: [4, 6]\n"
#: Besides the machine's fields, a unit's log differs from a direct run's only in its folder's name.
IGNORED = WALL_CLOCK_FIELDS | {"run_id"}


def _sweep(tmp_path: Path, text: str, *options: str) -> Result:
    (tmp_path / "town.yaml").write_text(TOWN)
    (tmp_path / "sweep.yaml").write_text(text)
    return CliRunner().invoke(app, ["sweep", str(tmp_path / "sweep.yaml"), "--out", str(tmp_path / "out"), *options])


def _results(tmp_path: Path, name: str = "grid") -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "out" / name / "sweep.jsonl").read_text().splitlines()]


def test_every_unit_runs_as_a_ray_task_and_writes_the_log_a_direct_run_would(tmp_path: Path) -> None:
    result = _sweep(tmp_path, GRID, "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "4 units (1 scenarios × 2 seeds × 2 override combinations)" in result.stderr
    results = {r["id"].rsplit("-", 1)[0]: r for r in _results(tmp_path)}
    assert sorted(results) == ["town-s1-max_lines=4", "town-s1-max_lines=6", "town-s2-max_lines=4",
                               "town-s2-max_lines=6"]
    assert {r["status"] for r in results.values()} == {"completed"}
    unit = results["town-s2-max_lines=6"]
    recorded = parse_scenario((Path(unit["run_dir"]) / "scenario.yaml").read_text())
    assert recorded.seed == 2 and recorded.conversation.max_lines == 6
    direct = apply_overrides(parse_scenario(TOWN), {"conversation.max_lines": 6}, "town").model_copy(update={"seed": 2})
    alone = asyncio.run(execute_run(direct, tmp_path / "alone", model="fake")).run_dir
    assert comparable_log(Path(unit["run_dir"]) / "events.jsonl", IGNORED) == \
        comparable_log(alone / "events.jsonl", IGNORED)
    assert results["town-s1-max_lines=6"]["tokens"] != unit["tokens"], "the seed reaches the run"
    again = _sweep(tmp_path, GRID)
    assert again.exit_code == 0 and "4 of 4 units were already done" in again.stdout
    assert len(_results(tmp_path)) == 4, "nothing ran twice"


def test_a_failing_unit_is_reported_the_others_finish_and_a_rerun_retries_only_it(tmp_path: Path) -> None:
    (tmp_path / "town.yaml").write_text(TOWN)
    (tmp_path / "sweep.yaml").write_text(GRID)
    _, units = plan_sweep(tmp_path / "sweep.yaml")
    blocked = units[1].id
    (tmp_path / "out" / "grid").mkdir(parents=True)
    (tmp_path / "out" / "grid" / blocked).write_text("in the way")  # the unit cannot make its folder
    result = _sweep(tmp_path, GRID, "--workers", "2", "--json")
    assert result.exit_code == 1 and "1 unit(s) failed" in result.stderr
    summary = json.loads(result.stdout)
    statuses = {r["id"]: r["status"] for r in summary["results"]}
    assert statuses.pop(blocked) == "failed" and set(statuses.values()) == {"completed"}
    failed = next(r for r in summary["results"] if r["status"] == "failed")
    assert failed["error"].startswith("FileExistsError")
    (tmp_path / "out" / "grid" / blocked).unlink()
    again = _sweep(tmp_path, GRID, "--json")
    assert again.exit_code == 0, again.output
    rerun = json.loads(again.stdout)
    assert rerun["skipped"] == 3 and [r["id"] for r in rerun["results"]] == [blocked]


def test_unit_ids_are_unique_and_follow_what_the_unit_runs(tmp_path: Path) -> None:
    long = ["Ann bakes bread and sells it.", "Ann bakes bread and sells pies."]  # the same readable label
    (tmp_path / "town.yaml").write_text(TOWN)
    (tmp_path / "sweep.yaml").write_text(f"name: g\nscenarios: [town.yaml]\nseeds: 2\n"
                                         f"overrides:\n  agents.0.persona: {json.dumps(long)}\n")
    _, units = plan_sweep(tmp_path / "sweep.yaml")
    assert len({u.id for u in units}) == 4
    (tmp_path / "sweep.yaml").write_text(f"name: g\nscenarios: [town.yaml]\nseeds: 2\n"
                                         f"overrides:\n  agents.0.persona: {json.dumps(long + ['Ann naps.'])}\n")
    _, more = plan_sweep(tmp_path / "sweep.yaml")
    assert {u.id for u in units} < {u.id for u in more}, "adding a value keeps the other units' ids"


def _ray_workers_running(name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if name in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_unit_whose_worker_is_killed_is_run_again_from_a_clean_folder(tmp_path: Path) -> None:
    slow = "name: slow\nscenarios: [town.yaml]\nseeds: [3]\nmodel: fake?latency=0.05\nretries: 1\n"
    killed: list[int] = []

    def kill_first_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            unit_dirs = list((tmp_path / "out" / "slow").glob("town-s3-*"))
            if unit_dirs and any(unit_dirs[0].glob("*/events.jsonl")):
                for pid in _ray_workers_running("ray::run_unit"):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_first_worker)
    killer.start()
    result = _sweep(tmp_path, slow, "--workers", "1")
    killer.join()
    assert killed, "the worker was never seen running"
    assert result.exit_code == 0, result.output
    (record,) = _results(tmp_path, "slow")
    assert record["status"] == "completed"
    (unit_dir,) = (tmp_path / "out" / "slow").glob("town-s3-*")
    assert len(list(unit_dir.iterdir())) == 1, "the dead attempt's folder is gone"


@pytest.mark.parametrize(("text", "message"), [
    (GRID.replace("conversation.max_lines", "conversation.max_line"),
     "sweep.yaml:5: overrides.conversation.max_line: picnic-town has no field 'conversation.max_line'"),
    (GRID.replace("[4, 6]", "[4, 0]"), "overrides conversation.max_lines=0: conversation.max_lines:"),
    (GRID.replace("[town.yaml]", "[town.yaml, nowhere.yaml]"), "sweep.yaml:2: scenarios[1]: no scenario file"),
    (GRID + "worker: 3\n", "sweep.yaml:6: worker: Extra inputs are not permitted"),
    (GRID + "until: soon\n", "sweep.yaml:6: until: 'soon' is neither an ISO time"),
    (GRID.replace("seeds: [1, 2]", "seeds: [1, 1]"), "sweep.yaml:3: seeds: Value error, give a non-empty list"),
    (GRID.replace("seeds: [1, 2]", "seeds: 0"), "sweep.yaml:3: seeds: Value error, give at least one seed"),
    (GRID.replace("[4, 6]", "[]"), "sweep.yaml:5: overrides.conversation.max_lines: List should have at least 1"),
])
def test_a_bad_sweep_file_is_exit_2_naming_the_field(tmp_path: Path, text: str, message: str) -> None:
    result = _sweep(tmp_path, text)
    assert result.exit_code == 2, result.output
    assert message in result.stderr.replace("\n", " ")
    assert not (tmp_path / "out").exists(), "nothing is written before the sweep is checked"
