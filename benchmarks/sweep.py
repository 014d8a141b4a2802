"""Runs per minute of a sweep on `fake` with 1 and with 2 local Ray workers (the speed-up on this machine's cores).

Each unit is one seed of a generated town; Ray's own start is inside the timing. Prints one JSON object with --json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

from report import emit
from agent_day import town
from worlds.sweep.plan import plan_sweep
from worlds.sweep.run import run_sweep


def timed_sweep(folder: Path, workers: int) -> dict:
    """Whole wall time (Ray's start and each worker's first imports included), and the steady rate: units
    finished after the first `workers` results, over the time they took."""
    spec, units = plan_sweep(folder / "sweep.yaml")
    arrivals: list[float] = []
    started = time.perf_counter()
    summary = run_sweep(spec, units, folder / f"out-{workers}", workers=workers,
                        on_progress=lambda done, total: arrivals.append(time.perf_counter()))
    wall = time.perf_counter() - started
    assert not summary.failed, summary.failed
    steady = (len(units) - workers) / (arrivals[-1] - arrivals[workers - 1])
    return {"workers": workers, "units": len(units), "wall_s": round(wall, 2),
            "first_result_s": round(arrivals[0] - started, 2), "runs_per_minute": round(len(units) / wall * 60, 2),
            "runs_per_minute_steady": round(steady * 60, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=16, help="Seeds, one unit each.")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--hours", type=int, default=12, help="Simulated hours per unit, from 07:00.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    scenario = town(args.agents, 1, "2023-03-06T07:00", f"2023-03-06T{7 + args.hours:02d}:00", "memory")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "town.yaml").write_text(yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False))
        (folder / "sweep.yaml").write_text(yaml.safe_dump(
            {"name": "bench", "scenarios": ["town.yaml"], "seeds": args.units, "model": "fake"}))
        one, two = timed_sweep(folder, 1), timed_sweep(folder, 2)
    emit({"machine": f"{sys.platform}, {os.cpu_count()} cores", "agents": args.agents, "sim_hours": args.hours,
          "one_worker": one, "two_workers": two,
          "speedup": round(two["runs_per_minute"] / one["runs_per_minute"], 2),
          "speedup_steady": round(two["runs_per_minute_steady"] / one["runs_per_minute_steady"], 2)}, args.json)


if __name__ == "__main__":
    main()
