"""Importance on Generative Agents' 1-10 scale, one model call for a whole batch of new memories."""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, Field, create_model

from agents.gateway import CallScope, ChatMessage, ModelGateway
from memory.stream import ImportanceScorer

#: Used for every memory of a batch whose scoring failed (logged and counted by the gateway).
NEUTRAL_IMPORTANCE = 5


@lru_cache(maxsize=64)
def scores_schema(count: int) -> type[BaseModel]:
    """A schema demanding exactly `count` scores, so constrained decoding and validation enforce the length."""
    return create_model(
        "ImportanceScores",
        scores=(list[int], Field(min_length=count, max_length=count, description="One score from 1 to 10 per memory, in order.")),
    )


def _prompt(agent: str, texts: list[str]) -> list[ChatMessage]:
    listing = "\n".join(f"{i}. {text}" for i, text in enumerate(texts, start=1))
    return [
        ChatMessage(
            role="system",
            content=(
                f"Rate how much each memory matters to {agent}'s life, 1 to 10: 1 is an everyday trifle (brushing "
                "teeth), 10 life-changing (a break-up, a wedding, losing a job)."
            ),
        ),
        ChatMessage(role="user", content=f"Memories:\n{listing}\n\nOne score each, in order."),
    ]


def model_importance_scorer(gateway: ModelGateway) -> ImportanceScorer:
    """An ImportanceScorer that asks the gateway; failures fall back to NEUTRAL_IMPORTANCE for the batch."""

    async def score(agent: str, texts: list[str], trace: CallScope | None) -> list[int]:
        schema = scores_schema(len(texts))
        neutral = schema(scores=[NEUTRAL_IMPORTANCE] * len(texts))
        result = await gateway.structured(
            _prompt(agent, texts), schema, purpose="importance", default=neutral, temperature=0.2,
            max_tokens=16 + 4 * len(texts), scope=trace,
        )
        return [min(10, max(1, s)) for s in result.scores]

    return score
