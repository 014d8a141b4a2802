"""What a role-play session reports; the world's event log and a batch's log both store these."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Side = Literal["assistant", "user"]


class SessionStartedRecord(BaseModel):
    """A session whose task is settled (after the optional specifier and planner)."""

    kind: Literal["session_started"] = "session_started"
    session_id: str
    #: Which kind of session: a CAMEL role-play, or one of the Self-* loops.
    loop: str = "roleplay"
    assistant_role: str
    user_role: str
    assistant_agent: str | None = None
    user_agent: str | None = None
    task: str
    specified_task: str | None = None
    subtasks: list[str] = Field(default_factory=list)


class SessionMessageRecord(BaseModel):
    """One turn: who said it, in which role, and what."""

    kind: Literal["session_message"] = "session_message"
    session_id: str
    index: int
    role: Side
    speaker: str
    content: str
    #: What the message is within a loop ("draft", "feedback", "thoughts", ...); empty in a role-play.
    part: str = ""


class CriticChoiceRecord(BaseModel):
    """A critic chose among candidate turns; `fallback` when its answer was unusable and a seeded pick stood in."""

    kind: Literal["critic_choice"] = "critic_choice"
    session_id: str
    index: int
    role: Side
    candidates: list[str]
    chosen: int
    reason: str = ""
    fallback: bool = False


#: Every way a session can stop; each is logged as the session's reason.
EndReason = Literal["task_done", "repetition", "max_messages", "no_instruction", "role_flip", "courtesy_loop", "token_limit",
                    "context_limit", "model_failure", "interrupted", "run_ended",
                    # the Self-* loops
                    "no_change_needed", "max_iterations", "critic_failed", "voted", "no_answer", "tests_passed",
                    "max_turns", "evaluated", "answered", "target_reached"]


class SessionEndedRecord(BaseModel):
    kind: Literal["session_ended"] = "session_ended"
    session_id: str
    reason: EndReason
    messages: int
    tokens: int
    detail: str = ""
    #: What the session produced (a loop's final draft, vote, score ...), by the loop's own names.
    result: dict[str, Any] = Field(default_factory=dict)
