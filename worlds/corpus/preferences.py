"""Preference pairs from what a run chose between: a critic's pick among candidate turns, Self-Refine's drafts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agents.loops.base import PLACEHOLDER
from worlds.corpus.samples import Preference, Role
from worlds.eventlog import EventReader
from worlds.events import CriticChose, SessionEnded, SessionMessage, SessionStarted
from worlds.harvest_loops import FAILED_ENDS, loop_system

_KINDS = {"session_started", "critic_choice", "session_ended"}


def critic_choices(reader: EventReader) -> Iterator[tuple[str, list[CriticChose]]]:
    """Each ended session's id and its critic's choices, in the order `read_sessions` yields them."""
    open_: dict[str, list[CriticChose]] = {}
    for event in reader.events(_KINDS, complete_ticks_only=True):
        if isinstance(event, SessionStarted):
            open_[event.session_id] = []
        elif isinstance(event, CriticChose) and event.session_id in open_:
            open_[event.session_id].append(event)
        elif isinstance(event, SessionEnded) and event.session_id in open_:
            yield event.session_id, open_.pop(event.session_id)


def critic_preferences(choices: list[CriticChose], turns: list[SessionMessage], systems: dict[Role, str],
                       metadata: dict[str, Any] | None) -> list[Preference]:
    """The chosen candidate over each other one, with the session so far as the prompt, seen from the chosen side.

    A fallback pick (the critic's answer was unusable) says nothing about which is better, and is left out.
    """
    pairs = []
    for choice in choices:
        if choice.fallback:
            continue
        chosen = choice.candidates[choice.chosen]
        prompt: list[tuple[Role, str]] = [("assistant" if t.role == choice.role else "user", t.content)
                                          for t in turns if t.index < choice.index]
        meta = {**metadata, "preference": "critic", "index": choice.index, "side": choice.role} \
            if metadata is not None else None
        pairs.extend(Preference(system=systems[choice.role], prompt=prompt, chosen=chosen, rejected=other,
                                metadata=meta)
                     for other in dict.fromkeys(choice.candidates) if other != chosen)
    return pairs


def refine_preferences(start: SessionStarted, end: SessionEnded, metadata: dict[str, Any] | None) -> list[Preference]:
    """Self-Refine's final draft over its first, when the loop ran its course and changed the draft."""
    drafts = end.result.get("drafts") or []
    if start.loop != "self_refine" or end.reason in FAILED_ENDS or len(drafts) < 2:
        return []
    first, final = drafts[0], end.result.get("final", drafts[-1])
    if first == final or PLACEHOLDER in (first, final):
        return []
    meta = {**metadata, "preference": "self_refine", "iterations": len(drafts)} if metadata is not None else None
    return [Preference(system=loop_system(start), prompt=[("user", start.task)], chosen=final, rejected=first,
                       metadata=meta)]
