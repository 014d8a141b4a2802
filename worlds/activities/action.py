"""A planned action at a place, possibly using an object whose state it changes while it lasts."""

from __future__ import annotations

from typing import Any

from agents.context import TickContext
from agents.gateway import CallScope
from agents.plans import PlanStep
from worlds.activities.base import ActivityEnv, SoloActivity, register
from worlds.events import ObjectChanged

IDLE = "idle"


@register
class Action(SoloActivity):
    kind = "action"
    interruptible = True

    def __init__(self, activity_id: str, agent: str, step: PlanStep) -> None:
        super().__init__(activity_id, [agent], step.place)
        self._take(step)

    def _take(self, step: PlanStep) -> None:
        self.step = step
        self.description = step.description
        self.object = step.object
        self.until = step.end

    def status(self, agent: str) -> str:
        return f"{self.description} ({self.place})"

    def _set_object(self, ctx: TickContext, env: ActivityEnv, scope: CallScope, state: str) -> None:
        if self.object is None:
            return
        env.world.places.set_object_state(self.place, self.object, state)
        scope.emit(ObjectChanged(tick=ctx.tick, sim_time=ctx.now, agents=list(self.participants), place=self.place,
                                 object=self.object, state=state))

    def _state(self) -> str:
        return self.step.object_state or "in use"

    def start(self, ctx: TickContext, env: ActivityEnv, scope: CallScope) -> None:
        super().start(ctx, env, scope)
        self._set_object(ctx, env, scope, self._state())

    async def advance(self, ctx: TickContext, env: ActivityEnv) -> None:
        if ctx.end >= self.until:
            self.end(ctx, env, self.scope(ctx), "done")

    def end(self, ctx: TickContext, env: ActivityEnv, scope: CallScope, how: str) -> None:
        super().end(ctx, env, scope, how)
        if self.object is not None and env.world.places.objects_at(self.place)[self.object] == self._state():
            self._set_object(ctx, env, scope, IDLE)  # unless someone else has since put it to other use

    def extra_state(self) -> dict[str, Any]:
        return {"step": self.step.model_dump(mode="json")}

    def restore_extra(self, state: dict[str, Any]) -> None:
        self._take(PlanStep.model_validate(state["step"]))
