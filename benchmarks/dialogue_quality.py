"""How good the agents' dialogue is on a given model: the quality figures of `simulacra stats`, model calls and
wall seconds. Prints one JSON object with --json.

Two spans over the Valentine's town (scenarios/valentines.yaml, five agents):
- `town` (the figure of record): the town runs from 07:00 for --hours, planning, meeting and talking as in any run.
- `pairs` (quick, for trying levers): every pair of agents talks once (or --rounds times) at Hobbs Cafe from 10:00,
  the conversations run through the same Conversation activity one after another, and nothing else thinks.
- `scenes` (a lever that was measured and not taken): every pair's whole exchange written in one call, from both
  agents' personas, relationship and starting memories; lines are cut at the first repeat, as a conversation is.
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
from agents.agent import Agent
from agents.cognition.lines import repeats, says_goodbye, spoken
from agents.gateway import CallScope, ChatMessage, build_backend
from agents.seeding import stable_int
from worlds.activities.conversation import Conversation
from worlds.corpus.dialogues import dialogues
from worlds.corpus.quality import Dialogue, Line, measure
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


async def pairs(model: str, out: Path, rounds: int) -> tuple[RunFolder, Timed, float]:
    """Each pair `rounds` times, in name order, at 10:00 and on; agents keep the memories their talks leave."""
    scenario = load_scenario(SCENARIO)
    backend = Timed(build_backend(model))
    run = start_run(scenario, out, model=backend)
    engine, started = run.engine, time.perf_counter()
    tick = engine.clock.ticks_until(scenario.clock.start + timedelta(hours=3))
    try:
        await engine.seed_memories()
        for _, (a, b) in itertools.product(range(rounds), itertools.combinations(sorted(engine.agents), 2)):
            for name in (a, b):
                engine.agents[name].state.place = PLACE
            ctx = engine.context(tick)
            engine.scheduler.start(Conversation("", [a, b], PLACE), ctx, engine.env)
            while engine.scheduler.running:
                await engine.scheduler.advance(ctx, engine.env, sorted(engine.scheduler.running))
                engine.scheduler.release_finished(engine.env)
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


SCENE_LINES = 8


def scene_prompt(a: Agent, b: Agent) -> list[ChatMessage]:
    """Both sides at once, for the whole-exchange lever: who they are, what is on their minds, how they know each other."""
    def side(agent: Agent) -> str:
        mind = " ".join(agent.persona.memories)
        return f"{agent.persona.describe()}" + (f" On {agent.persona.first_name}'s mind: {mind}" if mind else "")
    first_a, first_b = a.persona.first_name, b.persona.first_name
    known = a.state.relationships.get(b.name)
    how = known.label if known and known.label else "people from the same town who have not talked before"
    return [ChatMessage(role="system", content="You write short, natural dialogue for a novel about a small town."),
            ChatMessage(role="user", content=(
                f"At {PLACE}, on Monday morning, {first_a} and {first_b} meet ({how}).\n\n{side(a)}\n\n{side(b)}\n\n"
                f"Write their conversation: {SCENE_LINES} lines, taking turns, {first_a} first, one or two casual "
                f"sentences each, about what is on their minds; they say goodbye in the last two lines. Write each "
                f"line as Name: words"))]


def scene_lines(text: str, a: Agent, b: Agent) -> tuple[list[Line], str]:
    """The written lines as a conversation would keep them: labelled lines only, cut at the first repeat."""
    labels = {name: agent.name for agent in (a, b) for name in (agent.name, agent.persona.first_name)}
    kept: list[Line] = []
    for raw in text.splitlines():
        label, _, said = raw.strip().lstrip("*").partition(":")
        if label.strip("* ") not in labels or not said.strip():
            continue
        speaker, line = labels[label.strip("* ")], spoken(said, [a.name, b.name])
        if repeats(line, [(x.speaker, x.text) for x in kept], [a.name, b.name]):
            return kept, "repetition"
        kept.append(Line(speaker=speaker, text=line))
        if len(kept) == SCENE_LINES:
            return kept, "max_lines"
    if not kept:
        return kept, "model_unavailable"
    return kept, "farewell" if says_goodbye(kept[-1].text) else "no_farewell"


async def scenes(model: str, out: Path) -> tuple[list[Dialogue], Timed, float, int]:
    scenario = load_scenario(SCENARIO)
    backend = Timed(build_backend(model))
    run = start_run(scenario, out, model=backend)
    engine, started, found = run.engine, time.perf_counter(), []
    try:
        for a, b in itertools.combinations(sorted(engine.agents), 2):
            first, second = engine.agents[a], engine.agents[b]
            text = await engine.env.gateway.complete(scene_prompt(first, second), purpose="scene", max_tokens=400,
                                                     scope=CallScope(a, stable_int(scenario.seed, a, b)))
            lines, ended = scene_lines(text, first, second)
            found.append(Dialogue(dialogue_id=f"{a}/{b}", kind="conversation", lines=lines, end_reason=ended))
    finally:
        engine.writer.close()
        run.cache.close()
    return found, backend, time.perf_counter() - started, engine.env.gateway.counters.calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--span", choices=["town", "pairs", "scenes"], default="town")
    parser.add_argument("--hours", type=float, default=3.0, help="Simulated hours of the town span.")
    parser.add_argument("--rounds", type=int, default=1, help="How many times each pair talks in the pairs span.")
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--keep", type=Path, help="Keep the run folder under this folder, to read its lines.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    with tempfile.TemporaryDirectory() as scratch:
        out = args.keep or scratch
        if args.span == "scenes":
            written, backend, wall, calls = asyncio.run(scenes(args.model, Path(out)))
            quality, calls_by_purpose = measure(written), {"model_calls": calls, "utterance_calls": 0}
        else:
            span = town(args.model, args.hours, Path(out)) if args.span == "town" else pairs(args.model, Path(out), args.rounds)
            folder, backend, wall = asyncio.run(span)
            report = compute_stats(folder)
            quality = measure(dialogues(folder))
            calls_by_purpose = {"model_calls": report.model_calls, "utterance_calls": report.purposes[
                "utterance"].calls if "utterance" in report.purposes else 0}
    result = {
        "benchmark": "dialogue_quality", "span": args.span, "model": args.model, "machine": platform.machine(),
        "python": platform.python_version(), **({"sim_hours": args.hours} if args.span == "town" else {}),
        **({"rounds": args.rounds} if args.span == "pairs" else {}),
        "wall_s": round(wall, 1), "model_s": round(backend.seconds, 1), **calls_by_purpose,
        **({"wall_s_per_sim_hour": round(wall / args.hours, 1)} if args.span == "town" else {}),
        **quality.model_dump(),
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()
