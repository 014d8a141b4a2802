"""One unit of a sweep, as a worker runs it: its own folder, its own process, its outcome as a record."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

from pydantic import BaseModel

from worlds.runner import execute_run
from worlds.scenario import parse_scenario
from worlds.stats import compute_stats
from worlds.runfolder import RunFolder
from worlds.sweep.plan import SweepUnit, apply_overrides
from worlds.timeparse import parse_moment


class UnitResult(BaseModel):
    """A line of the sweep's `sweep.jsonl`: what one unit did, or why it failed."""

    id: str
    status: str
    run_dir: str = ""
    ticks: int = 0
    model_calls: int = 0
    conversations: int = 0
    utterances: int = 0
    tokens: int = 0
    wall_s: float = 0.0
    error: str = ""


def run_unit(unit: SweepUnit, sweep_dir: str) -> UnitResult:
    """Run the unit from a clean folder (what a dead worker left is removed first); a failure is its result."""
    started = time.perf_counter()
    folder = Path(sweep_dir) / unit.id
    try:
        if folder.is_dir():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        scenario = apply_overrides(parse_scenario(unit.scenario_text, unit.scenario_path), unit.overrides,
                                   unit.scenario_path)
        scenario = scenario.model_copy(update={"seed": unit.seed})
        until = parse_moment(unit.until, scenario.clock.start) if unit.until else None
        summary = asyncio.run(execute_run(scenario, folder, model=unit.model, until=until))
        stats = compute_stats(RunFolder(summary.run_dir))
    except Exception as exc:  # noqa: BLE001 - one unit's failure is reported, never the sweep's end
        return UnitResult(id=unit.id, status="failed", error=f"{type(exc).__name__}: {exc}",
                          wall_s=round(time.perf_counter() - started, 2))
    return UnitResult(id=unit.id, status=summary.status, run_dir=str(summary.run_dir), ticks=summary.ticks,
                      model_calls=stats.model_calls, conversations=stats.conversations, utterances=stats.utterances,
                      tokens=stats.tokens.total, wall_s=round(time.perf_counter() - started, 2))
