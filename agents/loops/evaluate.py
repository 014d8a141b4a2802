"""Self-Evaluation (Kadavath et al., arXiv 2207.05221): propose an answer, then ask the model if it is true: P(True)."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field

from agents.gateway import CallScope, ModelGateway
from agents.loops.base import PLACEHOLDER, Loop, LoopOptions, LoopSetup, actor_sections
from agents.prompting import Section, assemble, bullet_list
from agents.roleplay.critic import draft_candidates


class SelfEvalOptions(LoopOptions):
    proposed: str | None = Field(default=None, description="An answer to judge; by default the actor proposes one.")
    k: int = Field(default=5, ge=1, le=64, description="Verdicts sampled when the backend gives no log-probabilities.")
    brainstorm: int = Field(default=0, ge=0, le=20,
                            description="Own samples the evaluator sees first (the paper's brainstorm mode); 0: none.")
    evaluator_role: str = "Evaluator"


class SelfEvalSetup(LoopSetup, SelfEvalOptions):
    pass


ANSWER_SYSTEM = "You are {title}. You answer questions briefly and directly."
ANSWER_ASK = "Answer in one or two sentences."
EVALUATOR_SYSTEM = "You check answers. You say True when the proposed answer is correct and False when it is not."
VERDICT_ASK = "Is the proposed answer correct? Reply with one word: True or False."
_VERDICT = re.compile(r"\b(true|false)\b", re.I)


def verdict_of(text: str) -> bool | None:
    """The first True/False in a sampled verdict, or None when it gives neither."""
    found = _VERDICT.search(text)
    return None if found is None else found.group(1).lower() == "true"


class SelfEval(Loop):
    """The actor proposes, the evaluator judges: P(True) from token probabilities, else from sampled verdicts."""

    loop: ClassVar[str] = "self_eval"
    other_side: ClassVar[str] = "Evaluator"
    actor_role: ClassVar[str] = "Answerer"
    setup_type = SelfEvalSetup
    options_type = SelfEvalOptions
    setup: SelfEvalSetup

    async def _step(self, gateway: ModelGateway, scope: CallScope) -> None:
        if self.progress.stage == "running":
            await self._propose(gateway, scope)
        else:
            await self._evaluate(gateway, scope)

    def _question(self) -> list[Section]:
        return [*actor_sections(self.setup.actor), Section(label="Question", text=self.setup.task)]

    async def _propose(self, gateway: ModelGateway, scope: CallScope) -> None:
        setup = self.setup
        system = ANSWER_SYSTEM.format(title=setup.actor.title())
        answer = setup.proposed
        if answer is None:
            answer = (await gateway.complete(assemble(system, self._question(), ANSWER_ASK), purpose="eval_answer",
                                             temperature=0.0, max_tokens=120, scope=scope)).strip()
            answer = answer or gateway.fall_back(scope, "eval_answer", "the model gave an empty answer", PLACEHOLDER)
        ideas: list[str] = []
        if setup.brainstorm:
            ideas = await draft_candidates(gateway, assemble(system, self._question(), ANSWER_ASK), setup.brainstorm,
                                           scope, "eval_brainstorm", 120, temperature=1.0)
        self.say("assistant", setup.actor.speaker, answer, scope, part="answer")
        self.progress.result = {"answer": answer, "brainstorm": ideas}
        self.progress.stage = "evaluate"

    async def _evaluate(self, gateway: ModelGateway, scope: CallScope) -> None:
        setup, result = self.setup, self.progress.result
        sections = [Section(label="Question", text=setup.task),
                    Section(label="Some answers you came up with", text=bullet_list(result["brainstorm"])),
                    Section(label="Proposed answer", text=result["answer"])]
        prompt = assemble(EVALUATOR_SYSTEM, sections, VERDICT_ASK)
        probabilities = await gateway.option_probabilities(prompt, ["True", "False"], purpose="eval_p_true",
                                                          scope=scope)
        if probabilities is not None:
            p_true, method, verdicts = probabilities["True"], "logprobs", []
        else:
            samples = await draft_candidates(gateway, prompt, setup.k, scope, "eval_verdict", 8, temperature=1.0)
            verdicts = [verdict_of(s) for s in samples]
            usable = [v for v in verdicts if v is not None]
            if 0 < len(usable) < len(verdicts):
                gateway.fall_back(scope, "eval_verdict", f"{len(verdicts) - len(usable)} of {len(verdicts)} verdicts "
                                                         "said neither True nor False; P(True) is over the rest",
                                  len(usable))
            if usable:
                p_true, method = sum(usable) / len(usable), "sampled"
            else:
                p_true = gateway.fall_back(scope, "eval_verdict", "no sampled verdict said True or False", 0.5)
                method = "fallback"
        result |= {"p_true": round(p_true, 4), "method": method, "verdicts": verdicts}
        self.say("user", setup.evaluator_role, f"P(True) = {p_true:.2f} ({method})", scope, part="verdict")
        self.end("evaluated", scope)
