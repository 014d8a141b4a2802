"""The demo town on the embedded model, keeping no prompt prefix (old) and keeping them (new).

Both runs ask the same requests and get the same text (every prompt is split at its leading system
message either way), so the wall times compare like for like. Town wall times drift by 10-20 % on a
shared machine, so the new run's requests are also replayed call by call, old then new then new then
old..., which cancels the drift: `paired`. Prints one JSON object with --json.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from report import emit
from agents.gateway import build_backend
from agents.gateway.backends.base import Backend
from agents.gateway.types import ModelReply, ModelRequest
from worlds.runfolder import RunFolder
from worlds.runner import execute_run
from worlds.scenario import Scenario, load_scenario
from timed_backend import Timed

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "valentines.yaml"


class Recording(Timed):
    """Keeps every request, in the order the run asked them."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.requests: list[ModelRequest] = []

    async def generate(self, request: ModelRequest) -> ModelReply:
        self.requests.append(request)
        return await super().generate(request)


def town_hours(scenario: Scenario, model: str, hours: float) -> dict:
    """Run the town from its start for `hours`; read the calls back from the log."""
    backend = Recording(build_backend(model))
    ready: list[float] = []
    with tempfile.TemporaryDirectory() as out:
        summary = asyncio.run(execute_run(scenario, Path(out), model=backend,
                                          until=scenario.clock.start + timedelta(hours=hours),
                                          on_engine=lambda _: ready.append(time.perf_counter())))
        wall = time.perf_counter() - ready[0]
        events = list(RunFolder(summary.run_dir).reader().events(kinds={"model_call", "model_retry", "model_fallback"}))
        calls = [e for e in events if e.kind == "model_call" and not e.cached]
    evaluated = sum(c.prompt_tokens - c.prompt_tokens_reused for c in calls)
    generated = sum(c.completion_tokens for c in calls)
    return {"wall_s": wall, "model_s": backend.seconds, "calls": len(calls), "responses": [c.response for c in calls],
            "prompt_tokens": sum(c.prompt_tokens for c in calls), "evaluated": evaluated, "generated": generated,
            "retries": sum(e.kind == "model_retry" for e in events),
            "fallbacks": sum(e.kind == "model_fallback" for e in events), "requests": backend.requests, "prefixes": getattr(backend.inner, "prefixes", None)}


def paired(requests: list[ModelRequest]) -> dict:
    """Each request on the old path and the new (fresh backends: the new one starts cold, as the town run did),
    the order flipped every call; model seconds and whether the text was equal."""
    old, new = build_backend("embedded?prefix_mb=0"), build_backend("embedded")
    seconds = {"old": 0.0, "new": 0.0}
    same = True

    async def timed(name: str, backend: Backend, request: ModelRequest) -> str:
        started = time.perf_counter()
        reply = await backend.generate(request)
        seconds[name] += time.perf_counter() - started
        return reply.text

    async def replay() -> None:
        nonlocal same
        for number, request in enumerate(requests):
            order = [("old", old), ("new", new)][:: 1 if number % 2 == 0 else -1]
            texts = [await timed(name, backend, request) for name, backend in order]
            same = same and texts[0] == texts[1]

    asyncio.run(replay())
    return {"model_s_old": round(seconds["old"], 1), "model_s_new": round(seconds["new"], 1),
            "speedup": round(seconds["old"] / seconds["new"], 2), "same_text": same}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=float, default=1.0, help="Simulated hours of the demo town.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    scenario = load_scenario(SCENARIO)
    old = town_hours(scenario, "embedded?prefix_mb=0", args.hours)
    new = town_hours(scenario, "embedded", args.hours)
    result = {
        "benchmark": "embedded_throughput", "scenario": scenario.name, "sim_hours": args.hours,
        "python": platform.python_version(), "machine": platform.machine(),
        "calls": new["calls"], "same_text": old["responses"] == new["responses"],
        "wall_s_old": round(old["wall_s"], 1), "wall_s_new": round(new["wall_s"], 1),
        "speedup": round(old["wall_s"] / new["wall_s"], 2),
        "model_s_old": round(old["model_s"], 1), "model_s_new": round(new["model_s"], 1),
        "prompt_tokens_per_call": round(new["prompt_tokens"] / max(new["calls"], 1), 1),
        "prompt_tokens_evaluated_per_call": {"old": round(old["evaluated"] / max(old["calls"], 1), 1),
                                             "new": round(new["evaluated"] / max(new["calls"], 1), 1)},
        "completion_tokens": new["generated"], "retries": new["retries"], "fallbacks": new["fallbacks"],
        "prefixes": new["prefixes"].counters.model_dump() if new["prefixes"] is not None else None,
        "paired": paired(new["requests"]),
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()
