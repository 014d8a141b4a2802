"""How what an agent notices is worded: the world writes perceptions with these, and the line checks know
those words again when a small model reads a perception out instead of speaking."""

from __future__ import annotations

import re

#: The words that link a person to a place or to listeners in a perception ("Tom Moore is at Hobbs Cafe.").
LINKS = ("arrived at", "is at", "came to", "said to")
#: How an overheard line is remembered: `overheard` writes it, `is_overheard` knows it again.
_OVERHEARD = re.compile(r'^[^"]+ said to [^"]+: "')


def arrived(mover: str, place: str, company: str = "") -> str:
    return f"{mover} arrived at {place}{company}."


def is_at(other: str, place: str) -> str:
    return f"{other} is at {place}."


def came_to(mover: str, place: str) -> str:
    return f"{mover} came to {place}."


def overheard(speaker: str, listeners: str, line: str) -> str:
    return f'{speaker} said to {listeners}: "{line}"'


def is_overheard(memory: str) -> bool:
    """A memory of someone else's words: worth knowing, but said again as news it comes out recited."""
    return bool(_OVERHEARD.match(memory))
