"""Model answers keyed by the full request, in SQLite inside the run folder (record, then replay)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from agents.gateway.types import ModelReply

#: read_write serves hits and records misses; replay serves hits and refuses to call a model.
CacheMode = Literal["read_write", "replay"]


class CachedAnswer(BaseModel):
    """One cache row as it travels between processes; `reply` is the stored `ModelReply` JSON."""

    key: str
    model: str
    reply: str


class RequestCache:
    """Durable request → reply map; writes commit at `commit` (the engine's tick boundary) or on close."""

    def __init__(self, path: Path, mode: CacheMode = "read_write") -> None:
        self.path = path
        self.mode = mode
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, model TEXT NOT NULL, reply TEXT NOT NULL, "
            "inherited INTEGER NOT NULL DEFAULT 0)"
        )
        if "inherited" not in {row[1] for row in self._db.execute("PRAGMA table_info(replies)")}:
            self._db.execute("ALTER TABLE replies ADD COLUMN inherited INTEGER NOT NULL DEFAULT 0")  # older caches
        self._db.commit()
        #: An empty cache at open answers only what this process put in: no need to ask SQLite for misses.
        self._was_empty = self._db.execute("SELECT 1 FROM replies LIMIT 1").fetchone() is None
        self._put: set[str] = set()

    def get(self, key: str) -> tuple[ModelReply, bool] | None:
        """The reply, and whether it came with a copy of another run's cache (so this run never paid for it)."""
        if self._was_empty and key not in self._put:
            return None
        row = self._db.execute("SELECT reply, inherited FROM replies WHERE key = ?", (key,)).fetchone()
        return (ModelReply.model_validate_json(row[0]), bool(row[1])) if row else None

    def put(self, key: str, model: str, reply: ModelReply) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO replies (key, model, reply, inherited) VALUES (?, ?, ?, 0)",
            (key, model, reply.model_dump_json()),
        )
        self._put.add(key)

    def entries(self) -> list[CachedAnswer]:
        """Every answer this cache holds: what a batch's worker hands back to the batch's own cache."""
        rows = self._db.execute("SELECT key, model, reply FROM replies WHERE inherited = 0").fetchall()
        return [CachedAnswer(key=key, model=model, reply=reply) for key, model, reply in rows]

    def add(self, entries: list[CachedAnswer]) -> None:
        """Answers another process recorded, kept as this run's own (it paid for them)."""
        self._db.executemany("INSERT OR REPLACE INTO replies (key, model, reply, inherited) VALUES (?, ?, ?, 0)",
                             [(e.key, e.model, e.reply) for e in entries])
        if entries:
            self._was_empty = False

    def commit(self) -> None:
        """Make every answer so far durable; one commit a tick costs far less than one a call."""
        self._db.commit()

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]

    def close(self) -> None:
        self._db.commit()
        self._db.close()


def copy_cache(source: Path, target: Path) -> None:
    """Copy a cache with SQLite's backup API, which includes answers still in a crashed run's WAL; the copy's
    answers are marked inherited: the run that uses them did not pay for them."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    RequestCache(target).close()  # a copy of an older cache gains its `inherited` column here
    with sqlite3.connect(target) as dst:
        dst.execute("UPDATE replies SET inherited = 1")
