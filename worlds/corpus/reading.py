"""A run's log read for a harvest, which makes several streams over one log: where its closed part ends is found
once, and lines of kinds a stream does not ask for are passed over without being parsed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from worlds.eventlog import EventReader, LogExtent
from worlds.events import EVENT_ADAPTER, Event

#: A line that closes a unit names one of these kinds (a cheap test; the record is parsed to be sure).
_CLOSING = re.compile(r'"kind"\s*:\s*"(?:tick|run_ended|batch_unit)"')


class HarvestReader(EventReader):
    """The same events as `EventReader`, for logs read many times over and mostly for a few kinds."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._extent: LogExtent | None = None

    def extent(self) -> LogExtent:
        """Found on the first call and kept: each of the harvest's streams over the log asks for it."""
        if self._extent is None:
            complete = total = 0
            for total, line in enumerate(self._lines(), 1):
                if _CLOSING.search(line) and json.loads(line)["kind"] in ("tick", "run_ended", "batch_unit"):
                    complete = total
            self._extent = LogExtent(complete=complete, total=total)
        return self._extent

    def events(self, kinds: set[str] | None = None, complete_ticks_only: bool = False) -> Iterator[Event]:
        """A line whose text holds none of the kinds asked for (as a JSON string) cannot be one of them."""
        stop = self.extent().complete if complete_ticks_only else None
        quoted = [json.dumps(kind) for kind in kinds] if kinds is not None else None
        for position, line in enumerate(self._lines()):
            if position == stop:
                return
            if quoted is not None and not any(name in line for name in quoted):
                continue
            event = EVENT_ADAPTER.validate_json(line)  # parsing and checking at once, in pydantic's own parser
            if kinds is None or event.kind in kinds:
                yield event

    def _lines(self) -> Iterator[str]:
        """Whole lines in order, without a torn last one (a crash while writing it)."""
        with self.path.open("r", encoding="utf-8") as handle:
            for line in handle:
                if not line.endswith("\n"):
                    return
                yield line
