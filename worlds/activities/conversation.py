"""A conversation: participants take turns, a few lines per tick, until farewell, the cap, a loop or a failure."""

from __future__ import annotations

from typing import Any

from agents.agent import Outcome
from agents.cognition.converse import Stage, next_line, recall_for
from agents.cognition.lines import repeats
from agents.context import TickContext
from agents.gateway import CallScope, ModelUnavailableError
from worlds.activities.base import Activity, ActivityEnv, register
from worlds.events import ConversationEnded, ConversationStarted, Error, Utterance


@register
class Conversation(Activity):
    kind = "conversation"

    def __init__(self, activity_id: str, participants: list[str], place: str) -> None:
        super().__init__(activity_id, participants, place)
        self.history: list[tuple[str, str]] = []

    def status(self, agent: str) -> str:
        others = " and ".join(p for p in self.participants if p != agent)
        return f"talking with {others} ({self.place})"

    def start(self, ctx: TickContext, env: ActivityEnv, scope: CallScope) -> None:
        super().start(ctx, env, scope)
        scope.emit(ConversationStarted(tick=ctx.tick, sim_time=ctx.now, agents=list(self.participants),
                                       conversation_id=self.id, place=self.place))

    async def advance(self, ctx: TickContext, env: ActivityEnv) -> None:
        limits = env.scenario.conversation
        for _ in range(limits.lines_per_tick):
            number = len(self.history)
            speaker = env.agents[self.participants[number % len(self.participants)]]
            scope = self.scope(ctx, speaker.name, f"{number:04d}")
            partners = [p for p in self.participants if p != speaker.name]
            try:
                recollections = await recall_for(speaker, partners, self.history, self.place, ctx.now,
                                                 env.scenario.memory.retrieve_k, scope)
                said = await next_line(speaker, partners, self.place, self.history, recollections, env.gateway,
                                       scope, ctx.now, stage(number + 1, limits.min_lines, limits.max_lines))
            except ModelUnavailableError as exc:
                scope.emit(Error(tick=ctx.tick, sim_time=ctx.now, agents=[speaker.name],
                                 message="no line from the model", detail=str(exc)))
                self.end(ctx, env, scope, "model_unavailable")
                return
            if repeats(said.line, self.history, self.participants):
                self.end(ctx, env, scope, "repetition")
                return
            self.history.append((speaker.name, said.line))
            scope.emit(Utterance(tick=ctx.tick, sim_time=ctx.now, agents=list(self.participants),
                                 conversation_id=self.id, speaker=speaker.name, place=self.place, text=said.line))
            if said.end_conversation and (len(self.history) >= limits.min_lines or said.wrapping_up):
                self.end(ctx, env, scope, "farewell")
                return
            if len(self.history) >= limits.max_lines:
                self.end(ctx, env, scope, "max_lines")
                return

    def end(self, ctx: TickContext, env: ActivityEnv, scope: CallScope, how: str) -> None:
        """`how` is a conversation end reason, or interrupted / run_ended."""
        scope.emit(ConversationEnded(tick=ctx.tick, sim_time=ctx.now, agents=list(self.participants),
                                     conversation_id=self.id, place=self.place, reason=how, lines=len(self.history)))
        for a in self.participants:
            for b in self.participants:
                if a < b:
                    env.world.social.record_conversation(a, b, ctx.now)
        super().end(ctx, env, scope, how)

    def outcome(self, agent: str) -> Outcome | None:
        if not self.history:
            return None
        return Outcome(activity=self.kind, activity_id=self.id, place=self.place,
                       others=[p for p in self.participants if p != agent], transcript=list(self.history))

    def extra_state(self) -> dict[str, Any]:
        return {"history": [list(line) for line in self.history]}

    def restore_extra(self, state: dict[str, Any]) -> None:
        self.history = [(who, text) for who, text in state["history"]]


def stage(line: int, min_lines: int, max_lines: int) -> Stage:
    """Line `line` (from 1) is early while a goodbye would not be honoured, closing in the last two."""
    if line < min_lines:
        return "opening"
    return "closing" if line >= max_lines - 1 else "middle"
