"""A session's inputs, serialisable: who plays which role, the task, the options and the stop rules."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RoleplayOptions(BaseModel):
    """What a scenario or a batch may set for a session; every stop rule has its own logged reason."""

    model_config = ConfigDict(extra="forbid")

    specify_task: bool = Field(default=False, description="Let a specifier make the task concrete first.")
    specify_words: int = Field(default=50, ge=5, le=300, description="Word limit for the specified task.")
    plan_task: bool = Field(default=False, description="Let a planner append ordered sub-tasks to the task.")
    max_messages: int = Field(default=20, ge=2, le=1000)
    no_instruction_turns: int = Field(
        default=3, ge=1, le=1000, description="Stop after the user gives no instruction this many turns in a row.")
    role_flips: int = Field(default=1, ge=1, le=1000,
                            description="Stop once the assistant has given this many instructions.")
    courtesy_repeats: int = Field(
        default=4, ge=1, le=1000, description="Stop after this many thanks/goodbye-only messages in a row.")
    stop_on_repetition: bool = Field(
        default=True, description="Stop when a message nearly repeats an earlier one (a loop, not dialogue).")
    max_tokens: int = Field(default=60_000, ge=100, description="Token budget (prompt + reply) for the session.")
    done_token: str = Field(default="<TASK_DONE>", min_length=3, pattern=r"\S")
    window: int = Field(default=4, ge=2, le=1000,
                        description="Recent messages each turn sees word for word; earlier ones as a summary.")


class RoleCard(BaseModel):
    """One side: a role title, played by a world agent (its persona and memories) or by nobody in particular."""

    role: str = Field(min_length=1)
    agent: str | None = None
    persona: str = ""
    memories: list[str] = Field(default_factory=list)

    @property
    def speaker(self) -> str:
        return self.agent or self.role

    def title(self) -> str:
        """How prompts name this side: the role, and who plays it."""
        return f"{self.role} ({self.agent})" if self.agent and self.agent != self.role else self.role


class CriticOptions(BaseModel):
    """A critic in the loop: which side it judges, how many candidates it sees, and by what criteria."""

    model_config = ConfigDict(extra="forbid")

    role: str = Field(default="Critic", min_length=1)
    agent: str | None = None
    judges: Literal["assistant", "user", "both"] = "assistant"
    candidates: int = Field(default=3, ge=2, le=8)
    criteria: str = "correct, specific, useful for the task, and true to the speaker's role"


class CriticSetup(CriticOptions):
    persona: str = ""


class RoleplaySetup(RoleplayOptions):
    """Everything one session needs, and nothing else: a self-contained unit of work."""

    session_id: str = Field(min_length=1)
    seed: int = 0
    assistant: RoleCard
    user: RoleCard
    task: str = Field(min_length=1)
    critic: CriticSetup | None = None
