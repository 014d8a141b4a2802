"""Timelines: how fast `inspect` picks one agent's events out of a long log (and that memory stays flat), what
writing snapshots costs a run, how long `resume` takes after a kill at mid-day, and what the replay page of a day
costs to write and to open in headless chromium. Prints one JSON object with --json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from agent_day import town
from report import emit
from agents.agent import Agent
from worlds.runfolder import RunFolder, write_atomically
from worlds.runner import execute_run, resume_run
from worlds.scenario import Scenario
from worlds.timeline.replay import build_replay
from worlds.timeline.replay_page import render_page
from worlds.timeline.select import EventFilter, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests/chromium.py
from tests.chromium import launch, missing, sync_playwright  # noqa: E402


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


DEFAULT_EVERY = Scenario.model_fields["snapshot_every"].default
T = TypeVar("T")


class SnapshotTimer:
    """Adds up the time a run spends making snapshots: building the agents' states, then writing the file."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._originals = (Agent.get_state, RunFolder.write_snapshot)

    def __enter__(self) -> SnapshotTimer:
        def timed(original: Callable[..., T]) -> Callable[..., T]:
            """The method as it was, with the time each call takes added to the total."""

            def wrapper(*args: Any, **kwargs: Any) -> T:
                started = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    self.seconds += time.perf_counter() - started
            return wrapper

        Agent.get_state, RunFolder.write_snapshot = (timed(f) for f in self._originals)
        return self

    def __exit__(self, *exc: object) -> None:
        Agent.get_state, RunFolder.write_snapshot = self._originals


def day_seconds(snapshot_every: int) -> float:
    """Wall seconds of the 25-agent day on the instant fake, from the first tick on."""
    scenario = town(25, 1, "2023-03-06T05:00", "2023-03-07T05:00", "chroma")
    scenario = scenario.model_copy(update={"snapshot_every": snapshot_every})
    ready: list[float] = []
    with tempfile.TemporaryDirectory() as out:
        asyncio.run(execute_run(scenario, Path(out), model="fake", on_engine=lambda _: ready.append(time.perf_counter())))
        return time.perf_counter() - ready[0]


def resume_after_kill(kill_at: int) -> tuple[float, int]:
    """A day run by `simulacra run` in a child process, killed with SIGKILL at tick `kill_at`, then resumed here."""
    scenario = town(25, 1, "2023-03-06T05:00", "2023-03-07T05:00", "chroma")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "town.yaml"
        path.write_text(yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False))
        out = Path(folder) / "out"
        child = subprocess.Popen([sys.executable, "-c", "from worlds.cli import main; main()", "run", str(path),
                                  "--out", str(out), "--model", "fake?latency=0.002"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while True:
            runs = [p for p in out.glob("*") if p.is_dir()]
            log = runs[0] / "events.jsonl" if runs else None
            if log is not None and log.exists() and log.read_bytes().count(b'"kind":"tick"') >= kill_at:
                os.kill(child.pid, signal.SIGKILL)
                break
            if child.poll() is not None:
                raise SystemExit("the run ended before the benchmark could kill it")
            time.sleep(0.01)
        child.wait()
        started = time.perf_counter()
        _, report = asyncio.run(resume_run(RunFolder(runs[0])))
        return time.perf_counter() - started, report.from_tick


def replay_figures(days: int) -> dict:
    """`simulacra replay` of the 25-agent town over `days`: writing the page, its size, and chromium's time to draw it."""
    scenario = town(25, 1, "2023-03-06T05:00", f"2023-03-{6 + days:02d}T05:00", "memory")
    with tempfile.TemporaryDirectory() as out:
        run_dir = asyncio.run(execute_run(scenario, Path(out), model="fake")).run_dir
        page = Path(out) / "replay.html"
        started = time.perf_counter()
        write_atomically(page, render_page(build_replay(RunFolder.open(run_dir), lambda _: None)))
        seconds = time.perf_counter() - started
        with (run_dir / "events.jsonl").open("rb") as log:
            events = sum(1 for _ in log)
        return {"replay_days": days, "replay_events": events, "replay_html_s": round(seconds, 3),
                "replay_html_mb": round(page.stat().st_size / 2**20, 2), "page_load_ms": page_load_ms(page)}


def page_load_ms(page: Path, loads: int = 3) -> float | None:
    """Median over fresh tabs of the page's own clock from navigation start to everything drawn; None without chromium."""
    if missing():
        print(f"page_load_ms left out: no {' and no '.join(missing())}", file=sys.stderr)
        return None
    times = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        for _ in range(loads):
            tab = browser.new_page(viewport={"width": 1440, "height": 1000})
            tab.goto(page.as_uri())
            times.append(float(tab.wait_for_selector("body[data-ready]").get_attribute("data-ready")))
            tab.close()
        browser.close()
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--replay-days", type=int, default=1, help="simulated days of the town the replay page shows")
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
    # The same day with and without snapshots, three times over, interleaved; the median pair's overhead.
    pairs = sorted(((day_seconds(10**5), day_seconds(DEFAULT_EVERY)) for _ in range(3)), key=lambda p: p[1] / p[0])
    without, with_snapshots = pairs[1]
    with SnapshotTimer() as timer:
        day = day_seconds(DEFAULT_EVERY)
    resume_s, from_tick = resume_after_kill(75)
    replay = replay_figures(args.replay_days)
    result = {"benchmark": "timelines", "events": events, "log_mb": round(size_mb, 1), "agent": agent,
              "python": platform.python_version(), "machine": platform.machine(),
              "inspect_agent_s": round(agent_s, 3), "agent_events": found,
              "inspect_agent_utterances_s": round(utterance_s, 3), "agent_utterances": talk,
              "peak_memory_growth_mb": round(grown_mb, 1),
              "snapshot_every": DEFAULT_EVERY,
              "day_s_without_snapshots": round(without, 2), "day_s_with_snapshots": round(with_snapshots, 2),
              "snapshot_overhead_pct": round(100 * (with_snapshots - without) / without, 1),
              "snapshot_time_pct": round(100 * timer.seconds / day, 2),
              "resume_s": round(resume_s, 2), "resumed_from_tick": from_tick, "killed_at_tick": 75,
              **replay}
    emit(result, args.json)


if __name__ == "__main__":
    main()
