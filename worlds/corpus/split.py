"""A train/test split that depends only on each dialogue's identity, so the same input always splits the same way."""

from __future__ import annotations

import hashlib
from pathlib import Path


def held_out(run: str, key: str, fraction: float) -> bool:
    """Whether the dialogue `key` of `run` falls in the test share: a hash of both, read as a number in [0, 1)."""
    if fraction <= 0:
        return False
    digest = hashlib.sha256(f"{run}\n{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def held_out_path(path: Path) -> Path:
    """Where the test share goes: `corpus.jsonl` → `corpus.test.jsonl`, `data.parquet` → `data.test.parquet`."""
    return path.with_name(f"{path.stem}.test{path.suffix}")
