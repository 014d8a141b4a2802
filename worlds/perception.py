"""What agents notice: a tick's events turned into perceptions for those present, each citing its event."""

from __future__ import annotations

import bisect
from collections import defaultdict

from agents.agent import Perception
from agents.cognition.noticed import arrived, came_to, is_at, overheard
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


class Crowds:
    """Who stands where; in a place with more than `earshot` others, each one notices only its `earshot` nearest.

    People stand in name order around each place (a ring), so "nearest" is fixed, and a look-up costs
    the earshot, not the crowd: perceiving stays linear in the population.
    """

    def __init__(self, positions: dict[str, str], earshot: int) -> None:
        self.where = dict(positions)
        self.earshot = earshot
        self.ring: dict[str, list[str]] = defaultdict(list)
        for name, place in sorted(positions.items()):
            self.ring[place].append(name)

    def move(self, name: str, destination: str) -> None:
        ring = self.ring[self.where[name]]
        del ring[bisect.bisect_left(ring, name)]
        bisect.insort(self.ring[destination], name)
        self.where[name] = destination

    def near(self, place: str, anchor: str | None, *besides: str) -> list[str]:
        """Those at `place` who notice what `anchor` does there (all of them outside a crowd; in one, the anchor
        and its `earshot` nearest), `besides` left out."""
        ring = self.ring[place]
        left_out = set(besides) | ({anchor} if anchor else set())
        others = len(ring) - sum(1 for name in left_out if self.where.get(name) == place)
        if anchor is None or others <= self.earshot:
            return [n for n in ring if n not in besides][: self.earshot if anchor is None else None]
        at = bisect.bisect_left(ring, anchor)
        found: list[str] = [] if anchor in besides else [anchor]
        wanted = len(found) + self.earshot
        for step in range(1, len(ring)):
            for index in (at + step, at - step):
                name = ring[index % len(ring)]
                if name not in besides and name not in found and len(found) < wanted:
                    found.append(name)
            if len(found) == wanted:
                break
        return sorted(found)


def perceptions(events: list[EventBase], positions: dict[str, str], earshot: int) -> dict[str, list[Perception]]:
    """Per agent, what it saw this tick: arrivals, others' actions, object states, overheard talk.

    `positions` are where agents stood before the tick's moves; they are replayed as the events go by.
    """
    crowds = Crowds(positions, earshot)
    seen: dict[str, list[Perception]] = {name: [] for name in positions}
    for event in events:
        if isinstance(event, Moved):
            mover = event.agents[0]
            crowds.move(mover, event.destination)
            there = crowds.near(event.destination, mover, mover)
            more = len(crowds.ring[event.destination]) - 1 - len(there)
            company = ""
            if there:
                listed = _names(there + ([f"{more} {'other' if more == 1 else 'others'}"] if more else []))
                company = f"; {listed} {'was' if len(there) + more == 1 else 'were'} there"
            seen[mover].append(Perception(text=arrived(mover, event.destination, company),
                                          source_event=event.seq))
            for other in there:
                seen[mover].append(Perception(text=is_at(other, event.destination), source_event=event.seq,
                                              other=other, arrival=True))
                seen[other].append(Perception(text=came_to(mover, event.destination), source_event=event.seq,
                                              other=mover, arrival=True))
        elif isinstance(event, ActivityStarted) and event.activity == "action":
            actor = event.agents[0]
            for other in crowds.near(event.place, actor, actor):
                seen[other].append(Perception(text=f"{actor} is {event.description} at {event.place}.",
                                              source_event=event.seq, other=actor))
        elif isinstance(event, ObjectChanged):
            for other in crowds.near(event.place, next(iter(event.agents), None)):
                seen[other].append(Perception(text=f"The {event.object} at {event.place} is {event.state}.",
                                              source_event=event.seq))
        elif isinstance(event, Utterance):
            for other in crowds.near(event.place, event.speaker, *event.agents):
                listeners = _names([a for a in event.agents if a != event.speaker])
                seen[other].append(Perception(text=overheard(event.speaker, listeners, event.text),
                                              source_event=event.seq, other=event.speaker))
    return seen


def activity_ends(events: list[EventBase]) -> dict[str, int]:
    """The log position of each conversation's or session's end, so the memories it leaves can cite it."""
    ends = {e.conversation_id: e.seq for e in events if isinstance(e, ConversationEnded)}
    return ends | {e.session_id: e.seq for e in events if isinstance(e, SessionEnded)}
