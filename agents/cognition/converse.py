"""Conversing: the speaker's next line from what it retrieves about partner and topic; a digest afterwards."""

from __future__ import annotations

from datetime import datetime
from difflib import SequenceMatcher

from pydantic import BaseModel, Field

from agents.agent import Agent
from agents.gateway import CallScope, ModelGateway
from agents.prompting import Section, assemble, bullet_list

#: How many earlier lines the speaker sees; keeps prompts short for small local models.
HISTORY_WINDOW = 8
SYSTEM = (
    "You write natural, everyday dialogue for a novel about the people of a small town. "
    "Characters speak casually and briefly, like neighbours, never like customer service."
)


class NextLine(BaseModel):
    """What the speaker says now, and whether it closes the conversation."""

    line: str = Field(min_length=1, max_length=400)
    end_conversation: bool


class ConversationDigest(BaseModel):
    """What one participant keeps of a conversation."""

    summary: str = Field(min_length=1, max_length=300)
    relationship: str = Field(min_length=1, max_length=160)


async def recall_for(agent: Agent, partners: list[str], history: list[tuple[str, str]], place: str,
                     now: datetime, k: int, scope: CallScope) -> list[str]:
    """What the speaker remembers about the company and the last thing said."""
    cue = history[-1][1] if history else f"meeting them at {place}"
    found = await agent.memory.retrieve(f"{', '.join(partners)}: {cue}", now, k=k, trace=scope)
    return [m.text for m in found]


async def next_line(
    agent: Agent, partners: list[str], place: str, history: list[tuple[str, str]], recollections: list[str],
    gateway: ModelGateway, scope: CallScope, now: datetime,
) -> NextLine:
    """Ask the model for the speaker's next line; raises ModelUnavailableError when the model gives none."""
    first = agent.persona.first_name
    others = " and ".join(name.split()[0] for name in partners)
    sections = [
        agent.persona_section(),
        agent.relationship_section(partners),
        Section(label=f"On {first}'s mind", text=bullet_list(recollections)),
        Section(label="Scene", text=f"{now:%A, %H:%M}, at {place}. {first} is with {others}."),
    ]
    if history:
        transcript = "\n".join(f"{who}: {text}" for who, text in history[-HISTORY_WINDOW:])
        sections.append(Section(label="Dialogue so far", text=transcript))
        ask = f"Write what {first} says back to {others}: one or two new sentences that move the talk on."
    else:
        ask = f"Write what {first} says to {others} to open the conversation: a greeting, then what is on {first}'s mind."
    reply = await gateway.structured(assemble(SYSTEM, sections, ask), NextLine, purpose="utterance", scope=scope)
    text = _strip_name_prefixes(reply.line.strip(), [agent.name, *partners])
    return NextLine(line=text or reply.line, end_conversation=reply.end_conversation)


#: A digest reads at most this many lines (the first, then the latest), each cut to DIGEST_WORDS words.
DIGEST_LINES = 9
DIGEST_WORDS = 60


def _digestible(transcript: list[tuple[str, str]]) -> str:
    """The opening line and the latest ones, each clipped: a long session's digest prompt stays bounded."""
    shown = transcript if len(transcript) <= DIGEST_LINES else [transcript[0], ("…", "…"), *transcript[-(DIGEST_LINES - 1):]]
    clipped = [(who, " ".join(text.split()[:DIGEST_WORDS])) for who, text in shown]
    return "\n".join("…" if who == "…" else f"{who}: {text}" for who, text in clipped)


async def digest(
    agent: Agent, partners: list[str], transcript: list[tuple[str, str]], gateway: ModelGateway, scope: CallScope
) -> ConversationDigest:
    """One call: a summary to remember, and the agent's updated one-line view of its partner(s)."""
    first = agent.persona.first_name
    names = " and ".join(partners)
    known = agent.state.relationships.get(partners[0]) if partners else None
    fallback = ConversationDigest(
        summary=f"{agent.name} talked with {names}.",
        relationship=(known.summary or known.label) if known and (known.summary or known.label) else "acquaintance",
    )
    return await gateway.structured(
        assemble(SYSTEM, [agent.persona_section(), agent.relationship_section(partners),
                          Section(label="The conversation", text=_digestible(transcript))],
                 f"From {first}'s point of view: sum up what was said and agreed in one sentence, and describe "
                 f"{first}'s relationship with {names} now in a few words."),
        ConversationDigest, purpose="conversation_digest", default=fallback, temperature=0.3, max_tokens=160,
        scope=scope,
    )


def _strip_name_prefixes(text: str, names: list[str]) -> str:
    """Small models echo the transcript format (`Name: ...`), sometimes twice; drop those labels."""
    changed = True
    while changed:
        changed = False
        for name in names:
            if text.startswith(f"{name}:"):
                text, changed = text[len(name) + 1 :].lstrip(), True
    return text


#: Lines this similar (difflib ratio on normalised text) to an earlier one count as saying it again.
REPEAT_SIMILARITY = 0.8


def repeats(line: str, history: list[tuple[str, str]]) -> bool:
    """True when a line says again what was already said: small models loop, and loops are not dialogue."""
    said = _normalised(line)
    for _, text in history:
        matcher = SequenceMatcher(None, said, _normalised(text))
        # The cheap upper bounds rule most lines out before the quadratic ratio is computed.
        if matcher.real_quick_ratio() >= REPEAT_SIMILARITY and matcher.quick_ratio() >= REPEAT_SIMILARITY \
                and matcher.ratio() >= REPEAT_SIMILARITY:
            return True
    return False


def _normalised(text: str) -> str:
    return " ".join("".join(ch for ch in text.lower() if ch.isalnum() or ch.isspace()).split())
