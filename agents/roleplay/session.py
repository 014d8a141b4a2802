"""One role-play session as an explicit state machine: settle the task, then alternate turns until a rule stops it."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from agents.cognition.lines import without_echo
from agents.gateway import CallScope, ChatMessage, ModelGateway
from agents.prompting import Section, assemble
from agents.roleplay import prompts
from agents.roleplay.critic import draft_candidates, judge
from agents.roleplay.records import CriticChoiceRecord, SessionStartedRecord, Side
from agents.roleplay.setup import RoleCard, RoleplaySetup
from agents.roleplay.turns import (
    instruction_of,
    numbered_brief,
    running_summary,
    stop_reason,
    without_own_answer,
)
from agents.sessions import SessionMachine, SessionProgress


#: A "... task:" label as a specifier's answer may repeat it (`Rewritten task:`, `**Specified task**:`).
_TASK_LABEL = re.compile(r"(?:^|\s)[\W_]*(?:[a-z]+ )?task[\W_]*:\s*", re.I)


class SubtaskPlan(BaseModel):
    subtasks: list[str] = Field(min_length=2, max_length=6)


class RoleplayProgress(SessionProgress):
    """A role-play's progress: the stage it is in, the task as settled, and the transcript so far."""

    stage: Literal["specify", "plan", "talk", "ended"] = "specify"
    specified_task: str | None = None
    subtasks: list[str] = Field(default_factory=list)


class RoleplaySession(SessionMachine):
    """Settles the task, then alternates turns until a rule stops it; knows nothing of the world."""

    setup_type = RoleplaySetup
    progress_type = RoleplayProgress
    setup: RoleplaySetup
    progress: RoleplayProgress

    @property
    def task(self) -> str:
        """The task both sides work on: specified if a specifier ran, with the planner's steps."""
        return prompts.task_text(self.progress.specified_task or self.setup.task, self.progress.subtasks)

    async def _prepare(self, gateway: ModelGateway, scope: CallScope) -> None:
        await self._settle(gateway, scope)

    async def _step(self, gateway: ModelGateway, scope: CallScope) -> None:
        await self._turn(gateway, scope)

    async def _settle(self, gateway: ModelGateway, scope: CallScope) -> None:
        setup, progress = self.setup, self.progress
        if progress.stage == "specify":
            if setup.specify_task:
                progress.specified_task = await self._specify(gateway, scope)
            progress.stage = "plan"
        if progress.stage == "plan":
            if setup.plan_task:
                plan = await gateway.structured(
                    assemble(prompts.PLANNER_SYSTEM, [Section(label="Task", text=self.task)], prompts.PLANNER_ASK),
                    SubtaskPlan, purpose="task_planner", temperature=0.3, max_tokens=200, scope=scope,
                )
                progress.subtasks = [s.strip() for s in plan.subtasks if s.strip()]
            progress.stage = "talk"
            scope.emit(SessionStartedRecord(
                session_id=setup.session_id, assistant_role=setup.assistant.role, user_role=setup.user.role,
                assistant_agent=setup.assistant.agent, user_agent=setup.user.agent, task=setup.task,
                specified_task=progress.specified_task, subtasks=progress.subtasks,
            ))

    async def _specify(self, gateway: ModelGateway, scope: CallScope) -> str:
        """A concrete version of the task within the word limit; the original if the model gives nothing."""
        words = self.setup.specify_words
        text = await gateway.complete(
            assemble(prompts.SPECIFIER_SYSTEM, prompts.specifier(self.setup), prompts.specifier_ask(words)),
            purpose="task_specifier", temperature=1.0, max_tokens=2 * words + 20, fallback=self.setup.task,
            scope=scope,
        )
        # Small models copy the prompt's labels back ("Roles: ... Vague task: ... Rewritten task: X"): keep X.
        text = _TASK_LABEL.split(text.strip())[-1]
        return " ".join(text.split()[:words]) or self.setup.task

    async def _turn(self, gateway: ModelGateway, scope: CallScope) -> None:
        setup, progress = self.setup, self.progress
        index = len(progress.turns)
        role: Side = "user" if index % 2 == 0 else "assistant"
        card = self._card(role)
        messages = self._prompt(role)
        critic = setup.critic
        if critic is not None and critic.judges in (role, "both"):
            candidates = await draft_candidates(gateway, messages, critic.candidates, scope, f"{role}_turn",
                                                max_tokens=256)
            chosen, reason, fell_back = await judge(
                gateway, prompts.critic_system(setup, self.task), self._latest(), candidates, prompts.CRITIC_ASK,
                scope,
            )
            scope.emit(CriticChoiceRecord(session_id=setup.session_id, index=index, role=role, candidates=candidates,
                                          chosen=chosen, reason=reason, fallback=fell_back))
            content = candidates[chosen]
        else:
            content = (await gateway.complete(messages, purpose=f"{role}_turn", temperature=0.7, max_tokens=256,
                                              scope=scope)).strip()
        content = without_echo(content, [setup.user.title(), setup.assistant.title(), setup.user.role,
                                         setup.assistant.role])
        if role == "user":
            content = without_own_answer(content, keep=setup.done_token)
        if not content:
            content = "(nothing)"
        self.say(role, card.speaker, content, scope)
        reason = stop_reason(progress.turns, setup, progress.tokens)
        if reason is not None:
            self.end(reason, scope)

    def _prompt(self, role: Side) -> list[ChatMessage]:
        """The side's inception prompt, then one message: what came before in brief, what to answer, the ask.

        The exchange is shown as labelled text rather than as alternating chat turns: small models
        given the other side's words as the last chat turn tend to carry on in that voice. The user
        sees the instructions it gave and the latest answer; the assistant, the earlier steps in
        brief, the recent exchange and the instruction to answer now.
        """
        setup, turns = self.setup, self.progress.turns
        if role == "user":
            system = prompts.user_system(setup, self.task)
            given = [instruction_of(t.content) or t.content for t in turns if t.role == "user"]
            answer = next((t.content for t in reversed(turns) if t.role == "assistant"), "")
            sections = [Section(label="Instructions you have given", text=numbered_brief(given)),
                        Section(label=f"{setup.assistant.title()}'s latest answer", text=answer)]
            return assemble(system, sections, prompts.user_ask(setup, bool(turns)))
        system = prompts.assistant_system(setup, self.task)
        start = max(0, len(turns) - self.setup.window)
        start -= start % 2  # the summary ends on an answered step, never on an instruction whose answer is shown
        recent = "\n\n".join(f"{self._card(t.role).title()}: {t.content}" for t in turns[start:-1])
        sections = [Section(label="Steps already done", text=running_summary(turns[:start])),
                    Section(label="Latest exchange", text=recent),
                    Section(label=f"{setup.user.title()}'s instruction to answer now", text=turns[-1].content)]
        return assemble(system, sections, prompts.assistant_ask(setup))

    def _card(self, role: Side) -> RoleCard:
        return self.setup.user if role == "user" else self.setup.assistant

    def _latest(self) -> str:
        """What the critic reads besides the candidates: the last two messages."""
        return "\n\n".join(f"{t.speaker} ({t.role}): {t.content}" for t in self.progress.turns[-2:]) or "(none yet)"
