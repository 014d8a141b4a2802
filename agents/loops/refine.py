"""Self-Refine (Madaan et al., arXiv 2303.17651): draft, get feedback on named aspects, refine with the whole history."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field

from agents.gateway import CallScope, ModelGateway
from agents.loops.base import PLACEHOLDER, Loop, LoopOptions, LoopSetup, actor_sections
from agents.prompting import Section, assemble

DEFAULT_ASPECTS = ["clarity", "completeness", "accuracy", "tone"]


class SelfRefineOptions(LoopOptions):
    max_iterations: int = Field(default=4, ge=1, le=20, description="Drafts at most, the first included.")
    aspects: list[str] = Field(default_factory=lambda: list(DEFAULT_ASPECTS), min_length=1)
    critic_role: str = "Critic"


class SelfRefineSetup(LoopSetup, SelfRefineOptions):
    pass


class AspectNote(BaseModel):
    aspect: str = Field(max_length=60)
    comment: str = Field(max_length=400)


class Critique(BaseModel):
    """Feedback on one draft; `no_change_needed` is the stop signal."""

    notes: list[AspectNote] = Field(default_factory=list, max_length=8)
    no_change_needed: bool = False


def render(critique: Critique) -> str:
    lines = [f"{n.aspect.strip().capitalize()}: {n.comment.strip()}" for n in critique.notes if n.comment.strip()]
    lines.append("Verdict: no change needed." if critique.no_change_needed else "Verdict: revise.")
    return "\n".join(lines)


GENERATOR_SYSTEM = ("You are {title}. You write what you are asked for, then make it better each time an editor "
                    "tells you what to change.")
DRAFT_ASK = "Write the first version now. Reply with the text itself, nothing before or after it."
REFINE_ASK = ("Write a new version that acts on every comment of the latest feedback and keeps what earlier feedback "
              "already fixed. Reply with the text itself, nothing before or after it.")
CRITIC_SYSTEM = ("You are an exacting editor. You judge a draft aspect by aspect and say precisely what to change. "
                 "You say that no change is needed only when no aspect can be improved.")


def critic_ask(aspects: list[str]) -> str:
    return (f"Judge the latest draft on each of these aspects: {', '.join(aspects)}. For each aspect that can be "
            "improved, write one concrete comment saying what to change. If no aspect can be improved, give no "
            "comments and set no_change_needed to true.")


class SelfRefine(Loop):
    """Draft → feedback → refined draft → feedback ... until the critic needs no change or drafts run out."""

    loop: ClassVar[str] = "self_refine"
    other_side: ClassVar[str] = "Critic"
    actor_role: ClassVar[str] = "Writer"
    setup_type = SelfRefineSetup
    options_type = SelfRefineOptions
    setup: SelfRefineSetup

    @property
    def other_role(self) -> str:
        return self.setup.critic_role

    def _history(self) -> list[Section]:
        """Every draft and the feedback on it, oldest first: the paper's refine prompt keeps the whole history."""
        sections, draft = [], 0
        for turn in self.progress.turns[1:]:
            if turn.role == "assistant":
                draft += 1
                sections.append(Section(label=f"Draft {draft}", text=turn.content))
            else:
                sections.append(Section(label=f"Feedback on draft {draft}", text=turn.content))
        return sections

    async def _step(self, gateway: ModelGateway, scope: CallScope) -> None:
        turns = self.progress.turns
        if turns[-1].role == "user":
            await self._write(gateway, scope, first=len(turns) == 1)
        else:
            await self._critique(gateway, scope)

    async def _write(self, gateway: ModelGateway, scope: CallScope, first: bool) -> None:
        setup = self.setup
        sections = [*actor_sections(setup.actor), Section(label="Task", text=setup.task), *self._history()]
        text = await gateway.complete(
            assemble(GENERATOR_SYSTEM.format(title=setup.actor.title()), sections, DRAFT_ASK if first else REFINE_ASK),
            purpose="refine_draft" if first else "refine_revision", temperature=0.7, max_tokens=400, scope=scope)
        draft = text.strip() or gateway.fall_back(scope, "refine_draft", "the model wrote an empty draft", PLACEHOLDER)
        self.say("assistant", setup.actor.speaker, draft, scope, part="draft")
        drafts = [t.content for t in self.progress.turns if t.role == "assistant"]
        self.progress.result = {"final": drafts[-1], "drafts": drafts, "iterations": len(drafts)}
        if len(drafts) >= setup.max_iterations:
            self.end("max_iterations", scope)

    async def _critique(self, gateway: ModelGateway, scope: CallScope) -> None:
        setup = self.setup
        fallback = Critique(notes=[AspectNote(aspect="all", comment="(the critic gave no usable feedback)")],
                            no_change_needed=True)
        critique = await gateway.structured(
            assemble(CRITIC_SYSTEM, [Section(label="Task", text=setup.task), *self._history()],
                     critic_ask(setup.aspects)),
            Critique, purpose="refine_feedback", default=fallback, temperature=0.2, max_tokens=300, scope=scope)
        self.say("user", setup.critic_role, render(critique), scope, part="feedback")
        if critique is fallback:
            self.end("critic_failed", scope, detail="the critic's answers were unusable; the latest draft stands")
        elif critique.no_change_needed:
            self.end("no_change_needed", scope)
