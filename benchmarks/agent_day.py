"""One simulated day of N generated agents in one town: model calls per agent-hour, engine overhead,
prompt sizes by purpose, and the speed-up from thinking concurrently. Prints one JSON object with --json.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from report import emit
from agents.gateway import build_backend
from worlds.runfolder import RunFolder
from worlds.runner import execute_run
from worlds.scenario import Scenario, parse_scenario
from timed_backend import Timed

FIRST = ["Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jade", "Kai", "Lena", "Milo",
         "Nia", "Otto", "Pia", "Quin", "Rosa", "Sami", "Tara", "Uma", "Vik", "Wren", "Xia", "Yuri", "Zoe"]
JOBS = ["baker", "teacher", "nurse", "carpenter", "student", "painter", "grocer", "librarian", "mechanic", "cook"]
TRAITS = ["cheerful", "shy", "curious", "grumpy", "talkative", "careful", "dreamy", "busy"]
PUBLIC = {"Cafe": ["counter", "table"], "Park": ["bench", "fountain"], "Library": ["desk", "shelf"],
          "Market": ["stall"], "School": ["blackboard"], "Clinic": ["bed"], "Workshop": ["lathe"], "Pub": ["bar"]}


def town(agents: int, seed: int, start: str, stop: str, store: str) -> Scenario:
    """A generated town: public places, one home each, a ring of neighbours, one seeded piece of news."""
    people = [f"{FIRST[i % 26]} {chr(65 + i // 26 % 26)}{i // 676 or ''}" for i in range(agents)]
    homes = {p: f"{p}'s home" for p in people}
    data = {
        "name": f"bench-{agents}", "seed": seed,
        "clock": {"start": start, "step": "10m", "stop": stop},
        "models": {"default": "fake", "embeddings": "fake"},
        "memory": {"store": store},
        "world": {"places": {"Town": {**PUBLIC, **{h: ["bed"] for h in homes.values()}}}},
        "agents": [
            {"name": p, "age": 20 + (7 * i) % 50, "traits": TRAITS[i % len(TRAITS)],
             "persona": f"{p.split()[0]} is the town's {JOBS[i % len(JOBS)]}.", "home": homes[p],
             "wake": f"{6 + i % 3:02d}:{(15 * i) % 60:02d}", "bedtime": f"{21 + i % 3}:00",
             "memories": ["There is a street fair on Saturday."] if i == 0 else []}
            for i, p in enumerate(people)
        ],
        "relationships": [{"a": people[i], "b": people[(i + 1) % agents], "label": "neighbour"}
                          for i in range(agents) if agents > 1],
        "probes": [{"at": "end", "ask": "all", "question": "Is anything happening in town on Saturday?"}],
    }
    return parse_scenario(yaml.safe_dump(data, sort_keys=False), "<generated>")


def awake_hours(scenario: Scenario, until: datetime | None = None) -> float:
    """Agent-hours spent awake between the clock's start and `until`, from each persona's wake and bedtime."""
    start, stop = scenario.clock.start, min(until or scenario.clock.stop, scenario.clock.stop)
    total = timedelta()
    for persona in scenario.agents:
        day = start.date() - timedelta(days=1)
        while day <= stop.date():
            wake = datetime.combine(day, persona.wake)
            bed = datetime.combine(day, persona.bedtime)
            bed += timedelta(days=1) if bed <= wake else timedelta()
            total += max(timedelta(), min(bed, stop) - max(wake, start))
            day += timedelta(days=1)
    return total / timedelta(hours=1)


def run_day(scenario: Scenario, model: str, until: datetime | None = None) -> dict:
    """Run, then read the log: calls by agent and purpose, prompt tokens, wall and model seconds."""
    backend = Timed(build_backend(model))
    ready: list[float] = []
    with tempfile.TemporaryDirectory() as out:
        summary = asyncio.run(execute_run(scenario, Path(out), model=backend, until=until,
                                          on_engine=lambda _: ready.append(time.perf_counter())))
        wall = time.perf_counter() - ready[0]  # from the first tick on: imports and store start-up excluded
        calls = 0
        by_purpose: dict[str, list[int]] = defaultdict(list)
        ticks_with_calls: set[int] = set()
        for event in RunFolder(summary.run_dir).reader().events(kinds={"model_call"}):
            calls += 1
            by_purpose[event.purpose].append(event.prompt_tokens)
            ticks_with_calls.add(event.tick)
        chains = chain_bounds(RunFolder(summary.run_dir))
    hours = (min(until or scenario.clock.stop, scenario.clock.stop) - scenario.clock.start) / timedelta(hours=1)
    return {"wall_s": wall, "model_s": backend.seconds, "calls": calls, "ticks": summary.ticks,
            "agent_hours": hours * len(scenario.agents), "awake_hours": awake_hours(scenario, until),
            "by_purpose": by_purpose, "ticks_with_calls": len(ticks_with_calls), "chains": chains}


def chain_bounds(folder: RunFolder) -> dict[str, int]:
    """The longest chains of calls that must wait on each other: no scheduler can beat them at any concurrency.

    An agent's calls wait on its own earlier ones, and a talk's lines on the lines before; importance
    scoring runs beside an agent's other thinking. `any_order`: the longest such chain through the day,
    agents free to run ticks ahead of each other; `tick_synchronous`: the sum of each tick's longest chain.
    """
    scoring: dict[tuple[str, int], int] = defaultdict(int)
    thinking: dict[tuple[str, int], int] = defaultdict(int)
    talk_of: dict[tuple[str, int], str] = {}
    talk_calls: dict[tuple[str, int], int] = defaultdict(int)
    talkers: dict[tuple[str, int], set[str]] = defaultdict(set)
    calls = []
    for event in folder.reader().events(kinds={"model_call", "utterance"}):
        if event.kind == "utterance":
            talk_of[(event.speaker, event.tick)] = event.conversation_id
            talkers[(event.conversation_id, event.tick)].update(event.agents)
        elif event.agent is not None:
            calls.append(event)
    for call in calls:
        key = (call.agent, call.tick)
        if call.purpose == "importance":
            scoring[key] += 1
        elif call.purpose == "utterance" and key in talk_of:
            talk_calls[(talk_of[key], call.tick)] += 1
        else:
            thinking[key] += 1
    in_talk = {(who, tick): talk for (talk, tick), names in talkers.items() for who in names}
    agents = sorted({who for who, _ in scoring} | {who for who, _ in thinking} | {who for who, _ in in_talk})
    finished = dict.fromkeys(agents, 0)
    per_tick = 0
    for tick in range(max((t for _, t in [*scoring, *thinking, *in_talk]), default=-1) + 1):
        talks = {who: in_talk.get((who, tick)) for who in agents}
        lengths = {who: max(scoring[(who, tick)], thinking[(who, tick)] + talk_calls[(talks[who], tick)])
                   for who in agents}
        after = {who: max(finished[other] for other in agents if other == who or (talks[who] and talks[other] == talks[who]))
                 for who in agents}
        finished = {who: after[who] + lengths[who] for who in agents}
        per_tick += max(lengths.values(), default=0)
    return {"any_order": max(finished.values(), default=0), "tick_synchronous": per_tick}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=25)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store", choices=["memory", "chroma"], default="chroma")
    parser.add_argument("--latency", type=float, default=0.05, help="Fake latency for the concurrency speed-up.")
    parser.add_argument("--embedded-agents", type=int, default=0,
                        help="Also run two sim hours on the embedded model with this many agents (slow).")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    day = town(args.agents, args.seed, "2023-03-06T05:00", "2023-03-07T05:00", args.store)
    instant = run_day(day, "fake")
    engine_s = instant["wall_s"] - instant["model_s"]
    prompts = {p: {"calls": len(v), "mean": round(statistics.mean(v), 1), "max": max(v)}
               for p, v in sorted(instant["by_purpose"].items())}
    all_prompts = [t for v in instant["by_purpose"].values() for t in v]
    serial = run_day(day, f"fake?latency={args.latency}&concurrency=1")
    parallel = run_day(day, f"fake?latency={args.latency}&concurrency=32")
    chains = parallel["chains"]
    result = {
        "benchmark": "agent_day", "agents": args.agents, "sim_hours": 24, "ticks": instant["ticks"],
        "store": args.store, "python": platform.python_version(), "machine": platform.machine(),
        "calls_per_agent_hour": round(instant["calls"] / instant["agent_hours"], 2),
        "calls_per_awake_agent_hour": round(instant["calls"] / instant["awake_hours"], 2),
        "model_calls": instant["calls"], "wall_s": round(instant["wall_s"], 2),
        "overhead_ms_per_agent_tick": round(1000 * engine_s / (args.agents * instant["ticks"]), 3),
        "overhead_ms_per_awake_agent_tick": round(1000 * engine_s / (instant["awake_hours"] * (timedelta(hours=1) / day.clock.step)), 3),
        "prompt_tokens_per_call": {"mean": round(statistics.mean(all_prompts), 1), "max": max(all_prompts),
                                   "by_purpose": prompts},
        "concurrency": {"sim_hours": 24, "latency_s": args.latency, "calls": serial["calls"],
                        "wall_s_limit_1": round(serial["wall_s"], 2), "wall_s_limit_32": round(parallel["wall_s"], 2)},
        "speedup_concurrent": round(serial["wall_s"] / parallel["wall_s"], 2),
        # Why the speed-up is what it is: every tick with a call waits at least one latency, and a tick
        # waits for its longest chain of dependent calls (the model time left at 32 in flight, in latencies).
        "ticks_with_calls": instant["ticks_with_calls"],
        "critical_path_calls": round((parallel["wall_s"] - engine_s) / args.latency),
        # The most any scheduler could reach on this day's calls, from the chains of calls that wait on each other.
        "chain_bounds": {**chains,
                         "speedup_bound_any_order": round(parallel["calls"] / chains["any_order"], 2),
                         "speedup_bound_tick_synchronous": round(parallel["calls"] / chains["tick_synchronous"], 2)},
    }
    if args.embedded_agents:
        small = town(args.embedded_agents, args.seed, "2023-03-06T07:00", "2023-03-06T09:00", args.store)
        small = small.model_copy(update={"models": small.models.model_copy(update={"embeddings": "embedded"})})
        embedded = run_day(small, "embedded")
        result["embedded"] = {
            "agents": args.embedded_agents, "sim_hours": 2, "calls": embedded["calls"],
            "wall_s": round(embedded["wall_s"], 1),
            "calls_per_agent_hour_embedded": round(embedded["calls"] / embedded["agent_hours"], 2),
            "calls_per_awake_agent_hour_embedded": round(embedded["calls"] / embedded["awake_hours"], 2),
        }
    emit(result, args.json)


if __name__ == "__main__":
    main()
