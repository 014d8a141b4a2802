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


def _prompt(speaker: Persona, setting: Setting, history: list[tuple[str, str]]) -> list[ChatMessage]:
    knowledge = "".join(f"\n- {fact}" for fact in speaker.memories)
    system = speaker.describe() + (f"\nThings you know:{knowledge}" if knowledge else "")
    others = ", ".join(
        f"{name} ({setting.relationships[name]})" if name in setting.relationships else name
        for name in setting.listeners
    )
    around = f" Around you: {', '.join(setting.objects)}." if setting.objects else ""
    scene = (
        f"It is {setting.time:%A %B %d, %H:%M}. You are at {setting.place} in {setting.area}.{around} "
        f"You are talking with {others}."
    )
    if history:
        transcript = "\n".join(f"{who}: {text}" for who, text in history[-HISTORY_WINDOW:])
        ask = f"The conversation so far:\n{transcript}\n\nWhat do you say next? Stay in character and keep it short."
    else:
        ask = "You start the conversation. Greet them and say something that fits who you are and what you know."
    return [ChatMessage(role="system", content=system), ChatMessage(role="user", content=f"{scene}\n{ask}")]


async def next_line(
    gateway: ModelGateway, speaker: Persona, setting: Setting, history: list[tuple[str, str]]
) -> NextLine:
    """Ask the model for the speaker's next line; raises ModelUnavailableError when the model gives none."""
    reply = await gateway.structured(_prompt(speaker, setting, history), NextLine, purpose="utterance")
    prefix = f"{speaker.name}:"
    text = reply.line.strip()
    if text.startswith(prefix):  # small models often echo the transcript format
        text = text[len(prefix):].strip()
    return NextLine(line=text or reply.line, end_conversation=reply.end_conversation)
