"""Resume after kill -9: snapshots every few ticks, the log cut back and carried on, the same log as never stopped."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.gateway import ModelServerDownError, build_backend
from agents.gateway.backends.base import Backend
from agents.gateway.types import ModelReply, ModelRequest
from tests.conftest import comparable_log
from tests.fakes import EchoFake
from tests.test_world_run import PICNIC_TOWN
from worlds.cli import app
from worlds.events import WALL_CLOCK_FIELDS
from worlds.runfolder import RunFolder, RunFolderError
from worlds.runner import execute_run, resume_run
from worlds.scenario import parse_scenario

#: A resumed run answers the ticks after its snapshot from the cache: only that flag may differ.
IGNORED = WALL_CLOCK_FIELDS | {"cached"}
MODEL = "fake?latency=0.01"
TOWNS = {"memory store": PICNIC_TOWN.replace("clock: {start: 2023-02-13T06:00, step: 10m, stop: 2023-02-14T12:00}",
                                             "clock: {start: 2023-02-13T06:00, step: 10m, stop: 2023-02-13T20:00}")
         + "snapshot_every: 6\n",
         # The store flushed every tick, snapshots every 12: at the kill the store holds memories the snapshot
         # never saw, which the resumed run must not count twice.
         "chroma store": PICNIC_TOWN.replace("memory: {store: memory}\n", "memory: {flush_every: 1}\n"
                                                                            "snapshot_every: 12\n").replace(
             "clock: {start: 2023-02-13T06:00, step: 10m, stop: 2023-02-14T12:00}",
             "clock: {start: 2023-02-13T06:00, step: 10m, stop: 2023-02-13T20:00}")}


def _ticks_written(log: Path) -> int:
    try:
        return log.read_bytes().count(b'"kind":"tick"')
    except FileNotFoundError:
        return 0


def _killed_run(scenario_path: Path, out: Path, after_ticks: int) -> Path:
    """`simulacra run` in a child process, killed with SIGKILL once `after_ticks` ticks are in its log."""
    child = subprocess.Popen([sys.executable, "-c", "from worlds.cli import main; main()", "run", str(scenario_path),
                              "--out", str(out), "--model", MODEL], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            folders = [p for p in out.glob("*") if p.is_dir()]
            if folders and _ticks_written(folders[0] / "events.jsonl") >= after_ticks:
                os.kill(child.pid, signal.SIGKILL)
                break
            if child.poll() is not None:
                pytest.fail("the run finished before it could be killed")
            time.sleep(0.005)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    (folder,) = [p for p in out.glob("*") if p.is_dir()]
    return folder


@pytest.mark.parametrize("town", sorted(TOWNS))
@pytest.mark.parametrize("trial", range(2))
def test_a_run_killed_at_a_random_tick_resumes_to_the_uninterrupted_log(tmp_path: Path, town: str, trial: int) -> None:
    text = TOWNS[town]
    scenario_path = tmp_path / "town.yaml"
    scenario_path.write_text(text)
    reference = asyncio.run(execute_run(parse_scenario(text), tmp_path / "whole", model=MODEL)).run_dir
    ticks = parse_scenario(text).clock.ticks_until(parse_scenario(text).clock.stop)
    kill_at = random.Random(f"{town}-{trial}").randrange(14, ticks - 10)  # after a first snapshot
    folder = _killed_run(scenario_path, tmp_path / "killed", kill_at)
    killed_log = (folder / "events.jsonl").read_bytes()
    assert b'"kind":"run_ended"' not in killed_log, "killed, not stopped"
    result = CliRunner().invoke(app, ["resume", str(folder)])
    assert result.exit_code == 0, result.output
    assert "resumed from tick" in result.stderr
    assert comparable_log(folder / "events.jsonl", IGNORED) == comparable_log(reference / "events.jsonl", IGNORED)


def test_a_torn_last_line_is_repaired_and_reported(tmp_path: Path) -> None:
    text = TOWNS["memory store"].replace("snapshot_every: 6", "snapshot_every: 50")  # the last snapshot: well before the end
    summary = asyncio.run(execute_run(parse_scenario(text), tmp_path, model=MODEL))
    log = summary.run_dir / "events.jsonl"
    whole = comparable_log(log, IGNORED)
    lines = log.read_text().splitlines(keepends=True)
    state = json.loads((summary.run_dir / "checkpoints" / "snapshot.json").read_text())
    cut = state["next_seq"] + 7
    log.write_text("".join(lines[:cut]) + lines[cut][: len(lines[cut]) // 2])  # a crash mid-write
    result = CliRunner().invoke(app, ["resume", str(summary.run_dir)])
    assert result.exit_code == 0, result.output
    assert "its torn last line was repaired" in result.stderr and "7 events after the snapshot" in result.stderr
    assert comparable_log(log, IGNORED) == whole


def test_resume_refuses_a_finished_run_and_a_folder_without_a_snapshot(tmp_path: Path) -> None:
    summary = asyncio.run(execute_run(parse_scenario(TOWNS["memory store"]), tmp_path / "a", model=MODEL))
    done = CliRunner().invoke(app, ["resume", str(summary.run_dir)])
    assert done.exit_code == 2 and "this run completed" in done.stderr
    (summary.run_dir / "checkpoints" / "snapshot.json").unlink()
    lines = (summary.run_dir / "events.jsonl").read_text().splitlines(keepends=True)
    (summary.run_dir / "events.jsonl").write_text("".join(lines[:-1]))  # no run_ended: interrupted
    none = CliRunner().invoke(app, ["resume", str(summary.run_dir)])
    assert none.exit_code == 2 and "no snapshot to resume from" in none.stderr


def test_resume_refuses_another_model_and_leaves_the_log_alone(tmp_path: Path) -> None:
    text = TOWNS["memory store"].replace("snapshot_every: 6", "snapshot_every: 50")
    summary = asyncio.run(execute_run(parse_scenario(text), tmp_path, model=MODEL))
    log = summary.run_dir / "events.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:-40]))  # interrupted: no run_ended, a snapshot behind
    before = log.read_bytes()
    with pytest.raises(RunFolderError, match="the run used model 'fake', not 'echo-fake'"):
        asyncio.run(resume_run(RunFolder(summary.run_dir), model=EchoFake("Cafe")))
    assert log.read_bytes() == before, "a resume that cannot start leaves the log as it was"


def test_a_run_stopped_early_with_until_resumes_to_that_stop(tmp_path: Path) -> None:
    text = TOWNS["memory store"].replace("snapshot_every: 6", "snapshot_every: 5")  # the last one at tick 20 of 24
    scenario = parse_scenario(text)
    until = scenario.clock.start.replace(hour=10)
    whole = asyncio.run(execute_run(scenario, tmp_path / "whole", model=MODEL, until=until)).run_dir
    summary = asyncio.run(execute_run(scenario, tmp_path / "cut", model=MODEL, until=until))
    log = summary.run_dir / "events.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    seen = json.loads((summary.run_dir / "checkpoints" / "snapshot.json").read_text())["next_seq"]
    log.write_text("".join(lines[:seen + 5]))  # a crash a few events into tick 20
    result = CliRunner().invoke(app, ["resume", str(summary.run_dir)])
    assert result.exit_code == 0, result.output
    assert "of 24 ticks" in result.stdout
    assert comparable_log(log, IGNORED) == comparable_log(whole / "events.jsonl", IGNORED)


class DyingServer(Backend):
    """The fake model behind a server that stops answering after `answers` calls: connections refused from then on."""

    def __init__(self, answers: int) -> None:
        self.inner = build_backend("fake")
        self.name, self.max_in_flight, self.timeout_s = self.inner.name, 8, 5.0
        self.left = answers

    async def generate(self, request: ModelRequest) -> ModelReply:
        self.left -= 1
        if self.left < 0:
            raise ConnectionRefusedError(111, "Connection refused")
        return await self.inner.generate(request)


def test_a_model_server_that_dies_stops_the_run_and_resume_finishes_it(tmp_path: Path) -> None:
    """No fallbacks pile up: the run stops in the tick the server died in, and resumes to the uninterrupted log."""
    text = TOWNS["memory store"]
    reference = asyncio.run(execute_run(parse_scenario(text), tmp_path / "whole", model=MODEL)).run_dir
    calls = [json.loads(line)["tick"] for line in (reference / "events.jsonl").read_text().splitlines()
             if '"kind":"model_call"' in line]
    answers = sum(tick < 20 for tick in calls)  # it dies at the first call from tick 20 on, after three snapshots
    dies_in = min(tick for tick in calls if tick >= 20)
    with pytest.raises(ModelServerDownError, match="the model server stopped answering") as stopped:
        asyncio.run(execute_run(parse_scenario(text), tmp_path / "cut", model=DyingServer(answers=answers)))
    folder = Path(stopped.value.run_dir)
    records = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    assert records[-1]["kind"] == "run_ended" and records[-1]["status"] == "failed"
    assert records[-1]["ticks"] == dies_in and "stopped answering" in records[-1]["detail"]
    assert not any(r["kind"] == "model_fallback" for r in records), "a dead server is not papered over"
    result = CliRunner().invoke(app, ["resume", str(folder)])  # the server answers again
    assert result.exit_code == 0, result.output
    assert comparable_log(folder / "events.jsonl", IGNORED) == comparable_log(reference / "events.jsonl", IGNORED)


def test_a_server_nobody_answers_at_is_a_clear_stop_naming_the_run_to_resume(tmp_path: Path) -> None:
    """A real refused connection (nothing listens on the port), through langchain-openai and httpx."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    scenario_path = tmp_path / "town.yaml"
    scenario_path.write_text(TOWNS["memory store"])
    result = CliRunner().invoke(app, ["run", str(scenario_path), "--out", str(tmp_path / "runs"),
                                      "--model", f"openai-compatible:http://127.0.0.1:{port}/v1?model=m"])
    assert result.exit_code == 1, result.output
    assert "the model server stopped answering" in result.stderr and "simulacra resume" in result.stderr
    (folder,) = (tmp_path / "runs").iterdir()
    assert f"simulacra resume {folder}" in result.stderr.replace("\n", "")
