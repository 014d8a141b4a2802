"""Perceiving: of what happened around the agent, keep what fits its attention as observation memories."""

from __future__ import annotations

from datetime import datetime

from agents.agent import Agent, Perception

#: A perception repeating one of this many latest memories is not stored again (the same person at the same task).
FRESHNESS_WINDOW = 30


def perceive(agent: Agent, seen: list[Perception], now: datetime, bandwidth: int) -> None:
    """Remember up to `bandwidth` new perceptions (people first) and queue those about someone for a reaction.

    Sleepers notice nothing, and what the agent already noted lately is not noted again.
    """
    if agent.asleep or not seen:
        return
    known = {r.text for r in agent.memory.recent(FRESHNESS_WINDOW)} | {p.text for p in agent.memory.pending}
    fresh = [p for p in dict((p.text, p) for p in seen).values() if p.text not in known or p.arrival]
    ranked = sorted(fresh, key=lambda p: (p.other is None, not p.arrival))[:bandwidth]
    for item in ranked:
        agent.memory.remember("observation", item.text, now, source_event=item.source_event)
    agent.state.inbox.extend(p for p in ranked if p.other)
