"""Sleep at home until the next waking time; waking hands the agent a new day to plan."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agents.agent import Outcome
from agents.context import TickContext
from worlds.activities.base import ActivityEnv, SoloActivity, register


@register
class Sleep(SoloActivity):
    kind = "sleep"

    def __init__(self, activity_id: str, agent: str, place: str, until: datetime) -> None:
        super().__init__(activity_id, [agent], place)
        self.until = until
        self.description = "sleeping"

    def status(self, agent: str) -> str:
        return "sleeping"

    async def advance(self, ctx: TickContext, env: ActivityEnv) -> None:
        if ctx.end >= self.until:
            self.end(ctx, env, self.scope(ctx), "done")

    def outcome(self, agent: str) -> Outcome | None:
        return Outcome(activity=self.kind, activity_id=self.id, place=self.place)

    def extra_state(self) -> dict[str, Any]:
        return {"until": self.until.isoformat()}

    def restore_extra(self, state: dict[str, Any]) -> None:
        self.until = datetime.fromisoformat(state["until"])
        self.description = "sleeping"
