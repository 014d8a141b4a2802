"""Exit codes: input errors are 2 with a message; anything else is 1 in one line, or a traceback when debugging."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-c", "from worlds.cli import main; main()"]

#: `simulacra` with an internal bug planted: stats build their report from invalid data.
BROKEN_STATS = """
from worlds import cli
from worlds.stats import RunStats

def broken(reader, on_skip=None):
    return RunStats.model_validate({"ticks": "many"})

cli.compute_stats = broken
cli.main()
"""


def simulacra(*args: str, script: list[str] = CLI, debug: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SIMULACRA_DEBUG"}
    if debug:
        env["SIMULACRA_DEBUG"] = "1"
    return subprocess.run([*script, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "events.jsonl").write_text("")
    return folder


def test_an_internal_validation_error_exits_1_not_2(run_dir: Path):
    result = simulacra("stats", str(run_dir), script=[sys.executable, "-c", BROKEN_STATS])
    assert result.returncode == 1
    assert result.stderr.startswith("error: ValidationError:") and "SIMULACRA_DEBUG=1" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_debug_shows_the_traceback_of_an_internal_error(run_dir: Path):
    result = simulacra("stats", str(run_dir), script=[sys.executable, "-c", BROKEN_STATS], debug=True)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "pydantic_core._pydantic_core.ValidationError" in result.stderr


def test_input_errors_exit_2_without_traceback(small_town: Path, tmp_path: Path):
    results = {
        "unknown model spec": simulacra("run", str(small_town), "--model", "gpt-9", "--out", str(tmp_path)),
        "unknown embeddings spec": simulacra("run", str(small_town), "--embeddings", "w2v", "--out", str(tmp_path)),
        "not a duration": simulacra("run", str(small_town), "--until", "+soon", "--out", str(tmp_path)),
        "not a run folder": simulacra("stats", str(tmp_path)),
    }
    for needle, result in results.items():
        assert result.returncode == 2, (needle, result.stderr)
        assert needle in result.stderr and "Traceback" not in result.stderr



def test_a_bad_embeddings_spec_writes_no_run_folder(small_town, tmp_path):
    from typer.testing import CliRunner

    from worlds.cli import app

    result = CliRunner().invoke(app, ["run", str(small_town), "--model", "fake", "--embeddings", "nope",
                                      "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2 and not (tmp_path / "runs").exists()


def test_output_files_in_missing_folders_are_input_errors(small_town, tmp_path):
    from typer.testing import CliRunner

    from worlds.cli import app

    (tmp_path / "scenario.yaml").write_text(small_town.read_text())
    log = '{"seq":0,"tick":0,"sim_time":"2023-01-01T08:00:00","agents":[],"kind":"tick","positions":{}}\n'
    (tmp_path / "events.jsonl").write_text(log)
    runner = CliRunner()
    for args in (["stats", str(tmp_path), "--graphml", str(tmp_path / "nowhere" / "g.graphml")],
                 ["harvest", str(tmp_path), "-o", str(tmp_path / "nowhere" / "c.jsonl")],
                 ["harvest", str(tmp_path), "-o", str(tmp_path)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "Traceback" not in result.output, (args, result.output)
