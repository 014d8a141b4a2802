"""The thin talk step: an agent says its next line from persona, place and the last lines said."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from agents.gateway import ChatMessage, ModelGateway
from agents.persona import Persona

#: How many earlier lines the speaker sees; keeps prompts short for small local models.
HISTORY_WINDOW = 8


class NextLine(BaseModel):
    """What the speaker says now, and whether it closes the conversation."""

    line: str = Field(min_length=1, max_length=400, description="What you say next: one or two natural sentences.")
    end_conversation: bool = Field(description="True only if this line wraps the conversation up.")


class Setting(BaseModel):
    """Where and when a conversation happens, and who the speaker is talking to."""

    place: str
    area: str
    objects: list[str]
    time: datetime
    listeners: list[str]
    relationships: dict[str, str]


def _prompt(
    speaker: Persona, setting: Setting, history: list[tuple[str, str]], recollections: list[str]
) -> list[ChatMessage]:
    knowledge = "".join(f"\n- {fact}" for fact in recollections)
    system = (
        f"{speaker.describe()}"
        + (f"\nWhat comes to mind right now:{knowledge}" if knowledge else "")
        + "\nYou are a person living your day, not an assistant. Speak casually, in the first person, "
        "in one or two sentences, and never put a name in front of your words."
    )
    company = "; ".join(
        f"{name}, your {setting.relationships[name]}" if name in setting.relationships else name
        for name in setting.listeners
    )
    around = f" Nearby: {', '.join(setting.objects)}." if setting.objects else ""
    scene = f"{setting.time:%A %H:%M}, at {setting.place} in {setting.area}.{around} With you: {company}."
    if history:
        transcript = "\n".join(f"{who}: {text}" for who, text in history[-HISTORY_WINDOW:])
        ask = f"So far:\n{transcript}\n\nReply to them as {speaker.name}. Say something new; do not repeat earlier lines."
    else:
        ask = f"You speak first. Greet them as {speaker.name} and bring up something on your mind."
    return [ChatMessage(role="system", content=system), ChatMessage(role="user", content=f"{scene}\n{ask}")]


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
