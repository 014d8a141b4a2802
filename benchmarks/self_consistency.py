"""Self-Consistency on arithmetic word problems with known answers: greedy decoding against the majority vote of k
samples. Prints one JSON object with --json.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path

from report import emit
from agents.gateway import ModelGateway, build_backend
from agents.loops.consistency import SelfConsistency, SelfConsistencySetup
from worlds.loopbatch import LoopInput
from worlds.scenario import read_jsonl
from worlds.society.units import run_machine

DATA = Path(__file__).resolve().parent.parent / "scenarios" / "data" / "arithmetic.jsonl"


async def ask(row: LoopInput, gateway: ModelGateway, k: int, greedy: bool, max_tokens: int) -> dict:
    setup = SelfConsistencySetup(session_id=f"{row.id}-{'greedy' if greedy else 'vote'}", seed=1, task=row.text,
                                 k=k, greedy=greedy, expected=str(row.answer), max_tokens=max_tokens)
    loop = SelfConsistency(setup)
    await run_machine(loop, gateway, datetime(2024, 1, 1, 9), timedelta(minutes=2))
    return loop.progress.result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rows = read_jsonl(DATA, LoopInput)[: args.n]
    gateway = ModelGateway(build_backend(args.model))
    started = time.perf_counter()

    async def everything() -> tuple[list[dict], list[dict]]:
        greedy = [await ask(r, gateway, 1, True, args.max_tokens) for r in rows]
        votes = [await ask(r, gateway, args.k, False, args.max_tokens) for r in rows]
        return greedy, votes

    greedy, votes = asyncio.run(everything())
    result = {
        "benchmark": "self_consistency", "n": len(rows), "k": args.k, "model": gateway.model_name,
        "python": platform.python_version(), "machine": platform.machine(),
        "accuracy_greedy": round(sum(bool(g.get("correct")) for g in greedy) / len(rows), 3),
        "accuracy_vote": round(sum(bool(v.get("correct")) for v in votes) / len(rows), 3),
        "agreement_mean": round(statistics.mean(v.get("agreement", 0.0) for v in votes), 3),
        "no_answer_greedy": sum(g.get("answer") is None for g in greedy),
        "no_answer_vote": sum(v.get("answer") is None for v in votes),
        "model_calls": gateway.counters.calls, "fallbacks": gateway.counters.fallbacks,
        "seconds": round(time.perf_counter() - started, 1),
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()
