"""Whose side a conversation is written from: which participant plays the assistant in its samples."""

from __future__ import annotations

from typing import Any

from agents.persona import Persona
from worlds.corpus.dialogues import HarvestedConversation
from worlds.corpus.samples import Sample, TurnSource

#: The `--assistant` choices that are not an agent's name.
PERSPECTIVES = ("answerer", "first", "both")


def answerer(conv: HarvestedConversation) -> str:
    """The first one to answer the opening speaker (in a one-sided conversation, another participant)."""
    first = conv.lines[0][0]
    return next((who for who, _ in conv.lines if who != first), None) or \
        next((p for p in conv.participants if p != first), first)


def assistants(conv: HarvestedConversation, perspective: str) -> list[str]:
    """The participants to write the conversation as: one, every one (`both`), or none if NAME is not in it."""
    if not conv.lines:
        return []
    if perspective == "answerer":
        return [answerer(conv)]
    if perspective == "first":
        return [conv.lines[0][0]]
    if perspective == "both":
        ordered = [answerer(conv), conv.lines[0][0]]
        return ordered + [p for p in conv.participants if p not in ordered]
    return [perspective] if perspective in conv.participants else []


def _metadata(conv: HarvestedConversation, user: str, assistant: str) -> dict[str, Any]:
    return {
        "run": conv.run, "scenario": conv.scenario, "model": conv.model, "kind": "conversation",
        "conversation_id": conv.conversation_id,
        "participants": conv.participants, "user_agent": user, "assistant_agent": assistant, "place": conv.place,
        "sim_start": conv.sim_start.isoformat(), "sim_end": conv.sim_end.isoformat() if conv.sim_end else None,
        "end_reason": conv.end_reason, "turns": len(conv.lines),
    }


def conversation_samples(conv: HarvestedConversation, perspective: str, personas: dict[str, Persona],
                         with_metadata: bool, sources: list[TurnSource] | None) -> list[Sample]:
    """One sample per assistant chosen, its persona and setting as the system prompt."""
    samples = []
    for assistant in assistants(conv, perspective):
        persona = personas.get(assistant)
        others = ", ".join(p for p in conv.participants if p != assistant)
        system = f"You are {persona.describe() if persona else assistant + '.'} You are at {conv.place}, " \
                 f"talking with {others}."
        turns = [("assistant" if who == assistant else "user", text) for who, text in conv.lines]
        metadata = None
        if with_metadata:
            user = next((who for who, _ in conv.lines if who != assistant),
                        next((p for p in conv.participants if p != assistant), ""))
            metadata = _metadata(conv, user, assistant)
            if sources is not None:
                metadata["provenance"] = [source.model_dump() for source in sources]
        samples.append(Sample(system=system, turns=turns, metadata=metadata))
    return samples
