"""The append-only JSONL event log: durable at tick boundaries, read as a filtered stream."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from memory.errors import InputError
from worlds.events import EVENT_ADAPTER, LOG_FORMAT, Event, EventBase

EVENTS_FILE = "events.jsonl"
#: Records that end a unit the engine writes and syncs at once: a tick, or the run's closing block.
_CLOSING_KINDS = frozenset({"tick", "run_ended", "batch_unit"})
#: Hears `(line_number, why)` for each line of a log that is not a record.
SkipHook = Callable[[int, str], None]


class LogExtent(NamedTuple):
    """Whole records in a log, and how many of them from the start belong to closed units."""

    complete: int
    total: int


class LogFormatError(InputError):
    """A log this simulacra may misread: written by a newer one, or with a damaged `log_format` field."""


def check_log_format(path: Path) -> None:
    """Refuse a log whose `run_started` (its first record) names a newer format, or a malformed one; a log without
    one is format 1."""
    try:
        with path.open("rb") as handle:
            first = json.loads(handle.readline() or b"{}")
    except (OSError, ValueError):
        return  # unreadable or not JSON: the reader that follows reports it, by line
    version = first.get("log_format", 1) if isinstance(first, dict) and first.get("kind") == "run_started" else 1
    if not isinstance(version, int) or isinstance(version, bool):
        raise LogFormatError(f"{path}:1: log_format: {json.dumps(version)} is malformed (a whole number is expected; "
                             "the log was edited or damaged)")
    if version > LOG_FORMAT:
        raise LogFormatError(f"{path}: written by a newer simulacra (log format {version}, this one reads up to "
                             f"{LOG_FORMAT})")


def read_records(path: Path, on_skip: SkipHook, wanted: Callable[[str], bool] = lambda line: True) -> Iterator[dict]:
    """The log's records in order, parsing only the lines `wanted` passes; a line that is not a record (a corrupted
    one, or a torn last line left by a crash) is skipped and told to `on_skip`, so one bad byte never costs the rest."""
    with path.open("r", encoding="utf-8", errors="replace", newline="\n") as handle:
        for number, line in enumerate(handle, 1):
            if not line.endswith("\n"):
                on_skip(number, "the last line was cut off (a crash while writing it)")
                return
            if not wanted(line):
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                on_skip(number, f"not a JSON record ({exc.msg})")
                continue
            if not isinstance(record, dict) or "kind" not in record:
                on_skip(number, "not an event record")
                continue
            yield record


def _kind(line: bytes) -> str | None:
    """A record's kind; None for a line that is not a record (a corrupted one), which closes nothing."""
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return record.get("kind") if isinstance(record, dict) else None


class EventWriter:
    """Numbers events, stamps wall time, and makes each finished tick durable with fsync."""

    def __init__(self, path: Path, next_seq: int = 0) -> None:
        self.path = path
        self.next_seq = next_seq
        self._file = path.open("a", encoding="utf-8")

    @classmethod
    def reopen(cls, path: Path) -> EventWriter:
        """Carry on an existing log: cut what follows its last closed unit (a crash's leftovers), number on."""
        keep = offset = records = kept_records = 0
        with path.open("rb") as handle:
            for line in handle:
                if not line.endswith(b"\n"):
                    break
                offset += len(line)
                records += 1
                if _kind(line) in _CLOSING_KINDS:
                    keep, kept_records = offset, records
        with path.open("r+b") as handle:
            handle.truncate(keep)
        return cls(path, next_seq=kept_records)

    @classmethod
    def cut_at(cls, path: Path, records: int) -> tuple[EventWriter, int, bool]:
        """Carry on a log from its first `records` records: the writer, how many whole records were cut, and
        whether a torn last line (a crash mid-write) was among what went."""
        offset = kept = dropped = 0
        torn = False
        with path.open("rb") as handle:
            for line in handle:
                if not line.endswith(b"\n"):
                    torn = True
                    break
                if kept < records:
                    offset += len(line)
                    kept += 1
                else:
                    dropped += 1
        if kept < records:
            raise InputError(f"{path}: the log holds {kept} whole records, fewer than the {records} its snapshot "
                             "had seen: it was cut by something other than a crash, and cannot be resumed")
        with path.open("r+b") as handle:
            handle.truncate(offset)
        return cls(path, next_seq=records), dropped, torn

    def number(self, events: Iterable[EventBase]) -> None:
        """Give events their log position now, so memories can cite them before they are written."""
        for event in events:
            if event.seq < 0:
                event.seq = self.next_seq
                event.wall_time = datetime.now(timezone.utc)
                self.next_seq += 1

    def write(self, events: list[EventBase]) -> None:
        self.number(events)
        for event in events:
            self._file.write(event.model_dump_json() + "\n")

    def sync(self) -> None:
        """Call at a tick boundary: what was written survives a crash."""
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self.sync()
        self._file.close()


class EventReader:
    """Streams events from a log, skipping (and telling `on_skip`, once per line) what is not a record."""

    def __init__(self, path: Path, on_skip: SkipHook | None = None) -> None:
        self.path = path
        self.on_skip = on_skip
        self._told: set[int] = set()

    def raw(self) -> Iterator[dict]:
        """Each record as a plain dict, in log order."""
        return read_records(self.path, self._skipped)

    def _skipped(self, number: int, why: str) -> None:
        """A reader makes several passes over its log; each bad line is reported on the first."""
        if self.on_skip is not None and number not in self._told:
            self._told.add(number)
            self.on_skip(number, why)

    def events(self, kinds: set[str] | None = None, complete_ticks_only: bool = False) -> Iterator[Event]:
        """Typed events of the given kinds in log order; `complete_ticks_only` keeps the closed ones (see `extent`)."""
        stop = self.extent().complete if complete_ticks_only else None
        for position, record in enumerate(self.raw()):
            if position == stop:
                return
            if kinds is None or record["kind"] in kinds:
                yield EVENT_ADAPTER.validate_python(record)

    def extent(self) -> LogExtent:
        """How much of the log is closed: a tick is closed by its `tick` event, the run's ending by `run_ended`.

        The engine writes each tick, and the run's closing block (conversations cut off, then
        `run_ended`), as a unit ended by that record; whatever follows the last one is a unit a crash
        interrupted.
        """
        complete = total = 0
        for record in self.raw():
            total += 1
            if record["kind"] in _CLOSING_KINDS:
                complete = total
        return LogExtent(complete=complete, total=total)

    def last_complete_tick(self) -> int:
        """The highest tick whose closing `tick` event reached the disk (-1 if none did)."""
        last = -1
        for record in self.raw():
            if record["kind"] == "tick":
                last = record["tick"]
        return last
