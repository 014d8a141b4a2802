"""How good the agents' dialogue is on a given model: the quality figures of `simulacra stats`, model calls and
wall seconds. Prints one JSON object with --json.

Two spans over the Valentine's town (scenarios/valentines.yaml, five agents):
- `town` (the figure of record): the town runs from 07:00 for --hours, planning, meeting and talking as in any run.
- `pairs` (quick, for trying levers): every pair of agents talks once at Hobbs Cafe at 10:00, the conversations
  run through the same Conversation activity one after another, and nothing else thinks.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import platform
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from report import emit
from agents.gateway import build_backend
from worlds.activities.conversation import Conversation
from worlds.corpus.dialogues import dialogues
from worlds.corpus.quality import measure
from worlds.events import TickCompleted, from_report
from worlds.runfolder import RunFolder
from worlds.runner import drive, start_run
from worlds.scenario import load_scenario
from worlds.stats import compute_stats
from timed_backend import Timed

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "valentines.yaml"
PLACE = "Hobbs Cafe"


async def town(model: str, hours: float, out: Path) -> tuple[RunFolder, Timed, float]:
    scenario = load_scenario(SCENARIO)
    backend = Timed(build_backend(model))
    run = start_run(scenario, out, model=backend, until=scenario.clock.start + timedelta(hours=hours))
    started = time.perf_counter()
    await drive(run, None)
    return run.folder, backend, time.perf_counter() - started


async def pairs(model: str, out: Path) -> tuple[RunFolder, Timed, float]:
    """Each pair once, in name order, at 10:00 and on; agents keep the memories their talks leave."""
    scenario = load_scenario(SCENARIO)
    backend = Timed(build_backend(model))
    run = start_run(scenario, out, model=backend)
    engine, started = run.engine, time.perf_counter()
    tick = engine.clock.ticks_until(scenario.clock.start + timedelta(hours=3))
    try:
        await engine.seed_memories()
        for a, b in itertools.combinations(sorted(engine.agents), 2):
            for name in (a, b):
                engine.agents[name].state.place = PLACE
            ctx = engine.context(tick)
            engine.scheduler.start(Conversation("", [a, b], PLACE), ctx, engine.env)
            while engine.scheduler.running:
                await engine.scheduler.advance(ctx, engine.env)
                events = [from_report(item, ctx.tick, ctx.now) for item in ctx.drain()]
                events.append(TickCompleted(tick=tick, sim_time=ctx.now, positions={a: PLACE, b: PLACE}))
                engine.writer.number(events)
                engine.writer.write(events)
                tick += 1
                ctx = engine.context(tick)
    finally:
        engine.writer.close()
        run.cache.close()
    return run.folder, backend, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--span", choices=["town", "pairs"], default="town")
    parser.add_argument("--hours", type=float, default=3.0, help="Simulated hours of the town span.")
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--keep", type=Path, help="Keep the run folder under this folder, to read its lines.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out = args.keep or scratch
        if args.span == "town":
            folder, backend, wall = asyncio.run(town(args.model, args.hours, Path(out)))
        else:
            folder, backend, wall = asyncio.run(pairs(args.model, Path(out)))
        report = compute_stats(folder)
        quality = measure(dialogues(folder))
    result = {
        "benchmark": "dialogue_quality", "span": args.span, "model": args.model, "machine": platform.machine(),
        "python": platform.python_version(), **({"sim_hours": args.hours} if args.span == "town" else {}),
        "wall_s": round(wall, 1), "model_s": round(backend.seconds, 1), "model_calls": report.model_calls,
        "utterance_calls": report.purposes["utterance"].calls if "utterance" in report.purposes else 0,
        **({"wall_s_per_sim_hour": round(wall / args.hours, 1)} if args.span == "town" else {}),
        **quality.model_dump(),
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()
