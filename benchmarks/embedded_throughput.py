"""The demo town on the embedded model the old way (one call at a time, llama-cpp-python's own chat
completion, nothing kept between calls) and the new (the batched decoder: concurrent calls share each
decode step, prompt prefixes kept, grammars checked lazily), plus llama-batched-bench's measurement
through the same llama.cpp library, to compare the decoder's generation speed with what the
hardware gives. Prints one JSON object with --json.

Town wall times drift by 10-20 % on a shared machine and the two runs need not ask the same
requests (batched calls may word an answer differently, and a different plan changes the day), so
the new run's requests are also replayed one by one on the old path and on the decoder with one
sequence, alternating: `paired`, the gain per call without any batching.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from report import emit
from agents.gateway import build_backend
from agents.gateway.backends import llamacpp
from agents.gateway.backends.base import Backend
from agents.gateway.backends.gguf_assembly import assembled_path
from agents.gateway.backends.llama_batch import Job
from agents.gateway.types import ModelReply, ModelRequest, joined_system_turns
from worlds.runfolder import RunFolder
from worlds.runner import execute_run
from worlds.scenario import Scenario, load_scenario
from timed_backend import Timed

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "valentines.yaml"
#: llama-batched-bench's shape in the issue: 256-token prompts, 64 generated tokens, these batch sizes.
PROMPT_TOKENS, GENERATED_TOKENS, BATCHES = 256, 64, (1, 4, 8)


class OldPath(Backend):
    """The embedded backend as it was before batching: one call at a time through `create_chat_completion`,
    the context emptied before each (so nothing carries over), the JSON grammar applied to every token."""

    def __init__(self) -> None:
        self.name = "embedded:old-path"
        self.max_in_flight = 1
        self.timeout_s = 600.0
        self.llm = llamacpp._load(assembled_path(), 4096)
        self.lock = threading.Lock()
        self.logprobs = build_backend("embedded?parallel=1")  # first-token log-probabilities: the same either way

    def _generate(self, request: ModelRequest) -> ModelReply:
        kwargs: dict[str, Any] = {}
        if request.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
        messages = [m.model_dump() for m in request.messages]
        if llamacpp._tokens_if_rendered(self.llm, messages) is None:
            messages = [m.model_dump() for m in joined_system_turns(request.messages)]
        with self.lock:
            self.llm.reset()
            self.llm._ctx.kv_cache_clear()
            out = self.llm.create_chat_completion(messages=messages, temperature=request.temperature,
                                                  max_tokens=request.max_tokens, seed=request.seed, **kwargs)
        usage = out["usage"]
        return ModelReply(text=out["choices"][0]["message"]["content"] or "", prompt_tokens=usage["prompt_tokens"],
                          completion_tokens=usage["completion_tokens"])

    async def generate(self, request: ModelRequest) -> ModelReply:
        if request.options is not None:
            return await self.logprobs.generate(request)
        return await asyncio.to_thread(self._generate, request)


class Recording(Timed):
    """Keeps every request, in the order the run asked them."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.requests: list[ModelRequest] = []

    async def generate(self, request: ModelRequest) -> ModelReply:
        self.requests.append(request)
        return await super().generate(request)


def town_hours(scenario: Scenario, model: str | Backend, hours: float) -> dict:
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
    return {"wall_s": round(wall, 1), "calls": len(calls), "prompt_tokens": sum(c.prompt_tokens for c in calls),
            "prompt_tokens_evaluated_per_call": round(evaluated / max(len(calls), 1), 1),
            "completion_tokens": generated, "s_per_call": round(wall / max(len(calls), 1), 2),
            "retries": sum(e.kind == "model_retry" for e in events),
            "fallbacks": sum(e.kind == "model_fallback" for e in events), "requests": backend.requests,
            "prefixes": prefixes.counters.model_dump() if (prefixes := getattr(backend.inner, "prefixes", None)) else None}


def paired(requests: list[ModelRequest]) -> dict:
    """Each request on the old path and on the decoder with one sequence, the order flipped every call."""
    old, new = OldPath(), build_backend("embedded?parallel=1")
    seconds = {"old": 0.0, "new": 0.0}

    async def timed(name: str, backend: Backend, request: ModelRequest) -> None:
        started = time.perf_counter()
        await backend.generate(request)
        seconds[name] += time.perf_counter() - started

    async def replay() -> None:
        for number, request in enumerate(requests):
            for name, backend in [("old", old), ("new", new)][:: 1 if number % 2 == 0 else -1]:
                await timed(name, backend, request)

    asyncio.run(replay())
    return {"calls": len(requests), "model_s_old": round(seconds["old"], 1), "model_s_new": round(seconds["new"], 1),
            "speedup": round(seconds["old"] / seconds["new"], 2)}


def batched_bench() -> dict:
    """llama-batched-bench's two figures through the same library (no sampling), and the decoder's own S_TG."""
    import llama_cpp

    llm = llamacpp._load(assembled_path(), 4096)
    threads = max(1, os.cpu_count() or 1)
    raw: dict[str, dict[str, float]] = {}
    for parallel in BATCHES:
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = (PROMPT_TOKENS + GENERATED_TOKENS) * parallel
        params.n_batch = params.n_ubatch = 512
        params.n_seq_max, params.kv_unified = parallel, False
        params.n_threads = params.n_threads_batch = threads
        ctx = llama_cpp.llama_init_from_model(llm._model.model, params)
        batch = llama_cpp.llama_batch_init(max(512, parallel), 0, 1)

        def decode(rows: list[tuple[int, int, int]], every_row: bool) -> None:
            batch.n_tokens = len(rows)
            for i, (token, position, seq) in enumerate(rows):
                batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, position, 1
                batch.logits[i] = every_row or i == len(rows) - 1
                batch.seq_id[i][0] = seq
            if llama_cpp.llama_decode(ctx, batch) != 0:
                raise RuntimeError("llama_decode failed")

        started = time.perf_counter()
        for seq in range(parallel):
            decode([(1000 + k, k, seq) for k in range(PROMPT_TOKENS)], every_row=False)
        prompt_s = time.perf_counter() - started
        started = time.perf_counter()
        for step in range(GENERATED_TOKENS):
            decode([(2000 + step, PROMPT_TOKENS + step, seq) for seq in range(parallel)], every_row=True)
        generation_s = time.perf_counter() - started
        raw[str(parallel)] = {"S_PP": round(PROMPT_TOKENS * parallel / prompt_s, 1),
                              "S_TG": round(GENERATED_TOKENS * parallel / generation_s, 1)}
        llama_cpp.llama_batch_free(batch)
        llama_cpp.llama_free(ctx)
    decoder: dict[str, float] = {}
    story = ("You are a storyteller in a small seaside town. " * 30).strip()
    for parallel in BATCHES:
        backend = build_backend(f"embedded?parallel={parallel}&prefix_mb=0")
        decoding = backend.decoder
        before = decoding.counters.model_copy()
        futures = []
        for seq in range(parallel):
            tokens = llm.tokenize(f"{story} Tell story number {seq} at length.".encode())[:PROMPT_TOKENS]
            futures.append(decoding.submit(Job(tokens=tokens, prefix=(), max_tokens=GENERATED_TOKENS,
                                               temperature=0.8, seed=seq)))
        for future in futures:
            future.result()
        after = decoding.counters
        seconds = after.generation_only_s - before.generation_only_s
        decoder[str(parallel)] = round((after.generation_only_tokens - before.generation_only_tokens) / seconds, 1)
    return {"prompt_tokens": PROMPT_TOKENS, "generated_tokens": GENERATED_TOKENS, "same_library": raw,
            "decoder_S_TG": decoder}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=float, default=1.0, help="Simulated hours of the demo town.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    scenario = load_scenario(SCENARIO)
    old = town_hours(scenario, OldPath(), args.hours)
    new = town_hours(scenario, "embedded", args.hours)
    default = build_backend("embedded")
    decoded = default.decoder.counters.model_copy()  # the town's steps, before the bench below shares the decoder
    bench = batched_bench()
    parallel = str(default.parallel)
    result = {
        "benchmark": "embedded_throughput", "scenario": scenario.name, "sim_hours": args.hours,
        "python": platform.python_version(), "machine": platform.machine(), "parallel": default.parallel,
        "wall_s_old": old["wall_s"], "wall_s_new": new["wall_s"],
        "speedup": round(old["wall_s"] / new["wall_s"], 2),
        "old": {k: v for k, v in old.items() if k not in ("requests", "prefixes")},
        "new": {k: v for k, v in new.items() if k != "requests"},
        "prompt_tokens_evaluated_per_call": {"old": old["prompt_tokens_evaluated_per_call"],
                                             "new": new["prompt_tokens_evaluated_per_call"]},
        "decoder": decoded.model_dump(),
        "paired": paired(new["requests"]),
        "batched_bench": bench,
        "tokens_per_s_generated": bench["decoder_S_TG"][parallel],
        "tokens_per_s_generated_vs_batched_bench": round(bench["decoder_S_TG"][parallel]
                                                         / bench["same_library"][parallel]["S_TG"], 2),
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()
