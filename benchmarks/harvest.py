"""Harvest at scale: synthetic run folders holding N conversations (event logs written directly), harvested with
exact and near-duplicate dedup on. Prints seconds, peak resident memory and conversations per second (--json).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import resource
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from report import emit
from worlds.harvest import HarvestOptions, harvest

NAMES = ["Ann Lee", "Bob Ray", "Cy Moss", "Dee Park", "Eli Stone", "Fay Wong", "Gus Hart", "Ida Bell"]
#: Conversations per run folder: a benchmark of N conversations reads N / RUN_SIZE runs.
RUN_SIZE = 10_000
#: Every 20th conversation copies an earlier one exactly, every 20th with a word changed: dedup has work to do.
COPY_EVERY = 20
START = datetime(2023, 2, 13, 8)


def scenario(name: str) -> dict:
    homes = {f"{n.split()[0]}'s flat": ["bed"] for n in NAMES}
    return {
        "name": name, "seed": 1, "models": {"default": "fake", "embeddings": "fake"}, "memory": {"store": "memory"},
        "clock": {"start": START.isoformat(), "step": "10m", "stop": (START + timedelta(days=30)).isoformat()},
        "world": {"places": {"Town": {"Cafe": ["counter"], **homes}}},
        "agents": [{"name": n, "age": 30, "traits": "kind", "persona": f"{n} lives in town.",
                    "home": f"{n.split()[0]}'s flat"} for n in NAMES],
    }


def sentence(rng: random.Random, vocabulary: list[str]) -> str:
    return " ".join(rng.choices(vocabulary, k=rng.randint(6, 18))).capitalize() + "."


def write_run(folder: Path, run: int, conversations: int, rng: random.Random, vocabulary: list[str]) -> None:
    """One run folder: its scenario and a log of `conversations` talks, one per tick, each closed by its tick."""
    folder.mkdir(parents=True)
    (folder / "scenario.yaml").write_text(yaml.safe_dump(scenario("bench-town")))
    seq = 0
    kept: list[list[str]] = []

    def line(record: dict) -> str:
        nonlocal seq
        record["seq"] = seq
        seq += 1
        return json.dumps(record, separators=(",", ":")) + "\n"

    with (folder / "events.jsonl").open("w", encoding="utf-8") as log:
        log.write(line({"kind": "run_started", "tick": 0, "sim_time": START.isoformat(), "run_id": folder.name,
                        "scenario": "bench-town", "seed": 1, "model": "fake",
                        "until": (START + timedelta(days=30)).isoformat()}))
        for tick in range(conversations):
            when = (START + timedelta(minutes=tick)).isoformat()
            pair = rng.sample(NAMES, 2)
            cid = f"c{run}-{tick}"
            if kept and tick % COPY_EVERY == 0:
                texts = list(rng.choice(kept))
            elif kept and tick % COPY_EVERY == 1:
                texts = list(rng.choice(kept))
                texts[0] = texts[0].replace(texts[0].split()[1], "indeed", 1)
            else:
                texts = [sentence(rng, vocabulary) for _ in range(rng.randint(4, 8))]
                kept = (kept + [texts])[-200:]
            base = {"tick": tick, "sim_time": when, "agents": pair}
            log.write(line({"kind": "conversation_started", **base, "conversation_id": cid, "place": "Cafe"}))
            for number, text in enumerate(texts):
                log.write(line({"kind": "utterance", **base, "conversation_id": cid, "speaker": pair[number % 2],
                                "place": "Cafe", "text": text}))
            log.write(line({"kind": "conversation_ended", **base, "conversation_id": cid, "place": "Cafe",
                            "reason": "farewell", "lines": len(texts)}))
            log.write(line({"kind": "tick", **base, "agents": [], "positions": {n: "Cafe" for n in pair}}))
        log.write(line({"kind": "run_ended", "tick": conversations, "sim_time": START.isoformat(),
                        "status": "completed", "ticks": conversations}))


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--no-dedup", action="store_true", help="Harvest without dedup (memory then stays flat).")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = random.Random(7)
    vocabulary = [f"{a}{b}" for a in ("ba", "ko", "mi", "ru", "te", "lo", "shi", "na", "po", "vu")
                  for b in ("n", "ll", "rt", "sk", "mp", "de", "ga", "zo", "x", "th", "ber", "cal")] * 3
    vocabulary = [w + s for i, w in enumerate(vocabulary) for s in ("", "s", "ed", "ing")[i % 4:i % 4 + 1]]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        runs = []
        for run in range(max(1, -(-args.conversations // RUN_SIZE))):
            size = min(RUN_SIZE, args.conversations - run * RUN_SIZE)
            runs.append(root / "runs" / f"bench-{run:03d}")
            write_run(runs[-1], run, size, rng, vocabulary)
        log_mb = sum((r / "events.jsonl").stat().st_size for r in runs) / 2**20
        (root / "out").mkdir()
        before_mb = _peak_rss_mb()
        started, cpu = time.perf_counter(), time.process_time()
        report = harvest(runs, "openai", root / "out" / "corpus.jsonl", HarvestOptions(dedup=not args.no_dedup))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    emit({
        "conversations": args.conversations, "runs": len(runs), "log_mb": round(log_mb, 1),
        "kept": report.kept, "exact_duplicates": report.removed.get("exact duplicate", 0),
        "near_duplicates": report.removed.get("near duplicate", 0),
        "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "conversations_per_s": round(args.conversations / seconds),
        "peak_rss_mb": _peak_rss_mb(), "peak_rss_growth_mb": round(_peak_rss_mb() - before_mb, 1),
        "python": platform.python_version(),
    }, args.json)


if __name__ == "__main__":
    main()
