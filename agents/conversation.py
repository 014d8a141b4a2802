"""The thin talk step: an agent says its next line from persona, place and the last lines said."""

from __future__ import annotations

from datetime import datetime
from difflib import SequenceMatcher

from pydantic import BaseModel, Field

from agents.gateway import ChatMessage, ModelGateway
from agents.persona import Persona

#: How many earlier lines the speaker sees; keeps prompts short for small local models.
HISTORY_WINDOW = 8


class NextLine(BaseModel):
    """What the speaker says now, and whether it closes the conversation."""

    line: str = Field(min_length=1, max_length=400)
    end_conversation: bool


class Setting(BaseModel):
    """Where and when a conversation happens, and who the speaker is talking to."""

    place: str
    time: datetime
    listeners: list[str]
    relationships: dict[str, str]


def _prompt(
    speaker: Persona, setting: Setting, history: list[tuple[str, str]], recollections: list[str]
) -> list[ChatMessage]:
    system = (
        "You write natural, everyday dialogue for a novel about the people of a small town. "
        "Characters speak casually and briefly, like neighbours, never like customer service."
    )
    first = speaker.name.split()[0]
    age = f", {speaker.age}" if speaker.age is not None else ""
    traits = f" ({speaker.traits})" if speaker.traits else ""
    character = f"{speaker.name}{age}{traits}. {speaker.persona}".strip()
    memory = "".join(f"\n- {fact}" for fact in recollections)
    company = " and ".join(
        f"{name}, {first}'s {setting.relationships[name]}" if name in setting.relationships else name
        for name in setting.listeners
    )
    parts = [
        f"Character: {character}",
        f"On {first}'s mind:{memory}" if memory else "",
        f"Scene: {setting.time:%A, %H:%M}, at {setting.place}. {first} is with {company}.",
    ]
    others = " and ".join(name.split()[0] for name in setting.listeners)
    if history:
        transcript = "\n".join(f"{who}: {text}" for who, text in history[-HISTORY_WINDOW:])
        parts.append(f"Dialogue so far:\n{transcript}")
        parts.append(f"Write what {first} says back to {others}: one or two new sentences that move the talk on.")
    else:
        parts.append(f"Write what {first} says to {others} to open the conversation: a greeting, then what is on {first}'s mind.")
    return [ChatMessage(role="system", content=system), ChatMessage(role="user", content="\n\n".join(p for p in parts if p))]


def _strip_name_prefixes(text: str, names: list[str]) -> str:
    """Small models echo the transcript format (`Name: ...`), sometimes twice; drop those labels."""
    changed = True
    while changed:
        changed = False
        for name in names:
            if text.startswith(f"{name}:"):
                text, changed = text[len(name) + 1 :].lstrip(), True
    return text


async def next_line(
    gateway: ModelGateway,
    speaker: Persona,
    setting: Setting,
    history: list[tuple[str, str]],
    recollections: list[str],
) -> NextLine:
    """Ask the model for the speaker's next line; raises ModelUnavailableError when the model gives none."""
    messages = _prompt(speaker, setting, history, recollections)
    reply = await gateway.structured(messages, NextLine, purpose="utterance")
    text = _strip_name_prefixes(reply.line.strip(), [speaker.name, *setting.listeners])
    return NextLine(line=text or reply.line, end_conversation=reply.end_conversation)


#: Lines this similar (difflib ratio on normalised text) to an earlier one count as saying it again.
REPEAT_SIMILARITY = 0.8


def repeats(line: str, history: list[tuple[str, str]]) -> bool:
    """True when a line says again what was already said: small models loop, and loops are not dialogue."""
    said = _normalised(line)
    return any(SequenceMatcher(None, said, _normalised(text)).ratio() >= REPEAT_SIMILARITY for _, text in history)


def _normalised(text: str) -> str:
    return " ".join("".join(ch for ch in text.lower() if ch.isalnum() or ch.isspace()).split())
