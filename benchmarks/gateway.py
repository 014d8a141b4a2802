"""What the model gateway costs: embedded tokens/s with and without it, and how well it fills an in-flight limit.

    python benchmarks/gateway.py --json          # one JSON object on stdout
    python benchmarks/gateway.py                 # a small table
    python benchmarks/gateway.py --skip-embedded # the fake-backend part only (seconds)

Goals: the gateway costs < 10% of llama-cpp-python's own speed, and N fake calls under an
in-flight limit L finish within 1/0.9 of the ideal ceil(N/L) * latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.gateway import (  # noqa: E402
    CallScope,
    ChatMessage,
    ModelCallRecord,
    ModelGateway,
    build_backend,
)

OVERHEAD_GOAL_PCT = 10.0
EFFICIENCY_GOAL = 0.9

SYSTEM = "You are a villager in a small seaside town. Answer in a friendly, chatty way."
PROMPTS = [
    "Describe your favourite morning routine in about a hundred words.",
    "Tell a neighbour about the new bakery that opened on the main street.",
    "Explain to a visitor how to get from the harbour to the old lighthouse.",
    "Share some gossip about the upcoming summer festival with a friend.",
    "Describe the weather this week and how it changed your plans.",
]


def _messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def direct_call(llm: Any, prompt: str, max_tokens: int, temperature: float, seed: int, fresh: bool) -> int:
    """llama-cpp-python alone; `fresh` drops the cached prompt first, as the gateway's backend does."""
    if fresh:
        llm.reset()
    out = llm.create_chat_completion(messages=_messages(prompt), max_tokens=max_tokens, temperature=temperature, seed=seed)
    return out["usage"]["completion_tokens"]


async def gateway_call(gateway: ModelGateway, prompt: str, max_tokens: int, temperature: float, seed: int) -> int:
    """The same prompt through ModelGateway.complete (no cache); tokens from the emitted call record."""
    records: list[Any] = []
    messages = [ChatMessage(role="system", content=SYSTEM), ChatMessage(role="user", content=prompt)]
    scope = CallScope("bench", seed, records.append)
    await gateway.complete(messages, purpose="bench", temperature=temperature, max_tokens=max_tokens, scope=scope)
    return sum(r.completion_tokens for r in records if isinstance(r, ModelCallRecord))


PATHS = ("direct", "direct_fresh", "gateway")


def run_embedded(args: argparse.Namespace) -> dict[str, Any]:
    from agents.gateway.backends import llamacpp

    # Drafts off: the direct path decodes a token a step, and this measures the gateway, not the decoder's drafts
    # (benchmarks/embedded_throughput.py measures those).
    backend = build_backend(f"embedded?n_ctx={args.n_ctx}&draft=0")
    # The backend's loader builds exactly Llama(model_path=assembled_path(), n_ctx, n_threads=os.cpu_count(),
    # verbose=False) and keeps it in llamacpp._loaded: the direct paths call its create_chat_completion, the
    # gateway path goes through the batched decoder on the same weights (its own context and sampling loop), so
    # since batching the difference between them is the gateway's overhead and the decoder's own speed together.
    llm = llamacpp._load(backend.path, args.n_ctx)
    gateway = ModelGateway(backend, cache=None)
    totals = {path: [0, 0.0] for path in PATHS}
    per_round: dict[str, list[float]] = {path: [] for path in PATHS}
    loop = asyncio.new_event_loop()

    def one(path: str, prompt: str, seed: int) -> int:
        # The gateway derives each call's seed from its scope; llama-cpp-python gets that same seed,
        # so all paths sample the same text and so the same number of tokens.
        if path == "gateway":
            return loop.run_until_complete(gateway_call(gateway, prompt, args.max_tokens, args.temperature, seed))
        derived = CallScope(agent="bench", seed=seed).next_seed("bench")
        return direct_call(llm, prompt, args.max_tokens, args.temperature, derived, fresh=path == "direct_fresh")

    try:
        # Warm-up: page the weights in and build the compute graphs once, for every path.
        for path in PATHS:
            one(path, PROMPTS[-1], 0)
        # Each path runs the prompt set as one block (so a call always follows a different prompt,
        # as in real use); the block order rotates every round so drifting machine load evens out.
        for r in range(args.rounds):
            for path in PATHS[r % 3 :] + PATHS[: r % 3]:
                started = time.perf_counter()
                tokens = sum(one(path, prompt, 1000 * r + i) for i, prompt in enumerate(PROMPTS))
                seconds = time.perf_counter() - started
                totals[path][0] += tokens
                totals[path][1] += seconds
                per_round[path].append(round(tokens / seconds, 2))
    finally:
        loop.close()
    speed = {path: tokens / seconds for path, (tokens, seconds) in totals.items()}
    overhead = (speed["direct"] - speed["gateway"]) / speed["direct"] * 100
    result: dict[str, Any] = {
        "model": backend.name,
        "embedded_tokens_per_s_direct": round(speed["direct"], 2),
        "embedded_tokens_per_s_gateway": round(speed["gateway"], 2),
        "gateway_overhead_pct": round(overhead, 2),
        # llama-cpp-python with the prompt cache dropped before each call, as LlamaCppBackend does for
        # reproducible seeds: separates that cost from the gateway's own (threads, records, accounting).
        "embedded_tokens_per_s_direct_fresh": round(speed["direct_fresh"], 2),
        "gateway_overhead_vs_fresh_pct": round(
            (speed["direct_fresh"] - speed["gateway"]) / speed["direct_fresh"] * 100, 2
        ),
        "overhead_goal_met": overhead < OVERHEAD_GOAL_PCT,
    }
    for path, (tokens, seconds) in totals.items():
        result[f"embedded_completion_tokens_{path}"] = tokens
        result[f"embedded_seconds_{path}"] = round(seconds, 3)
    # Tokens/s of each block, in round order: shows how much of a difference is the machine's noise.
    result["embedded_tokens_per_s_by_round"] = per_round
    return result


async def run_fake(n: int, limit: int, latency: float) -> dict[str, Any]:
    backend = build_backend(f"fake?latency={latency}&concurrency={limit}")
    gateway = ModelGateway(backend, cache=None)

    async def one(i: int) -> str:
        message = ChatMessage(role="user", content=f"hello {i}")
        return await gateway.complete([message], purpose="bench", scope=CallScope(f"agent-{i}", i))

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    measured = time.perf_counter() - started
    ideal = math.ceil(n / limit) * latency
    efficiency = ideal / measured
    return {
        "fake_seconds": round(measured, 4),
        "fake_ideal_seconds": round(ideal, 4),
        "fake_concurrency_efficiency": round(efficiency, 4),
        "fake_peak_in_flight": backend.peak_in_flight,
        "efficiency_goal_met": efficiency >= EFFICIENCY_GOAL and backend.peak_in_flight <= limit,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    parser.add_argument("--n", type=int, default=200, help="fake calls to run concurrently")
    parser.add_argument("--limit", type=int, default=20, help="the fake backend's in-flight limit")
    parser.add_argument("--latency", type=float, default=0.2, help="the fake backend's latency in seconds")
    parser.add_argument("--max-tokens", type=int, default=64, help="completion tokens per embedded call")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the prompts, for each path")
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--skip-embedded", action="store_true", help="only the fake-backend measurement")
    args = parser.parse_args(argv)

    result: dict[str, Any] = {
        "benchmark": "gateway",
        "n": args.n,
        "limit": args.limit,
        "latency": args.latency,
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "rounds": args.rounds,
        "n_ctx": args.n_ctx,
        "prompts": len(PROMPTS),
        "python": platform.python_version(),
        "llama_cpp": _package_version("llama_cpp_python"),
        "cpu_count": os.cpu_count(),
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
        "platform": platform.platform(),
        "goals": {"gateway_overhead_pct_below": OVERHEAD_GOAL_PCT, "fake_concurrency_efficiency_min": EFFICIENCY_GOAL},
    }
    if args.skip_embedded:
        result.update(
            {"embedded_tokens_per_s_direct": None, "embedded_tokens_per_s_gateway": None, "gateway_overhead_pct": None}
        )
    else:
        result.update(run_embedded(args))
    result.update(asyncio.run(run_fake(args.n, args.limit, args.latency)))

    if args.json:
        print(json.dumps(result))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="simulacra gateway benchmark")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in (
        "embedded_tokens_per_s_direct", "embedded_tokens_per_s_gateway", "gateway_overhead_pct",
        "embedded_tokens_per_s_direct_fresh", "gateway_overhead_vs_fresh_pct",
        "fake_seconds", "fake_ideal_seconds", "fake_concurrency_efficiency", "fake_peak_in_flight",
    ):
        value = result.get(key)
        table.add_row(key, "skipped" if value is None else str(value))
    caption = (
        f"{len(PROMPTS)} prompts x {args.rounds} rounds, max_tokens={args.max_tokens}; fake: n={args.n}, "
        f"limit={args.limit}, latency={args.latency}s; Python {result['python']}, "
        f"llama-cpp-python {result['llama_cpp']}, {result['cpu_count']} CPUs"
    )
    console = Console()
    console.print(table)
    console.print(caption)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
