"""Events chosen from a log by agent, kind, sim time, text or conversation, read as a stream of lines.

Each filter is first tried on the raw line (a substring test, no JSON parsing), so that a query
over a million events parses only the lines that can match; a line that passes is then parsed and
checked exactly. Memory stays flat however long the log. A line that is not JSON (a corrupted
record in the middle of a log) is skipped, and reported by its line number.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from worlds.eventlog import SkipHook, read_records


def _texts(value: object) -> Iterator[str]:
    """Every string value inside an event (not its keys)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def _moment(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


class EventFilter(BaseModel):
    """What to keep; every field left empty keeps everything."""

    agents: list[str] = Field(default_factory=list)
    kinds: list[str] = Field(default_factory=list)
    start: datetime | None = None
    end: datetime | None = None
    grep: str | None = None
    dialogue: str | None = None  # a conversation or session id

    def quick(self, line: str) -> bool:
        """A cheap test on the raw line that every matching event passes (false positives are fine)."""
        if self.agents and not any(json.dumps(name, ensure_ascii=False)[1:-1] in line for name in self.agents):
            return False
        if self.kinds and not any(f'"kind":"{kind}"' in line for kind in self.kinds):
            return False
        if self.grep and self._grep_quick not in line.lower():
            return False
        return not (self.dialogue and json.dumps(self.dialogue, ensure_ascii=False) not in line)

    @property
    def _grep_quick(self) -> str:
        """The text as the log writes it (quotes, backslashes and newlines escaped)."""
        return json.dumps((self.grep or "").lower(), ensure_ascii=False)[1:-1]

    def exact(self, event: dict) -> bool:
        if self.agents and not set(self.agents) & set(event.get("agents") or []) and \
                event.get("speaker") not in self.agents:
            return False
        if self.kinds and event.get("kind") not in self.kinds:
            return False
        if self.start is not None or self.end is not None:
            when = _moment(event.get("sim_time") or "")
            if when is None or (self.start and when < self.start) or (self.end and when > self.end):
                return False
        if self.dialogue and self.dialogue not in (event.get("conversation_id"), event.get("session_id")):
            return False
        if self.grep and not any(self.grep.lower() in text.lower() for text in _texts(event)):
            return False
        return True


def select(path: Path, chosen: EventFilter, on_skip: SkipHook) -> Iterator[dict]:
    """The chosen events in log order; `on_skip(line_number, why)` for each line that is not a record."""
    for event in read_records(path, on_skip, chosen.quick):
        if chosen.exact(event):
            yield event
