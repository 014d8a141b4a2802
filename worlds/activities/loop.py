"""A Self-* loop on the clock: a world agent (or a free role) runs it; its result becomes the agent's memory."""

from __future__ import annotations

from typing import Any

from agents.agent import Outcome
from agents.loops import LOOPS, Loop, LoopSetup
from agents.roleplay.setup import RoleCard
from agents.sessions import SessionMachine
from worlds.activities.base import register
from worlds.activities.hosted import HostedSession

#: How each loop's result reads as one line of memory.
_NAMES = {"self_refine": "refined", "self_consistency": "worked out", "self_debug": "debugged",
          "self_eval": "checked an answer to", "self_instruct": "wrote new tasks for", "self_align": "answered"}


def result_line(loop: str, task: str, result: dict[str, Any]) -> str:
    """The loop's outcome in one sentence, as the agent will remember it."""
    about = task.strip().splitlines()[0][:120]
    if loop == "self_refine":
        return f"{_NAMES[loop]} \"{about}\" over {result.get('iterations', 0)} drafts; the final one: {result.get('final', '')}"
    if loop == "self_consistency":
        return f"{_NAMES[loop]} \"{about}\": {result.get('answer')} ({result.get('agreement', 0):.0%} of samples agreed)"
    if loop == "self_debug":
        state = "the tests pass" if result.get("passed") else "the tests still fail"
        return f"{_NAMES[loop]} code for \"{about}\" in {result.get('tries', 0)} tries; {state}"
    if loop == "self_eval":
        return f"{_NAMES[loop]} \"{about}\": \"{result.get('answer')}\", true with probability {result.get('p_true', 0):.2f}"
    if loop == "self_instruct":
        return f"{_NAMES[loop]} \"{about}\": {result.get('kept', 0)} kept after {result.get('rounds', 0)} rounds"
    return f"{_NAMES[loop]} \"{about}\": {result.get('answer', '')}"


@register
class LoopActivity(HostedSession):
    kind = "loop"

    def __init__(self, activity_id: str, loop: Loop, minutes_per_message: int) -> None:
        actor = loop.setup.actor
        super().__init__(activity_id, [actor.agent] if actor.agent else [], loop, minutes_per_message)

    @classmethod
    def machine_for(cls, state: dict[str, Any]) -> type[SessionMachine]:
        return LOOPS[state["loop"]]

    def cards(self) -> list[RoleCard]:
        return [self.session.setup.actor]

    def status(self, agent: str) -> str:
        setup: LoopSetup = self.session.setup
        return f"running {self.session.loop.replace('_', '-')}: {setup.task.splitlines()[0][:60]}"

    def outcome(self, agent: str) -> Outcome | None:
        progress = self.session.progress
        if not progress.result:
            return None
        line = result_line(self.session.loop, self.session.setup.task, progress.result)
        return Outcome(activity=self.kind, activity_id=self.id, place=self.place, summary=line)

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "loop": self.session.loop}
