"""The log format version in `run_started`: every reader refuses a newer one in one line; a log without it is 1."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import SMALL_TOWN
from worlds.cli import app
from worlds.eventlog import LogFormatError, check_log_format
from worlds.events import LOG_FORMAT
from worlds.runner import execute_run
from worlds.scenario import parse_scenario


def _run(tmp_path: Path) -> Path:
    scenario = parse_scenario(SMALL_TOWN.replace("conversation:", "snapshot_every: 2\nconversation:"))
    until = scenario.clock.start.replace(hour=9)
    return asyncio.run(execute_run(scenario, tmp_path, model="fake", until=until)).run_dir


def _with_format(run_dir: Path, version: int | str | None) -> None:
    """Rewrite the first record's `log_format` (None: drop it, as an older simulacra wrote it)."""
    log = run_dir / "events.jsonl"
    first, *rest = log.read_text().splitlines(keepends=True)
    started = json.loads(first)
    assert started["kind"] == "run_started" and started["log_format"] == LOG_FORMAT
    if version is None:
        del started["log_format"]
    else:
        started["log_format"] = version
    log.write_text(json.dumps(started) + "\n" + "".join(rest))


@pytest.mark.parametrize("command", [["inspect"], ["stats"], ["resume"], ["harvest", "--strict", "-o", "{tmp}/c.jsonl"],
                                     ["interview", "Ann", "Hi?"], ["diff", "{run}"]])
def test_every_reader_refuses_a_log_from_a_newer_simulacra(tmp_path: Path, command: list[str]) -> None:
    run_dir = _run(tmp_path)
    lines = (run_dir / "events.jsonl").read_text().splitlines(keepends=True)
    (run_dir / "events.jsonl").write_text("".join(lines[:-30]))  # interrupted: resume would otherwise carry on
    _with_format(run_dir, LOG_FORMAT + 1)
    before = (run_dir / "events.jsonl").read_bytes()
    args = [command[0], str(run_dir), *(a.format(run=run_dir, tmp=tmp_path) for a in command[1:])]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    refusal = (f"{run_dir / 'events.jsonl'}: written by a newer simulacra "
               f"(log format {LOG_FORMAT + 1}, this one reads up to {LOG_FORMAT})")
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: ") and refusal in last and "Traceback" not in result.output
    assert (run_dir / "events.jsonl").read_bytes() == before and not (tmp_path / "c.jsonl").exists()


def test_a_log_without_a_version_is_read_as_version_one(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    _with_format(run_dir, None)
    check_log_format(run_dir / "events.jsonl")
    result = CliRunner().invoke(app, ["stats", str(run_dir), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["ticks"] == 6


def test_the_check_reads_only_the_first_record(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text(json.dumps({"kind": "run_started", "log_format": LOG_FORMAT + 5}) + "\n" + "not json\n" * 3)
    with pytest.raises(LogFormatError, match=f"log format {LOG_FORMAT + 5}, this one reads up to {LOG_FORMAT}"):
        check_log_format(log)
    log.write_text("")
    check_log_format(log)  # an empty log is no newer than this one


@pytest.mark.parametrize("version", ["2", 1.5, True])
def test_a_malformed_version_is_called_malformed_not_newer(tmp_path: Path, version: object) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text(json.dumps({"kind": "run_started", "log_format": version}) + "\n")
    with pytest.raises(LogFormatError, match=r":1: log_format: .* is malformed") as raised:
        check_log_format(log)
    assert "newer" not in str(raised.value)


def test_stats_refuses_a_malformed_version_with_exit_2(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    _with_format(run_dir, "2")
    result = CliRunner().invoke(app, ["stats", str(run_dir)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and 'log_format: "2" is malformed' in result.stderr
