"""What a harvest makes of a run before it takes a format: chat samples, preference pairs, and the item they come in."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from worlds.corpus.quality import Dialogue

Role = Literal["user", "assistant"]


class Memory(BaseModel):
    """A memory the speaker retrieved before a turn: its id in the agent's stream and its text."""

    id: str
    text: str


class TurnSource(BaseModel):
    """What a turn's speaker had just retrieved when it said the turn (provenance)."""

    speaker: str
    memories: list[Memory] = Field(default_factory=list)


class Sample(BaseModel):
    """One training conversation: a system prompt, then user and assistant turns, in the assistant's view."""

    system: str
    turns: list[tuple[Role, str]]
    metadata: dict[str, Any] | None = None
    #: Self-Instruct keeps an instruction and its input apart; alpaca writes them as two fields.
    instruction: tuple[str, str] | None = None


class Preference(BaseModel):
    """A preference pair: the same prompt, a better reply and a worse one."""

    system: str
    prompt: list[tuple[Role, str]]
    chosen: str
    rejected: str
    metadata: dict[str, Any] | None = None


class Item(BaseModel):
    """One conversation, session or loop result of a run: what filters and dedup judge, and what it would give."""

    run: str
    #: Unique within the run: a conversation or session id (a loop record adds its number).
    key: str
    dialogue: Dialogue
    samples: list[Sample] = Field(default_factory=list)
    preferences: list[Preference] = Field(default_factory=list)
    #: Self-Eval's own estimate that its answer is right.
    p_true: float | None = None
    #: Why the item gives no record whatever the options (it never ended, the loop produced nothing usable).
    left_out: str | None = None
