"""A batch of role-play sessions: throughput at the in-flight limit, engine overhead per message, prompt sizes
by message position (bounded window vs the whole transcript). Prints one JSON object with --json.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import platform
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from report import emit
from agents.roleplay.turns import Turn, repeats_earlier
from agents.gateway import build_backend
from timed_backend import Timed
from worlds.events import ModelCall, SessionEnded, SessionMessage, SessionStarted
from worlds.runfolder import RunFolder
from worlds.scenario import SocietyScenario, read_role_list
from worlds.cluster import RaySpec
from worlds.society.batch import run_batch

#: Recent messages shown word for word (the default), and a window that holds any whole transcript here.
WINDOW, WHOLE = 4, 1000
LONG_SESSIONS, LONG_MESSAGES = 10, 100
#: Sessions run to their message cap: the fake's free text never gives an instruction, so that rule is off.
ENDLESS = {"no_instruction_turns": 1000, "role_flips": 1000, "courtesy_repeats": 1000, "max_tokens": 10**9,
           "stop_on_repetition": False}


def batch(sessions: int, messages: int, window: int, concurrency: int) -> SocietyScenario:
    """Exactly `sessions` sessions: 10 assistant roles × enough user roles, one task per pair."""
    users = math.ceil(sessions / 10)
    return SocietyScenario.model_validate({
        "name": "bench", "seed": 1, "models": {"default": "fake", "embeddings": "fake"},
        "society": {
            "assistant_roles": {"names": [f"Assistant role {i}" for i in range(min(10, sessions))]},
            "user_roles": {"names": [f"User role {i}" for i in range(users)]},
            "tasks_per_pair": 1, "concurrency": concurrency,
            "session": {"max_messages": messages, "window": window, "specify_task": True, **ENDLESS},
        },
    })


def embedded_batch(sessions: int, messages: int, window: int) -> SocietyScenario:
    """`sessions` AI-Society sessions from the shipped CAMEL role lists, one task per pair."""
    data = Path(__file__).resolve().parent.parent / "scenarios" / "data"
    return SocietyScenario.model_validate({
        "name": "bench-embedded", "seed": 5, "models": {"default": "embedded", "embeddings": "fake"},
        "society": {
            "assistant_roles": {"names": read_role_list(data / "camel_ai_society_assistant_roles.txt")[:sessions]},
            "user_roles": {"names": read_role_list(data / "camel_ai_society_user_roles.txt")[-1:]},
            "tasks_per_pair": 1, "concurrency": sessions,
            # Repeats are counted, not stopped on, so both windows run their sessions long enough to differ.
            "session": {"max_messages": messages, "window": window, "specify_task": True, "specify_words": 40,
                        "stop_on_repetition": False},
        },
    })


def on_ray(pairs: int, tasks: int, messages: int, fake: str, workers: int | None) -> dict:
    """The same kind of batch in this process (`workers` None) or as Ray tasks, one role pair each: sessions per
    minute, Ray's start included."""
    scenario = batch(pairs, messages, WINDOW, 64).model_copy(deep=True)
    scenario.society.tasks_per_pair = tasks
    arrivals: list[tuple[float, int]] = []
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        summary = asyncio.run(run_batch(scenario, Path(out), fake, cluster=RaySpec(workers=workers) if workers else None,
                                        on_progress=lambda done, _: arrivals.append((time.perf_counter(), done))))
        wall = time.perf_counter() - started
    assert summary.units_failed == 0
    first = next((at, done) for at, done in arrivals if done > 0)  # the first session back: Ray is up
    return {"workers": workers or "in-process", "sessions": summary.finished, "wall_s": round(wall, 2),
            "first_session_s": round(first[0] - started, 2),
            "sessions_per_min": round(60 * summary.finished / wall, 1),
            "sessions_per_min_steady": round(60 * (summary.finished - first[1]) / (arrivals[-1][0] - first[0]), 1)}


def dialogue(result: dict) -> dict:
    """What the window does to the text: how sessions ended, how long they ran, how varied their words are."""
    texts = [turn.content for session in result["texts"].values() for turn in session]
    words = [m.lower().split() for m in texts]
    bigrams = [tuple(w[i:i + 2]) for w in words for i in range(len(w) - 1)]
    repeated = sum(repeats_earlier(session[:i + 1]) for session in result["texts"].values()
                   for i in range(len(session)))
    return {"sessions": result["sessions"], "messages_mean": round(result["messages"] / max(1, result["sessions"]), 1),
            "end_reasons": dict(sorted(result["reasons"].items())),
            "repeat_rate": round(repeated / max(1, len(texts)), 3),
            "distinct_2": round(len(set(bigrams)) / max(1, len(bigrams)), 3),
            "prompt_tokens_mean": round(statistics.mean(t for v in result["by_index"].values() for t in v), 1),
            "wall_s": round(result["wall_s"], 1)}


def run(scenario: SocietyScenario, model: str) -> dict:
    """Run the batch and read its log back: wall and model seconds, messages, prompt tokens by message index."""
    backend = Timed(build_backend(model))
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        summary = asyncio.run(run_batch(scenario, Path(out), backend))
        wall = time.perf_counter() - started
        by_index: dict[int, list[int]] = defaultdict(list)
        pending: dict[str, list[int]] = defaultdict(list)
        calls = messages = sessions = 0
        texts: dict[str, list[Turn]] = defaultdict(list)
        reasons: dict[str, int] = defaultdict(int)
        for event in RunFolder(summary.folder).reader().events(
                {"model_call", "session_message", "session_started", "session_ended"}):
            if isinstance(event, SessionEnded):
                reasons[event.reason] += 1
            if isinstance(event, ModelCall):
                calls += 1
                if event.purpose.endswith("_turn"):
                    pending[event.agents[0] if event.agents else ""].append(event.prompt_tokens)
            elif isinstance(event, SessionStarted):
                sessions += 1
            elif isinstance(event, SessionMessage):
                messages += 1
                texts[event.session_id].append(Turn(role=event.role, speaker=event.speaker, content=event.content))
                by_index[event.index].extend(pending.pop("", []))
    return {"wall_s": wall, "model_s": backend.seconds, "calls": calls, "messages": messages, "sessions": sessions,
            "by_index": by_index, "texts": texts, "reasons": reasons}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--messages", type=int, default=20, help="Messages per session (the cap).")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--limit", type=int, default=32, help="Calls in flight (the gateway's limit).")
    parser.add_argument("--words", type=int, default=45,
                        help="Length of the fake's free-text replies (CAMEL's messages average about 45 words).")
    parser.add_argument("--embedded", type=int, default=0, metavar="N",
                        help="Also run N sessions of 12 messages on the embedded model, bounded and whole (slow).")
    parser.add_argument("--ray-pairs", type=int, default=400, metavar="N",
                        help="Role pairs (one Ray task each) of the Ray comparison; 0 leaves it out.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    concurrency = 2 * args.limit  # more sessions open than calls allowed, so the limit is what binds
    fake = f"fake?words={args.words}"
    timed = run(batch(args.sessions, args.messages, WINDOW, concurrency),
                f"{fake}&latency={args.latency}&concurrency={args.limit}")
    ideal = math.ceil(timed["calls"] / args.limit) * args.latency
    instant = run(batch(args.sessions, args.messages, WINDOW, concurrency), fake)
    whole = run(batch(args.sessions, args.messages, WHOLE, concurrency), fake)
    long_bounded = run(batch(LONG_SESSIONS, LONG_MESSAGES, WINDOW, concurrency), fake)
    long_whole = run(batch(LONG_SESSIONS, LONG_MESSAGES, WHOLE, concurrency), fake)

    def tokens(result: dict, curve: bool = True) -> dict:
        means = {i: statistics.mean(v) for i, v in sorted(result["by_index"].items()) if v}
        every = [t for v in result["by_index"].values() for t in v]
        shown = {"mean": round(statistics.mean(every), 1), "first_message": round(means[min(means)], 1),
                 "last_message": round(means[max(means)], 1), "max": max(every)}
        return shown | ({"by_message": {i: round(m, 1) for i, m in means.items()}} if curve else {})

    result = {
        "benchmark": "roleplay_batch", "sessions": timed["sessions"], "messages_per_session": args.messages, "fake_reply_words": args.words,
        "python": platform.python_version(), "machine": platform.machine(),
        "latency_s": args.latency, "in_flight_limit": args.limit, "sessions_at_once": concurrency,
        "calls": timed["calls"], "messages": timed["messages"], "wall_s": round(timed["wall_s"], 2),
        "sessions_per_min": round(60 * timed["sessions"] / timed["wall_s"], 1),
        "messages_per_s": round(timed["messages"] / timed["wall_s"], 1),
        "ideal_s": round(ideal, 2),
        "concurrency_efficiency": round(ideal / timed["wall_s"], 3),
        "overhead_ms_per_message": round(1000 * (instant["wall_s"] - instant["model_s"]) / instant["messages"], 3),
        "prompt_tokens_per_message": tokens(instant),
        "prompt_tokens_per_message_whole_transcript": tokens(whole),
        f"long_sessions_{LONG_MESSAGES}_messages": {"sessions": long_bounded["sessions"],
                                                    "bounded": tokens(long_bounded, curve=False),
                                                    "whole_transcript": tokens(long_whole, curve=False)},
    }
    if args.ray_pairs:
        runs = [on_ray(args.ray_pairs, 10, args.messages, fake, workers) for workers in (None, 1, 2)]
        result["ray"] = {"pairs": args.ray_pairs, "tasks_per_pair": 10, "runs": runs,
                         "speedup_2_vs_1_worker": round(runs[2]["sessions_per_min"] / runs[1]["sessions_per_min"], 2),
                         "speedup_2_workers_vs_in_process": round(runs[2]["sessions_per_min"]
                                                                  / runs[0]["sessions_per_min"], 2)}
    if args.embedded:
        result["embedded_dialogue"] = {
            f"window_{WINDOW}": dialogue(run(embedded_batch(args.embedded, 12, WINDOW), "embedded")),
            "whole_transcript": dialogue(run(embedded_batch(args.embedded, 12, WHOLE), "embedded")),
        }
    emit(result, args.json)


if __name__ == "__main__":
    main()
