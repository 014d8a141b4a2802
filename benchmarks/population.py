"""A population, not a party: towns of 1,000 to 10,000 generated agents through simulated hours on `fake`.

Each size runs in its own process, so its peak RSS is its own, `--repeat` times: `wall_s` is the fastest of
them (the others are what else ran on the machine), `peak_rss_mb` the largest. Prints one JSON object with --json:
{"runs": [{"agents", "wall_s", "wall_s_each", "peak_rss_mb", "events_per_s", "model_calls"}, ...], "growth": ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from report import emit
from agent_day import town
from worlds.runner import execute_run

START = "2023-03-06T07:00"


def one_size(agents: int, hours: float, seed: int) -> dict:
    """One town, one run, in this process: wall time from the first tick, events written, calls made."""
    stop = (datetime.fromisoformat(START) + timedelta(hours=hours)).isoformat()
    scenario = town(agents, seed, START, stop, "memory")
    ready: list[float] = []
    with tempfile.TemporaryDirectory() as out:
        summary = asyncio.run(execute_run(scenario, Path(out), model="fake",
                                          on_engine=lambda _: ready.append(time.perf_counter())))
        wall = time.perf_counter() - ready[0]
        with (summary.run_dir / "events.jsonl").open("rb") as log:
            events = sum(1 for _ in log)
    return {"agents": agents, "wall_s": round(wall, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "events_per_s": round(events / wall, 1), "model_calls": summary.counters.calls, "events": events,
            "ticks": summary.ticks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", default="1000,3000,10000", help="Comma-separated town sizes.")
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each size; the fastest counts.")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child process: one size, one JSON line
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.one:
        sys.stdout.write(json.dumps(one_size(args.one, args.hours, args.seed)) + "\n")
        return
    runs = []
    for size in (int(n) for n in args.agents.split(",")):
        each = [json.loads(subprocess.run([sys.executable, __file__, "--one", str(size), "--hours", str(args.hours),
                                           "--seed", str(args.seed)], capture_output=True, text=True,
                                          check=True).stdout.splitlines()[-1]) for _ in range(args.repeat)]
        fastest = min(each, key=lambda run: run["wall_s"])
        runs.append({**fastest, "wall_s_each": [run["wall_s"] for run in each],
                     "peak_rss_mb": max(run["peak_rss_mb"] for run in each)})
    first, last = runs[0], runs[-1]
    growth = None
    if last["agents"] > first["agents"]:
        # Cost per agent at the largest size over that at the smallest: at most 1 means no worse than linear.
        growth = round((last["wall_s"] / last["agents"]) / (first["wall_s"] / first["agents"]), 2)
    emit({"machine": f"{sys.platform}, {__import__('os').cpu_count()} cores", "hours": args.hours, "runs": runs,
          "wall_per_agent_growth": growth}, args.json)


if __name__ == "__main__":
    main()
