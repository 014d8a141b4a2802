"""Scored top-10 retrieval latency and insert throughput for one agent with N memories.

Prints one JSON object with --json. Retrieval runs on one core (BLAS threads pinned to 1).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from memory import (  # noqa: E402
    ChromaStore,
    FakeHashEmbeddings,
    InMemoryStore,
    MemoryRecord,
    MemoryStream,
)

DIM = 384
T0 = datetime(2023, 1, 1)


async def _unused_scorer(agent: str, texts: list[str], trace: object) -> list[int]:
    raise AssertionError("the benchmark inserts scored records directly")


def make_records(start: int, count: int, rng: np.random.Generator) -> tuple[list[MemoryRecord], np.ndarray]:
    vectors = rng.standard_normal((count, DIM), dtype=np.float32)
    importance = rng.integers(1, 11, size=count)
    records = [
        MemoryRecord(
            id=f"bench#{start + i}", agent="bench", kind="observation", text=f"memory {start + i}",
            created=T0 + timedelta(minutes=start + i), last_accessed=T0 + timedelta(minutes=start + i),
            importance=int(importance[i]),
        )
        for i in range(count)
    ]
    return records, vectors


def measure_inserts(sample: int, per_flush: int, rng: np.random.Generator, store_kind: str) -> float:
    """Records/s through MemoryStream.insert and the store's flush (embeddings precomputed, so excluded).

    Records arrive 10 at a time (one agent's commit); the store is flushed every `per_flush` records (a tick).
    """
    with tempfile.TemporaryDirectory() as folder:
        store = ChromaStore(Path(folder)) if store_kind == "chroma" else InMemoryStore()
        stream = MemoryStream("bench", store, FakeHashEmbeddings(), _unused_scorer)
        records, vectors = make_records(0, sample, rng)
        started = time.perf_counter()
        for i in range(0, sample, 10):
            stream.insert(records[i : i + 10], vectors[i : i + 10])
            if (i + 10) % per_flush == 0:
                store.flush()
        store.flush()
        return sample / (time.perf_counter() - started)


def measure_retrieval(n: int, queries: int, rng: np.random.Generator, folder: Path) -> dict[str, float]:
    """p50/p95 of MemoryStream.retrieve_by_vector (scoring, top-k, access update) over n bulk-indexed memories."""
    stream = MemoryStream("bench", ChromaStore(folder), FakeHashEmbeddings(), _unused_scorer)
    chunk = 100_000
    for start in range(0, n, chunk):
        records, vectors = make_records(start, min(chunk, n - start), rng)
        stream.index_records(records, vectors)
    now = T0 + timedelta(minutes=n + 60)
    latencies = []
    for _ in range(queries):
        query = rng.standard_normal(DIM, dtype=np.float32)
        started = time.perf_counter()
        stream.retrieve_by_vector("benchmark query", query, now, k=10)
        latencies.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": float(np.percentile(latencies, 50)), "p95_ms": float(np.percentile(latencies, 95))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000, help="memories of the one agent")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--insert-sample", type=int, default=20_000, help="records inserted to time inserts")
    parser.add_argument("--store", choices=["chroma", "memory"], default="chroma", help="store for the insert timing")
    parser.add_argument("--per-flush", type=int, default=5000, help="records per store flush (a bulk load)")
    parser.add_argument("--small-flush", type=int, default=50, help="records per store flush (a busy tick)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        retrieval = measure_retrieval(args.n, args.queries, rng, Path(folder))
    sample = min(args.n, args.insert_sample)
    result = {
        "n": args.n,
        **{k: round(v, 3) for k, v in retrieval.items()},
        "insert_per_s": round(measure_inserts(sample, args.per_flush, rng, args.store)),
        "insert_per_flush": args.per_flush,
        "insert_per_s_small_flush": round(measure_inserts(min(sample, 5000), args.small_flush, rng, args.store)),
        "small_flush": args.small_flush,
        "insert_store": args.store,
        "insert_sample": sample,
        "queries": args.queries,
        "k": 10,
        "threads": 1,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"memory retrieval, n={args.n:,}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, str(value))
    Console().print(table)


if __name__ == "__main__":
    main()
