"""What every Self-* loop shares: who runs it, how it opens, and how a world agent's persona enters its prompts."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from agents.gateway import CallScope, ModelGateway
from agents.prompting import Section, bullet_list
from agents.roleplay.records import SessionStartedRecord
from agents.roleplay.setup import RoleCard
from agents.sessions import SessionMachine


#: What a loop says in place of a message the model did not give (logged as a fallback; harvest leaves it out).
PLACEHOLDER = "(nothing)"


class LoopOptions(BaseModel):
    """A loop's settings, as a scenario or a batch gives them; unknown names are errors."""

    model_config = ConfigDict(extra="forbid")


class LoopSetup(BaseModel):
    """A loop's self-contained inputs: its id and seed, the task, and who runs it (a role, or a world agent)."""

    model_config = ConfigDict(extra="forbid")

    session_id: str = Field(min_length=1)
    seed: int = 0
    task: str = Field(min_length=1)
    actor: RoleCard = RoleCard(role="Assistant")


def actor_sections(actor: RoleCard) -> list[Section]:
    """A world agent brings its persona and what it recalled about the task; a free role brings nothing."""
    return [Section(label="Who you are", text=actor.persona),
            Section(label="What you remember that may matter", text=bullet_list(actor.memories))]


class Loop(SessionMachine):
    """A Self-* loop: opens by logging its task as the first (user) message, then takes its own steps.

    `other_side` names the role that answers the actor (the critic, the executor, the voter...), so a
    loop's log reads as a conversation between two roles and harvest exports it like any session.
    """

    loop: ClassVar[str]
    other_side: ClassVar[str]
    #: The role title of the side that acts when the scenario names none.
    actor_role: ClassVar[str]
    #: The loop's own settings, which scenarios and batches take as they are.
    options_type: ClassVar[type[LoopOptions]]
    setup: LoopSetup

    @property
    def other_role(self) -> str:
        """The answering side's title in this session (a loop may let its setup rename it)."""
        return self.other_side

    async def _prepare(self, gateway: ModelGateway, scope: CallScope) -> None:
        if self.progress.stage != "start":
            return
        setup = self.setup
        scope.emit(SessionStartedRecord(session_id=setup.session_id, loop=self.loop, assistant_role=setup.actor.role,
                                        user_role=self.other_role, assistant_agent=setup.actor.agent, task=setup.task))
        self.say("user", self.other_role, setup.task, scope, part="task")
        self.progress.stage = "running"
