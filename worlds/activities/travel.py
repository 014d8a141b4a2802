"""Travel: walk a route place by place, each hop taking its travel time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agents.context import TickContext
from worlds.activities.base import ActivityEnv, SoloActivity, register
from worlds.events import Moved


@register
class Travel(SoloActivity):
    kind = "travel"
    interruptible = True

    def __init__(self, activity_id: str, agent: str, origin: str, destination: str, hops: list[tuple[str, datetime]]) -> None:
        super().__init__(activity_id, [agent], origin)
        self.destination = destination
        self.hops = hops
        self.description = f"walking to {destination}"
        self.until = hops[-1][1] if hops else None

    def status(self, agent: str) -> str:
        return self.description

    async def advance(self, ctx: TickContext, env: ActivityEnv) -> None:
        scope = self.scope(ctx)
        agent = env.agents[self.participants[0]]
        while self.hops and self.hops[0][1] < ctx.end:
            place, _ = self.hops.pop(0)
            scope.emit(Moved(tick=ctx.tick, sim_time=ctx.now, agents=[agent.name], origin=agent.state.place,
                             destination=place))
            agent.state.place = place
        if not self.hops:
            self.end(ctx, env, scope, "done")

    def extra_state(self) -> dict[str, Any]:
        return {"destination": self.destination, "hops": [[p, t.isoformat()] for p, t in self.hops],
                "until": self.until.isoformat() if self.until else None}

    def restore_extra(self, state: dict[str, Any]) -> None:
        self.destination = state["destination"]
        self.hops = [(p, datetime.fromisoformat(t)) for p, t in state["hops"]]
        self.until = datetime.fromisoformat(state["until"]) if state["until"] else None
        self.description = f"walking to {self.destination}"
