"""Timelines: how fast `inspect` picks one agent's events out of a long log, and that memory stays flat.
Prints one JSON object with --json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import resource
import tempfile
import time
from pathlib import Path

from agent_day import town
from report import emit
from worlds.runner import execute_run
from worlds.timeline.select import EventFilter, select


def synthetic_log(path: Path, events: int) -> tuple[int, str]:
    """A real day's log (25 agents, the fake model) repeated, renumbered, to `events` lines; an agent to look for."""
    scenario = town(25, 1, "2023-03-06T05:00", "2023-03-07T05:00", "memory")
    with tempfile.TemporaryDirectory() as out:
        summary = asyncio.run(execute_run(scenario, Path(out), model="fake"))
        day = [json.loads(line) for line in (summary.run_dir / "events.jsonl").read_text().splitlines()]
    written = 0
    with path.open("w", encoding="utf-8") as handle:
        while written < events:
            for event in day:
                if written == events:
                    break
                event["seq"] = written
                handle.write(json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n")
                written += 1
    return written, scenario.agents[3].name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.jsonl"
        events, agent = synthetic_log(path, args.events)
        size_mb = path.stat().st_size / 2**20
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        found = sum(1 for _ in select(path, EventFilter(agents=[agent]), lambda *_: None))
        agent_s = time.perf_counter() - started
        started = time.perf_counter()
        talk = sum(1 for _ in select(path, EventFilter(agents=[agent], kinds=["utterance"]), lambda *_: None))
        utterance_s = time.perf_counter() - started
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    result = {"benchmark": "timelines", "events": events, "log_mb": round(size_mb, 1), "agent": agent,
              "python": platform.python_version(), "machine": platform.machine(),
              "inspect_agent_s": round(agent_s, 3), "agent_events": found,
              "inspect_agent_utterances_s": round(utterance_s, 3), "agent_utterances": talk,
              "peak_memory_growth_mb": round(grown_mb, 1)}
    emit(result, args.json)


if __name__ == "__main__":
    main()
