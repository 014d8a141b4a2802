"""What every session shares (a role-play, a Self-* loop): steps with their own seeds, token counting, one end."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from agents.gateway import CallScope, ContextLimitError, ModelGateway, ModelUnavailableError
from agents.gateway.records import ModelCallRecord
from agents.roleplay.records import EndReason, SessionEndedRecord, SessionMessageRecord, Side
from agents.roleplay.turns import Turn
from agents.seeding import stable_int


class SessionProgress(BaseModel):
    """The part of a session that changes as it runs; with the setup, enough to carry on after a snapshot."""

    stage: str = "start"
    turns: list[Turn] = Field(default_factory=list)
    tokens: int = 0
    reason: EndReason | None = None
    #: What the session produced, by the session's own names (the final draft, the vote, P(True) ...).
    result: dict[str, Any] = Field(default_factory=dict)


class SessionMachine(ABC):
    """An explicit state machine advanced a few steps at a time; a world activity and a batch drive it alike.

    Subclasses say what one step does (`_step`) and may settle something first (`_prepare`); a step's
    seed comes from the session's seed, its id and the step's key, never from how the steps were split
    into `advance` calls, so a session advanced 5 + 7 steps asks the same as one advanced 12.
    """

    setup_type: ClassVar[type[BaseModel]]
    progress_type: ClassVar[type[SessionProgress]] = SessionProgress

    def __init__(self, setup: Any, progress: SessionProgress | None = None) -> None:
        self.setup = setup
        self.progress = progress or self.progress_type()

    @property
    def finished(self) -> bool:
        return self.progress.stage == "ended"

    async def advance(self, gateway: ModelGateway, scope: CallScope, messages: int) -> None:
        """Take steps until `messages` more messages are said (a step that says several may go past it).

        A model failure that retries could not mend ends the session, logged.
        """
        target = len(self.progress.turns) + messages
        try:
            if not self.finished:
                await self._prepare(gateway, self.step_scope("settle", scope))
            while not self.finished and len(self.progress.turns) < target:
                await self._step(gateway, self.step_scope(self._step_key(), scope))
        except ContextLimitError as exc:
            self.end("context_limit", scope, detail=str(exc))
        except ModelUnavailableError as exc:
            self.end("model_failure", scope, detail=str(exc))

    async def _prepare(self, gateway: ModelGateway, scope: CallScope) -> None:
        """Work done once before the first step (a role-play settles its task here)."""

    @abstractmethod
    async def _step(self, gateway: ModelGateway, scope: CallScope) -> None:
        """One step: a message (a role-play's turn), or a few together (a loop's samples, a round)."""

    def _step_key(self) -> int | str:
        """What names the next step for its seed; by default, how many messages came before it."""
        return len(self.progress.turns)

    def step_scope(self, step: int | str, scope: CallScope) -> CallScope:
        """One step's calls: their own seed, and a sink that counts the session's tokens on the way out."""
        seed = stable_int(self.setup.seed, self.setup.session_id, step, bits=31)
        return CallScope(agent=scope.agent, seed=seed, sink=lambda record: self._count(record, scope))

    def _count(self, record: BaseModel, scope: CallScope) -> None:
        if isinstance(record, ModelCallRecord):
            self.progress.tokens += record.prompt_tokens + record.completion_tokens
        scope.emit(record)

    def say(self, role: Side, speaker: str, content: str, scope: CallScope, part: str = "") -> None:
        """Add a message to the transcript and log it."""
        index = len(self.progress.turns)
        self.progress.turns.append(Turn(role=role, speaker=speaker, content=content, part=part))
        scope.emit(SessionMessageRecord(session_id=self.setup.session_id, index=index, role=role, speaker=speaker,
                                        content=content, part=part))

    def end(self, reason: EndReason, scope: CallScope, detail: str = "") -> None:
        """Close the session with its reason (also used from outside: interrupted, run_ended)."""
        if self.finished:
            return
        self.progress.stage, self.progress.reason = "ended", reason
        scope.emit(SessionEndedRecord(session_id=self.setup.session_id, reason=reason,
                                      messages=len(self.progress.turns), tokens=self.progress.tokens,
                                      detail=detail[:500], result=self.progress.result))

    def get_state(self) -> dict[str, Any]:
        return {"setup": self.setup.model_dump(mode="json"), "progress": self.progress.model_dump(mode="json")}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SessionMachine:
        return cls(cls.setup_type.model_validate(state["setup"]), cls.progress_type.model_validate(state["progress"]))
