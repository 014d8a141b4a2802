"""Probes: interview questions a scenario asks at a time (or at the end), answered from each agent's memory."""

from __future__ import annotations

import asyncio
from datetime import datetime

from agents.agent import Agent
from agents.cognition.answer import answer
from agents.context import Phase, TickContext
from agents.gateway import ModelGateway
from worlds.events import ProbeAnswered
from worlds.scenario import Probe


def askees(probe: Probe, agents: dict[str, Agent]) -> list[str]:
    if probe.ask == "all":
        return sorted(agents)
    return [probe.ask] if isinstance(probe.ask, str) else list(probe.ask)


def due(probe: Probe, ctx: TickContext, final: bool) -> bool:
    """`end` probes are asked when the run closes; timed ones in the tick that contains their moment."""
    if probe.at == "end":
        return final
    if probe.at == "start":
        return ctx.tick == 0 and not final
    assert isinstance(probe.at, datetime)
    if final:  # a moment no tick began before (the clock's stop, say) is asked at the close
        return probe.at <= ctx.now
    return ctx.now <= probe.at < ctx.end


async def ask_due(
    probes: list[Probe], done: set[int], ctx: TickContext, agents: dict[str, Agent], gateway: ModelGateway, final: bool
) -> None:
    """Ask every due probe not yet asked; all agents answer at once, each into its own buffer."""

    async def one(number: int, probe: Probe, name: str) -> None:
        scope = ctx.scope(Phase.PROBE, f"{number:03d}/{name}", name)
        agent = agents[name]
        await agent.memory.commit(scope)
        text, used = await answer(agent, probe.question, gateway, scope, ctx.now)
        scope.emit(ProbeAnswered(tick=ctx.tick, sim_time=ctx.now, agents=[name], probe=number,
                                 question=probe.question, answer=text, memories=[m.text for m in used]))

    asked: dict[str, list[tuple[int, Probe]]] = {}
    for number, probe in enumerate(probes):
        if number not in done and due(probe, ctx, final):
            done.add(number)
            for name in askees(probe, agents):
                asked.setdefault(name, []).append((number, probe))

    async def each(name: str) -> None:  # one agent's probes in order: they share its memory stream
        for number, probe in asked[name]:
            await one(number, probe, name)

    await asyncio.gather(*(each(name) for name in sorted(asked)))
