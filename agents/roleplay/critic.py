"""Critic in the loop: several candidate turns, one judge; an unusable verdict falls back to a seeded pick, logged."""

from __future__ import annotations

import asyncio
from functools import lru_cache

from pydantic import BaseModel, Field, create_model

from agents.gateway import CallScope, ChatMessage, ModelGateway
from agents.prompting import Section, assemble
from agents.seeding import stable_rng


class CriticVerdict(BaseModel):
    """The judge's choice (1-based) and why."""

    choice: int
    reason: str = ""


@lru_cache(maxsize=16)
def verdict_schema(candidates: int) -> type[CriticVerdict]:
    """The verdict with its choice bounded to the candidates on offer, so out-of-range answers are re-asked."""
    return create_model(
        f"CriticVerdict{candidates}", __base__=CriticVerdict,
        choice=(int, Field(ge=1, le=candidates)), reason=(str, Field(default="", max_length=300)),
    )


async def draft_candidates(
    gateway: ModelGateway, messages: list[ChatMessage], count: int, scope: CallScope, purpose: str, max_tokens: int,
    temperature: float = 1.0,
) -> list[str]:
    """`count` replies to the same prompt at once, each with its own seed; the events keep candidate order."""
    branches = [scope.branch(f"candidate-{i}") for i in range(count)]
    replies = await asyncio.gather(*(
        gateway.complete(messages, purpose=purpose, temperature=temperature, max_tokens=max_tokens, scope=branch)
        for branch, _ in branches
    ))
    for _, buffer in branches:
        for record in buffer:
            scope.emit(record)
    return [reply.strip() for reply in replies]


async def judge(
    gateway: ModelGateway, system: str, context: str, candidates: list[str], ask: str, scope: CallScope,
) -> tuple[int, str, bool]:
    """0-based index of the chosen candidate, the reason, and whether the seeded fallback stood in."""
    listing = "\n\n".join(f"Candidate {i}:\n{text}" for i, text in enumerate(candidates, 1))
    fallback_index = stable_rng(scope.seed, "critic-fallback", len(candidates)).randrange(len(candidates))
    schema = verdict_schema(len(candidates))
    fallback = schema(choice=fallback_index + 1, reason="fallback: the critic gave no usable choice")
    verdict = await gateway.structured(
        assemble(system, [Section(label="The latest exchange", text=context), Section(label="Candidates", text=listing)],
                 ask),
        schema, purpose="critic", default=fallback, temperature=0.2, max_tokens=120, scope=scope,
    )
    return verdict.choice - 1, verdict.reason, verdict is fallback
