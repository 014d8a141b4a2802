"""Answering a question from memory (probes and interviews): retrieval plus one call."""

from __future__ import annotations

from datetime import datetime

from agents.agent import Agent
from agents.gateway import CallScope, ModelGateway
from agents.prompting import Section, assemble, bullet_list
from memory.reports import RetrievedMemory

SYSTEM = "You answer an interviewer's question in character, from the character's own memories only."
RECALL = 6


async def answer(
    agent: Agent, question: str, gateway: ModelGateway, scope: CallScope, now: datetime
) -> tuple[str, list[RetrievedMemory]]:
    """The agent's answer in one or two sentences, and the memories it was given."""
    found = await agent.memory.retrieve(question, now, k=RECALL, trace=scope)
    first = agent.persona.first_name
    text = await gateway.complete(
        assemble(SYSTEM, [agent.persona_section(),
                          Section(label=f"{first}'s memories", text=bullet_list([m.text for m in found]))],
                 f"Interviewer: {question}\nAnswer as {first}, in the first person, in one or two sentences."),
        purpose="probe", temperature=0.3, max_tokens=90, fallback="(no answer: the model did not respond)", scope=scope,
    )
    return text.strip(), found
