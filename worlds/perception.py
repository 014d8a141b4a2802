"""What agents notice: a tick's events turned into perceptions for those present, each citing its event."""

from __future__ import annotations

from agents.agent import Perception
from worlds.events import (
    ActivityStarted,
    ConversationEnded,
    EventBase,
    Moved,
    ObjectChanged,
    SessionEnded,
    Utterance,
)


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def perceptions(events: list[EventBase], positions: dict[str, str]) -> dict[str, list[Perception]]:
    """Per agent, what it saw this tick: arrivals, others' actions, object states, overheard talk.

    `positions` are where agents stood before the tick's moves; they are replayed as the events go by.
    """
    where = dict(positions)
    seen: dict[str, list[Perception]] = {name: [] for name in where}

    def present(place: str, *besides: str) -> list[str]:
        return sorted(n for n, p in where.items() if p == place and n not in besides)

    for event in events:
        if isinstance(event, Moved):
            mover = event.agents[0]
            there = present(event.destination, mover)
            company = f"; {_names(there)} {'was' if len(there) == 1 else 'were'} there" if there else ""
            seen[mover].append(Perception(text=f"{mover} arrived at {event.destination}{company}.",
                                          source_event=event.seq))
            for other in there:
                seen[mover].append(Perception(text=f"{other} is at {event.destination}.", source_event=event.seq,
                                              other=other, arrival=True))
                seen[other].append(Perception(text=f"{mover} came to {event.destination}.", source_event=event.seq,
                                              other=mover, arrival=True))
            where[mover] = event.destination
        elif isinstance(event, ActivityStarted) and event.activity == "action":
            actor = event.agents[0]
            for other in present(event.place, actor):
                seen[other].append(Perception(text=f"{actor} is {event.description} at {event.place}.",
                                              source_event=event.seq, other=actor))
        elif isinstance(event, ObjectChanged):
            for other in present(event.place):
                seen[other].append(Perception(text=f"The {event.object} at {event.place} is {event.state}.",
                                              source_event=event.seq))
        elif isinstance(event, Utterance):
            for other in present(event.place, *event.agents):
                listeners = _names([a for a in event.agents if a != event.speaker])
                seen[other].append(Perception(text=f"{event.speaker} said to {listeners}: \"{event.text}\"",
                                              source_event=event.seq, other=event.speaker))
    return seen


def activity_ends(events: list[EventBase]) -> dict[str, int]:
    """The log position of each conversation's or session's end, so the memories it leaves can cite it."""
    ends = {e.conversation_id: e.seq for e in events if isinstance(e, ConversationEnded)}
    return ends | {e.session_id: e.seq for e in events if isinstance(e, SessionEnded)}
