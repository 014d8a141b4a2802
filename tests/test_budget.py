"""Budgets: a run stops at the tick boundary where its calls or tokens run out, resumes with a higher limit to the
log it would have written anyway, and stats report the spend per agent and purpose, priced."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import comparable_log
from tests.test_resume import IGNORED, MODEL, TOWNS, _killed_run
from worlds.budget import BudgetSpec, Prices, Spend
from worlds.cli import app
from worlds.runner import execute_run
from worlds.scenario import ScenarioError, parse_scenario

TOWN = TOWNS["memory store"]
PRICED = TOWN + "budget: {max_tokens: 4000, prices: {prompt_per_million: 3, completion_per_million: 15, currency: EUR}}\n"


def _records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


def _run_cli(tmp_path: Path, text: str, *options: str) -> tuple[Path, str]:
    path = tmp_path / "town.yaml"
    path.write_text(text)
    out = tmp_path / "runs"
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(out), "--model", "fake", *options])
    assert result.exit_code == 0, result.output
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    return folder, result.stdout


def _spent_by_each_tick(records: list[dict]) -> list[tuple[int, int, int]]:
    """(tick, calls, tokens) paid for by the end of each closed tick."""
    calls = tokens = 0
    seen = []
    for record in records:
        if record["kind"] == "model_call" and record["paid"]:
            calls += 1
            tokens += record["prompt_tokens"] + record["completion_tokens"]
        elif record["kind"] == "tick":
            seen.append((record["tick"], calls, tokens))
    return seen


def test_max_calls_stops_at_the_first_tick_boundary_past_it_and_says_how_to_go_on(tmp_path: Path) -> None:
    folder, stdout = _run_cli(tmp_path, TOWN, "--max-calls", "40")
    records = _records(folder)
    ended = records[-1]
    assert ended["kind"] == "run_ended" and ended["status"] == "budget"
    assert "max_calls 40 reached" in ended["detail"]
    closed = _spent_by_each_tick(records)
    (_, before, _), (last_tick, after, _) = closed[-2:]
    assert before < 40 <= after, "the last tick started with budget left and spent it"
    assert sum(1 for r in records if r["kind"] == "model_call") == after, "no call after the stop"
    assert "stopped by its budget" in stdout and f"simulacra resume {folder}" in stdout
    snapshot = json.loads((folder / "checkpoints" / "snapshot.json").read_text())
    assert snapshot["next_tick"] == last_tick + 1, "the snapshot is where the budget stopped the run"


def test_a_run_stopped_by_its_budget_resumes_with_a_higher_one_to_the_unlimited_log(tmp_path: Path) -> None:
    whole = asyncio.run(execute_run(parse_scenario(TOWN), tmp_path / "whole", model="fake")).run_dir
    folder, _ = _run_cli(tmp_path, TOWN, "--max-calls", "40")
    log = folder / "events.jsonl"
    before = log.read_bytes()
    refused = CliRunner().invoke(app, ["resume", str(folder)])
    assert refused.exit_code == 2 and "stopped at its budget (max_calls 40 reached" in refused.stderr
    assert log.read_bytes() == before, "a refused resume leaves the log alone"
    again = CliRunner().invoke(app, ["resume", str(folder), "--max-calls", "0"])
    assert again.exit_code == 0, again.output
    assert comparable_log(log, IGNORED) == comparable_log(whole / "events.jsonl", IGNORED)
    assert parse_scenario((folder / "scenario.yaml").read_text()).budget.max_calls is None


def test_the_scenario_budget_limits_tokens_and_stats_price_the_spend_per_agent_and_purpose(tmp_path: Path) -> None:
    folder, _ = _run_cli(tmp_path, PRICED)
    records = _records(folder)
    assert records[-1]["status"] == "budget" and "max_tokens 4000 reached" in records[-1]["detail"]
    assert _spent_by_each_tick(records)[-2][2] < 4000 <= _spent_by_each_tick(records)[-1][2]
    result = CliRunner().invoke(app, ["stats", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    spend = json.loads(result.stdout)["spend"]
    answered = [r for r in records if r["kind"] == "model_call" and r["paid"]]
    prompt = sum(r["prompt_tokens"] for r in answered)
    completion = sum(r["completion_tokens"] for r in answered)
    assert spend["total"] == {"calls": len(answered), "prompt_tokens": prompt, "completion_tokens": completion,
                              "tokens": prompt + completion,
                              "cost": pytest.approx((3 * prompt + 15 * completion) / 1e6, abs=1e-6)}
    assert sum(p["calls"] for p in spend["purposes"].values()) == len(answered)
    for name, row in spend["agents"].items():
        own = [r for r in answered if r["agent"] == name]
        assert row["calls"] == len(own) > 0
        assert row["tokens"] == sum(r["prompt_tokens"] + r["completion_tokens"] for r in own)
    assert spend["stopped"].startswith("max_tokens 4000") and spend["budget"]["prices"]["currency"] == "EUR"
    table = CliRunner().invoke(app, ["stats", str(folder)])
    assert "cost EUR" in table.stdout and "stopped: max_tokens 4000 reached" in table.stdout


def test_a_replay_is_answered_from_the_cache_and_spends_nothing(tmp_path: Path) -> None:
    whole = asyncio.run(execute_run(parse_scenario(TOWN), tmp_path / "whole", model="fake")).run_dir
    folder, stdout = _run_cli(tmp_path, TOWN, "--replay", str(whole), "--max-calls", "1")
    assert _records(folder)[-1]["status"] == "completed"
    assert "stopped by its budget" not in stdout


@pytest.mark.parametrize(("block", "field"), [
    ("{max_calls: 0}", "budget.max_calls"),
    ("{max_tokens: -5}", "budget.max_tokens"),
    ("{prices: {prompt_per_million: -1, completion_per_million: 2}}", "budget.prices.prompt_per_million"),
    ("{max_call: 10}", "budget.max_call"),
])
def test_a_bad_budget_block_is_an_input_error_naming_the_field(block: str, field: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(TOWN + f"budget: {block}\n", "town.yaml")
    assert any(field in str(problem) and "town.yaml:" in str(problem) for problem in caught.value.problems)


def test_command_line_limits_override_the_scenario_and_zero_lifts_one() -> None:
    spec = BudgetSpec(max_calls=10, max_tokens=500)
    assert spec.with_limits(None, 0) == BudgetSpec(max_calls=10)
    assert spec.with_limits(3, None).max_calls == 3
    spent = Spend(calls=10, prompt_tokens=100, completion_tokens=20)
    assert spec.reached(spent).startswith("max_calls 10 reached")
    assert spec.with_limits(11, None).reached(spent) is None
    assert spec.with_limits(11, 120).reached(spent) == "max_tokens 120 reached: 120 tokens spent"
    assert Prices(prompt_per_million=2, completion_per_million=10).cost(1_000_000, 100_000) == 3.0


def test_a_budgeted_run_killed_and_resumed_stops_where_it_would_have(tmp_path: Path) -> None:
    """The ticks a resume runs again are answered from the run's own cache: paid once, and counted."""
    text = TOWN.replace("snapshot_every: 6", "snapshot_every: 6\nbudget: {max_calls: 36}")
    whole = asyncio.run(execute_run(parse_scenario(text), tmp_path / "whole", model=MODEL)).run_dir
    assert _records(whole)[-1]["status"] == "budget"
    path = tmp_path / "town.yaml"
    path.write_text(text)
    folder = _killed_run(path, tmp_path / "killed", 15)
    result = CliRunner().invoke(app, ["resume", str(folder)])
    assert result.exit_code == 0, result.output
    assert comparable_log(folder / "events.jsonl", IGNORED) == comparable_log(whole / "events.jsonl", IGNORED)
    stats = json.loads(CliRunner().invoke(app, ["stats", str(folder), "--json"]).stdout)
    assert stats["spend"]["total"]["calls"] == sum(1 for r in _records(whole) if r["kind"] == "model_call")


def test_closing_work_that_would_pass_the_budget_waits_for_a_resume(tmp_path: Path) -> None:
    unlimited = asyncio.run(execute_run(parse_scenario(TOWN), tmp_path / "whole", model="fake")).run_dir
    records = _records(unlimited)
    by_last_tick = _spent_by_each_tick(records)[-1][1]
    assert sum(1 for r in records if r["kind"] == "model_call") > by_last_tick, "the end probes call the model"
    folder, stdout = _run_cli(tmp_path, TOWN, "--max-calls", str(by_last_tick))
    ended = _records(folder)[-1]
    assert ended["status"] == "budget" and not any(r["kind"] == "probe_answer" for r in _records(folder))
    assert "--max-calls N" in stdout
    again = CliRunner().invoke(app, ["resume", str(folder), "--max-calls", "0"])
    assert again.exit_code == 0, again.output
    assert comparable_log(folder / "events.jsonl", IGNORED) == comparable_log(unlimited / "events.jsonl", IGNORED)


def test_a_budgeted_run_forks_from_its_own_scenario_file(tmp_path: Path) -> None:
    folder, _ = _run_cli(tmp_path, TOWN, "--max-calls", "5000")
    at = _records(folder)[40]["sim_time"]
    result = CliRunner().invoke(app, ["run", str(tmp_path / "town.yaml"), "--fork", f"{folder}@{at}", "--out",
                                      str(tmp_path / "forks")])
    assert result.exit_code == 0, result.output
