"""Reacting: on noticing someone, one structured call decides whether to talk, wait or carry on."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from agents.agent import Agent
from agents.gateway import CallScope, ModelGateway
from agents.prompting import Section, assemble, bullet_list

SYSTEM = "You decide what a character in a small-town life simulation does next. Answer briefly."
RECALL = 3


class Reaction(BaseModel):
    decision: Literal["talk", "wait", "carry_on"]
    reason: str = Field(default="", max_length=160)


async def react(
    agent: Agent, other: str, noticed: str, gateway: ModelGateway, scope: CallScope, now: datetime
) -> Reaction:
    """Should the agent start a conversation with `other` now? Falls back to carrying on."""
    first = agent.persona.first_name
    found = await agent.memory.retrieve(f"{other}", now, k=RECALL, trace=scope)
    sections = [
        agent.persona_section(),
        agent.plan_section(now),
        agent.relationship_section([other]),
        Section(label=f"What {first} remembers about {other.split()[0]}",
                text=bullet_list([m.text for m in found if m.text != noticed])),
        Section(label="Just now", text=noticed),
    ]
    return await gateway.structured(
        assemble(SYSTEM, sections,
                 f"It is {now:%H:%M}. Does {first} go and talk to {other} now (talk), wait a little (wait), "
                 f"or carry on with the plan (carry_on)? Give the decision and a short reason."),
        Reaction, purpose="react", default=Reaction(decision="carry_on", reason="no decision"),
        temperature=0.5, max_tokens=80, scope=scope,
    )
