"""A corrupted line in the middle of a log: `stats`, `diff` and `run --fork` pass it over, named by file and line."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import SMALL_TOWN
from worlds.cli import app
from worlds.fork import plan_fork
from worlds.runfolder import RunFolder
from worlds.runner import execute_run
from worlds.scenario import parse_scenario


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scenario = parse_scenario(SMALL_TOWN)
    out = tmp_path_factory.mktemp("whole")
    return asyncio.run(execute_run(scenario, out, model="fake", until=scenario.clock.start.replace(hour=9))).run_dir


def _broken(whole: Path, to: Path) -> tuple[Path, int, str]:
    """A copy of the run whose log has `{not json` in place of a record halfway through: the copy, the line
    number, and the kind of the record lost."""
    shutil.copytree(whole, to)
    lines = (to / "events.jsonl").read_text().splitlines(keepends=True)
    at = next(i for i in range(len(lines) // 2, len(lines)) if json.loads(lines[i])["kind"] not in ("tick", "run_ended"))
    kind = json.loads(lines[at])["kind"]
    lines[at] = "{not json\n"
    (to / "events.jsonl").write_text("".join(lines))
    return to, at + 1, kind


def _warning(run_dir: Path, number: int) -> str:
    return f"{run_dir / 'events.jsonl'}:{number}: skipped: not a JSON record"


def test_stats_counts_everything_but_the_corrupted_line(whole: Path, tmp_path: Path) -> None:
    broken, number, kind = _broken(whole, tmp_path / "broken")
    result = CliRunner().invoke(app, ["stats", str(broken), "--json"])
    assert result.exit_code == 0, result.output
    assert result.stderr.count(_warning(broken, number)) == 1, "told once, though the log is read twice"
    expected = json.loads(CliRunner().invoke(app, ["stats", str(whole), "--json"]).stdout)
    got = json.loads(result.stdout)
    expected["events"][kind] -= 1
    assert got["events"] == {k: v for k, v in expected["events"].items() if v} and got["ticks"] == expected["ticks"]


def test_diff_passes_over_the_corrupted_line(whole: Path, tmp_path: Path) -> None:
    broken, number, _ = _broken(whole, tmp_path / "broken")
    result = CliRunner().invoke(app, ["diff", str(whole), str(broken), "--json"])
    assert result.exit_code == 0, result.output
    assert result.stderr.count(_warning(broken, number)) == 1
    assert json.loads(result.stdout)["run_b"] == str(broken)


def test_fork_planning_passes_over_the_corrupted_line(whole: Path, tmp_path: Path) -> None:
    broken, number, _ = _broken(whole, tmp_path / "broken")
    told: list[tuple[int, str]] = []
    planned = plan_fork(RunFolder.open(broken), "2023-02-13T08:30", [], on_skip=lambda n, why: told.append((n, why)))
    intact = plan_fork(RunFolder.open(whole), "2023-02-13T08:30", [])
    assert (planned.origin.tick, planned.stop) == (intact.origin.tick, intact.stop)
    assert [n for n, _ in told] == [number] and told[0][1].startswith("not a JSON record")


def test_run_fork_warns_of_the_corrupted_line_and_forks(whole: Path, tmp_path: Path) -> None:
    broken, number, _ = _broken(whole, tmp_path / "broken")
    result = CliRunner().invoke(app, ["run", str(broken / "scenario.yaml"), "--fork", f"{broken}@2023-02-13T08:30",
                                      "--out", str(tmp_path / "forks")])
    assert result.exit_code == 0, result.output
    assert result.stderr.count(_warning(broken, number)) == 1
    assert len(list((tmp_path / "forks").iterdir())) == 1
