"""Budgets on batches: no unit starts once the calls or tokens are spent, the same command with a higher limit
carries on, and the finished batch holds the sessions an unlimited one would have written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tests.test_loop_batch import _batch_files
from tests.test_society import SOCIETY, _log, _transcripts
from worlds.cli import app
from worlds.runfolder import RunFolder
from worlds.stats import compute_stats


def _paid(records: list[dict[str, Any]]) -> int:
    return sum(1 for r in records if r["kind"] == "model_call" and r["paid"])


def _run(path: Path, out: Path, *options: str) -> str:
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(out), *options])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_max_calls_stops_a_role_play_batch_and_a_higher_limit_finishes_it_as_an_unlimited_run_would(
    tmp_path: Path,
) -> None:
    path = tmp_path / "society.yaml"
    path.write_text(SOCIETY)
    _run(path, tmp_path / "ref")
    reference = _transcripts(_log(tmp_path / "ref" / "society"))

    said = _run(path, tmp_path / "out", "--max-calls", "6")
    folder = tmp_path / "out" / "society"
    first = _log(folder)
    assert "stopped by its budget" in said and "--max-calls" in said
    assert first[-1]["kind"] == "run_ended" and first[-1]["status"] == "budget"
    assert first[-1]["detail"].startswith("max_calls 6 reached")
    assert _paid(first) >= 6, "it stopped because the limit was reached, not before"
    assert len(_transcripts(first)) < len(reference)

    again = _run(path, tmp_path / "out", "--max-calls", "6")
    assert "stopped by its budget" in again and _paid(_log(folder)) == _paid(first), "a spent budget starts nothing"

    _run(path, tmp_path / "out", "--max-calls", "0")
    final = _log(folder)
    assert final[-1]["status"] == "completed"
    assert _transcripts(final) == reference, "each session as the unlimited batch wrote it, none twice"
    ended = [r["session_id"] for r in final if r["kind"] == "session_ended"]
    assert len(ended) == len(set(ended))


def test_a_loop_batch_scenario_budget_limits_tokens_and_stats_show_the_spend(tmp_path: Path) -> None:
    path = _batch_files(tmp_path)
    path.write_text(path.read_text() + "budget: {max_tokens: 300, prices: {prompt_per_million: 2, "
                                       "completion_per_million: 8}}\n")
    said = _run(path, tmp_path / "out")
    folder = tmp_path / "out" / "lb"
    records = _log(folder)
    assert "--max-tokens" in said and records[-1]["status"] == "budget"
    ended = [r["session_id"] for r in records if r["kind"] == "session_ended"]
    assert 1 <= len(ended) < 6
    stats = compute_stats(RunFolder(folder))
    assert stats.spend.stopped.startswith("max_tokens 300 reached")
    assert stats.spend.total.tokens >= 300 and stats.spend.total.cost is not None and stats.spend.total.cost > 0
    _run(path, tmp_path / "out", "--max-tokens", "0")
    assert sorted(r["session_id"] for r in _log(folder) if r["kind"] == "session_ended") == \
        [f"q{i}" for i in range(1, 7)]


def test_a_self_instruct_batch_stops_between_rounds_and_carries_on_from_its_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "si.yaml"
    path.write_text("name: si\nseed: 1\nmodels: {default: fake}\nloops: {type: self_instruct, target: 12, "
                    "max_rounds: 20}\nbudget: {max_calls: 2}\n")
    _run(path, tmp_path / "out")
    folder = tmp_path / "out" / "si"
    rounds = [r["unit"] for r in _log(folder) if r["kind"] == "batch_unit" and r["unit"].startswith("round-")]
    assert _log(folder)[-1]["status"] == "budget" and 1 <= len(rounds) < 20
    kept = (folder / "pool.jsonl").read_text().splitlines()
    _run(path, tmp_path / "out", "--max-calls", "0")
    pool = (folder / "pool.jsonl").read_text().splitlines()
    assert len(pool) >= 12 and pool[: len(kept)] == kept
    assert _log(folder)[-1]["status"] == "completed"


def test_only_the_budget_may_change_between_runs_of_one_batch_folder(tmp_path: Path) -> None:
    path = tmp_path / "society.yaml"
    path.write_text(SOCIETY + "budget: {max_calls: 3}\n")
    _run(path, tmp_path)
    path.write_text(SOCIETY + "budget: {max_calls: 5}\n")
    _run(path, tmp_path)
    assert "max_calls: 5" in (tmp_path / "society" / "scenario.yaml").read_text(), "the folder records the new limit"
    path.write_text(SOCIETY.replace("tasks_per_pair: 2", "tasks_per_pair: 3"))
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "different scenario" in result.stderr
