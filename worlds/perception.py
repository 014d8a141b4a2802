"""What agents notice: a tick's events turned into memories, each citing the event it came from."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel

from memory.records import MemoryKind
from worlds.events import ConversationEnded, EventBase, Moved

#: Longest transcript kept in one `chat` memory; the full lines stay in the event log.
TRANSCRIPT_CHARS = 600


class Perception(BaseModel):
    """One memory for one agent, derived from one event."""

    agent: str
    kind: MemoryKind
    text: str
    source_event: int


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def perceive(
    events: list[EventBase], positions_before: dict[str, str], transcripts: dict[str, list[tuple[str, str]]]
) -> Iterator[Perception]:
    """Arrivals are seen by the mover and by whoever is already there; finished talks are remembered by all in them."""
    positions = dict(positions_before)
    for event in events:
        if isinstance(event, Moved):
            mover = event.agents[0]
            present = sorted(n for n, p in positions.items() if p == event.destination and n != mover)
            seen = f"; {_names(present)} {'was' if len(present) == 1 else 'were'} there" if present else ""
            yield Perception(agent=mover, kind="observation", text=f"{mover} went to {event.destination}{seen}.",
                             source_event=event.seq)
            for other in present:
                yield Perception(agent=other, kind="observation", text=f"{mover} came to {event.destination}.",
                                 source_event=event.seq)
            positions[mover] = event.destination
        elif isinstance(event, ConversationEnded):
            said = transcripts.get(event.conversation_id, [])
            for agent in event.agents:
                others = _names([a for a in event.agents if a != agent])
                transcript = " ".join(f"{who}: {text}" for who, text in said)
                if len(transcript) > TRANSCRIPT_CHARS:
                    transcript = transcript[: TRANSCRIPT_CHARS - 1] + "…"
                text = f"{agent} talked with {others} at {event.place}." + (f" {transcript}" if said else "")
                yield Perception(agent=agent, kind="chat", text=text, source_event=event.seq)
