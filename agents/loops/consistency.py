"""Self-Consistency (Wang et al., arXiv 2203.11171): sample several chains of thought, vote on their final answers."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from pydantic import Field

from agents.gateway import CallScope, ChatMessage, ModelGateway
from agents.loops.answers import final_answer, majority, normalise
from agents.loops.base import PLACEHOLDER, Loop, LoopOptions, LoopSetup, actor_sections
from agents.prompting import Section, assemble
from agents.roleplay.critic import draft_candidates


class SelfConsistencyOptions(LoopOptions):
    k: int = Field(default=5, ge=1, le=64, description="Samples to vote over.")
    temperature: float = Field(default=0.8, gt=0.0, le=2.0, description="Sampling temperature (greedy ignores it).")
    greedy: bool = Field(default=False, description="One sample at temperature 0, for comparison.")
    expected: str | None = Field(default=None, description="The known answer, if any: the result says if the vote got it.")
    max_tokens: int = Field(default=320, ge=16, le=4096)


class SelfConsistencySetup(LoopSetup, SelfConsistencyOptions):
    pass


SAMPLER_SYSTEM = ("You are {title}. You solve problems by reasoning one step at a time, and you always finish with a "
                  "line of the form `Answer: <your final answer>`.")
SAMPLER_ASK = "Think it through step by step, then give the last line as `Answer: ...` with the answer alone."
RESTATE_ASK = "You did not end with a final answer. Reply with one line only: `Answer: <your final answer>`."


class SelfConsistency(Loop):
    """k samplers reason at once; an aggregator extracts, normalises and votes; ties go to the earliest sample."""

    loop: ClassVar[str] = "self_consistency"
    other_side: ClassVar[str] = "Asker"
    actor_role: ClassVar[str] = "Solver"
    setup_type = SelfConsistencySetup
    options_type = SelfConsistencyOptions
    setup: SelfConsistencySetup

    async def _step(self, gateway: ModelGateway, scope: CallScope) -> None:
        setup = self.setup
        prompt = assemble(SAMPLER_SYSTEM.format(title=setup.actor.title()),
                          [*actor_sections(setup.actor), Section(label="Problem", text=setup.task)], SAMPLER_ASK)
        count, temperature = (1, 0.0) if setup.greedy else (setup.k, setup.temperature)
        samples = await draft_candidates(gateway, prompt, count, scope, "consistency_sample", setup.max_tokens,
                                         temperature=temperature)
        branches = [scope.branch(f"restate-{i}") for i in range(count)]
        answers = await asyncio.gather(*(self._answer_of(gateway, prompt, text, branch)
                                         for text, (branch, _) in zip(samples, branches)))
        for _, buffer in branches:
            for record in buffer:
                scope.emit(record)
        for text in samples:
            self.say("assistant", setup.actor.speaker, text or PLACEHOLDER, scope, part="sample")
        votes = [normalise(a) for a in answers if a is not None]
        result: dict = {"answers": answers, "samples": count, "greedy": setup.greedy}
        if not votes:
            self.progress.result = result | {"answer": None, "agreement": 0.0}
            self.end("no_answer", scope, detail="no sample gave a final answer")
            return
        answer, count_for = majority(votes)
        result |= {"answer": answer, "votes": dict(sorted({v: votes.count(v) for v in votes}.items())),
                   "agreement": round(count_for / len(votes), 4)}
        if setup.expected is not None:
            result["correct"] = answer == normalise(setup.expected)
        self.progress.result = result
        self.end("voted", scope)

    async def _answer_of(self, gateway: ModelGateway, prompt: list[ChatMessage], text: str,
                         scope: CallScope) -> str | None:
        """The sample's final answer; asked once more to state it; else a logged, counted fallback (no vote)."""
        if (answer := final_answer(text)) is not None:
            return answer
        again = [*prompt, ChatMessage(role="assistant", content=text), ChatMessage(role="user", content=RESTATE_ASK)]
        restated = await gateway.complete(again, purpose="consistency_restate", temperature=0.0, max_tokens=40,
                                          fallback="", scope=scope)
        if (answer := final_answer(restated)) is not None:
            return answer
        return gateway.fall_back(scope, "consistency_sample", "the sample gave no final answer, even when asked; "
                                                               "it does not vote", None)
